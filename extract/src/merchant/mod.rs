//! The merchant's name and address, from the top of the receipt.
//!
//! Two sources, the better one wins:
//! - a [`Gazetteer`] of known merchants (name and branch addresses, learned offline from labelled
//!   receipts): the header rows are matched against each known name with an edit-distance
//!   similarity, and a match above [`ACCEPT`] supplies the canonical spelling — OCR rarely reads a
//!   whole name and address without a slip, the gazetteer repairs that. It never overrides a
//!   strong reading of the print (a clean legal name, see `strong_reading`) that it does not
//!   resemble;
//! - layout rules: the name is the first header row that reads like a business name (a legal
//!   suffix such as `SDN BHD` wins), the address the rows below it up to the first row that is a
//!   phone number, a tax id, a date or a document title.

mod address;
mod trim;

mod gazetteer;
pub(crate) mod words;

use crate::text::{containment, has_word, letter_share, normalize, squash};
use address::*;
use trim::{without_branch, without_pos_field};

pub use gazetteer::{ACCEPT_ADDRESS, Gazetteer, KnownMerchant, MIN_NAME};
use words::*;

/// A name match at least this similar is accepted. Measured on the SROIE development receipts
/// (`ocr-worker evaluate`, company right by value): 98 at 0.70, 99 at 0.76, 98 at 0.82, 94 at
/// 0.88, 85 at 0.94. 0.82 is the highest similarity before accuracy falls: a lower threshold
/// gains nothing and renames more receipts of merchants the gazetteer does not hold.
pub const ACCEPT: f64 = 0.82;

/// A reading of the print at least this confident may be strong (see [`strong_reading`]).
pub const STRONG_READING: f64 = 0.7;

/// A strong reading of the print: confident, a company's legal name, clean (mostly letters, two
/// words of three letters or more) and not an address line. The gazetteer does not override it
/// with a name it does not resemble.
fn strong_reading(name: &Found) -> bool {
    let words =
        name.value.split_whitespace().filter(|word| word.chars().filter(char::is_ascii_alphabetic).count() >= 3);
    name.confidence >= STRONG_READING
        && has_legal_suffix(&name.value)
        && letter_share(&name.value) >= 0.8
        && words.count() >= 2
        && !address_words(&name.value)
}

/// How many rows from the top are searched for the merchant.
const HEADER_ROWS: usize = 14;

/// A merchant field with its confidence and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// The text.
    pub value: String,
    /// Confidence in 0–1.
    pub confidence: f64,
}

/// The merchant as found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MerchantFields {
    pub name: Option<Found>,
    pub address: Option<Found>,
    /// Row index where the name was found.
    pub name_row: Option<usize>,
    /// Where the name came from: `header` (layout rules), `thanks_line`, `gazetteer`.
    pub source: Option<&'static str>,
}

/// A price (`9.50`, `$4.95`) or a ZIP code on a row: an item or an address, not a name.
/// A ZIP code may be glued to the state before it (`MIAMI BEACH FLORIDA33139`).
static PRICE_OR_ZIP: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"\d[.,]\d{2}\b|\b\d{5}\b|[A-Z]\d{5}(?:-\d{4})?$")
        .unwrap_or_else(|error| panic!("invalid pattern: {error}"))
});

fn name_score(row: &str, index: usize) -> Option<f64> {
    if row.len() < 3
        || letter_share(row) < 0.6
        || NOT_NAME.iter().any(|word| has_word(row, word))
        || PRICE_OR_ZIP.is_match(row)
        || has_word(row, "TOTAL")
        || seller_label(row)
        // A field's label standing alone (`NABYWCA:`, `DATE OF ISSUE:`).
        || (row.trim_end().ends_with(':') && row.split_whitespace().count() <= 3)
        || (address_words(row) && !has_legal_suffix(row))
    {
        return None;
    }
    let mut score = 1.0 - index as f64 * 0.05;
    if has_legal_suffix(row) {
        score += 1.5;
    }
    if kind_only(row) {
        score -= 0.5;
    } else if BUSINESS_WORDS.iter().any(|word| has_word(row, word)) {
        score += 0.6;
    }
    Some(score)
}

/// Removes OCR debris around a name read from a header row: tokens at either end that hold no
/// letter or are one or two stray letters (`SB GOLDEN PANDA BUFFET`, `| FLUE BEAR TAVERN`,
/// `5 ~ MIGUELS MEXICAN A`), a store number (`… #00003675`) and a branch after a dash
/// (`KALAVERAS - BELLFLOWER`).
pub fn clean_name(name: &str) -> String {
    let mut text = name.to_owned();
    if let Some(at) = text.find(" #") {
        text.truncate(at);
    }
    if let Some(at) = text.find(" - ")
        && text[..at].chars().filter(char::is_ascii_alphabetic).count() >= 4
    {
        text.truncate(at);
    }
    static REGISTRATION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\s*[(\[{]\s*[A-Z]?\d{4,}\s*-?\s*[A-Z]?\s*[)\]}]\s*$")
            .unwrap_or_else(|error| panic!("invalid pattern: {error}"))
    });
    text = REGISTRATION.replace(&text, "").into_owned();
    // OCR slips in the Malaysian company suffix: `SON BHD`, `SBN BHD`, `SDN BHO`, `SUN BND`.
    static SDN_BHD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\bS[DOBUI0]N[.’']?\s?B[HN][DO0]\b")
            .unwrap_or_else(|error| panic!("invalid pattern: {error}"))
    });
    text = SDN_BHD.replace_all(&text, "SDN BHD").into_owned();
    // `SDN` is always followed by `BHD`; the rest went to the next line or to OCR.
    if text.ends_with(" SDN") {
        text.push_str(" BHD");
    }
    // `¥` is how Tesseract reads a bold `Y` (`D.I.¥.`).
    text = text.replace('¥', "Y");
    // The Spanish article read with an `I` or a `1` for its `L` (`EI VALLE`, `E1 CHARRO`).
    for misread in ["EI ", "E1 "] {
        if let Some(rest) = text.strip_prefix(misread)
            && rest.starts_with(|c: char| c.is_alphabetic())
        {
            text = format!("EL {rest}");
        }
    }
    let mut words: Vec<&str> = text.split_whitespace().collect();
    // Debris: no letter at all, or one stray letter that does not join the next word with `&`.
    let debris = |word: &str, next: Option<&&str>| {
        let letters = word.chars().filter(|c| c.is_alphabetic()).count();
        let joined = next.is_some_and(|next| *next == "&");
        let bare = word.trim_end_matches('.');
        !SHORT_NAME_WORDS.contains(&bare) && !joined && (letters == 0 || (letters == 1 && word.chars().count() <= 2))
    };
    // A number of two or three digits before a word opens many names (`99 SPEED MART`,
    // `360 GOURMET`); it stays when a real word follows.
    let opens_name = |words: &[&str]| {
        words.len() > 1
            && (2..=3).contains(&words[0].len())
            && words[0].chars().all(|c| c.is_ascii_digit())
            && words[1].chars().filter(|c| c.is_alphabetic()).count() >= 3
    };
    while words.len() > 1 && debris(words[0], words.get(1)) && !opens_name(&words) {
        words.remove(0);
    }
    while words.len() > 1 && words.last().is_some_and(|word| debris(word, None)) {
        words.pop();
    }
    // Short debris after the word that ends a business name (`YONG CEN ENTERPRISE FU VE`).
    let ends_name = |words: &[&str]| {
        words.last().is_some_and(|last| {
            ["BHD", "BHD.", "S/B", "ENTERPRISE", "TRADING", "RESTAURANT", "LTD", "INC", "LLC", "GMBH"].contains(last)
        })
    };
    while words.len() > 2
        && words
            .last()
            .is_some_and(|word| word.chars().count() <= 2 && *word != "CO" && !SHORT_NAME_WORDS.contains(word))
    {
        let kept = words.iter().rposition(|word| word.chars().count() > 2).map_or(0, |at| at + 1);
        if !ends_name(&words[..kept]) {
            break;
        }
        words.truncate(kept);
    }
    words.join(" ").trim_matches(|c: char| !c.is_alphanumeric() && c != ')' && c != '\'' && c != '.').to_owned()
}

/// A `Thank you for dining at NAME` line: the name it gives.
fn thanks_name(row: &str) -> Option<String> {
    const LEADS: [&str; 12] = [
        "THANK YOU FOR DINING AT",
        "THANK YOU FOR DINING WITH",
        "THANK YOU FOR VISITING",
        "THANKS FOR VISITING",
        "THANK YOU FOR CHOOSING",
        "THANK YOU FOR SHOPPING AT",
        "THANKS FOR DINING AT",
        "THANK YOU FOR EATING AT",
        "THANKS FOR CHOOSING",
        "WELCOME TO",
        "MERCI DE VOTRE VISITE CHEZ",
        "VIELEN DANK FÜR IHREN EINKAUF BEI",
    ];
    let (_, rest) = LEADS.iter().find_map(|lead| row.split_once(lead))?;
    let name: String = rest.trim().trim_end_matches(['!', '.', ',']).trim().to_owned();
    let words = name.split_whitespace().count();
    ((1..=5).contains(&words) && letter_share(&name) >= 0.7 && name.len() >= 3).then_some(name)
}

/// The median of the header rows' heights, for "larger than the rest" decisions.
fn median_height(heights: &[i32]) -> f64 {
    let mut sorted: Vec<i32> = heights.iter().copied().filter(|h| *h > 0).collect();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).map_or(0.0, |h| f64::from(*h))
}

fn rules(rows: &[String], heights: &[i32], sender: Option<usize>) -> MerchantFields {
    let header: Vec<String> = rows[..rows.len().min(HEADER_ROWS)].iter().map(|row| without_pos_field(row)).collect();
    let header = header.as_slice();
    let buyer = buyer_rows(header);
    // A row opening with a house number, or a street printed without one, is the address when a
    // town line follows or the row holds the town itself after a comma (`#237E,SISIWATH QUAY,
    // PHNOM PENH`); OCR's glued form (`16530BELLFLOWERBLVD`) always is. Elsewhere it may be a name
    // (`360 GOURMET`, `SILK ROAD`).
    let street_first = |row: &str, index: usize| {
        let town_next = header.get(index + 1).is_some_and(|next| town_row(next));
        let street = (house_number_first(row) && (glued_house_number(row) || town_next || row.contains(',')))
            || (street_without_number(row) && town_next);
        street && !has_legal_suffix(row) && !BUSINESS_WORDS.iter().any(|word| has_word(row, word))
    };
    let name_score = |row: &str, index: usize| {
        if buyer.get(index).copied().unwrap_or(false) || street_first(row, index) {
            None
        } else {
            name_score(row, index)
        }
    };
    let median = median_height(&heights[..heights.len().min(HEADER_ROWS)]);
    // Larger print than the header's usual lines reads as the name (up to +0.6).
    let size_bonus = |index: usize| {
        let height = heights.get(index).copied().map_or(0.0, f64::from);
        if median > 0.0 { ((height / median - 1.0) * 0.6).clamp(0.0, 0.6) } else { 0.0 }
    };
    // The row just above the address block (street, then city and ZIP) names the place there.
    let above_address = header.iter().position(|row| address_words(row)).filter(|&first| first > 0).map(|first| {
        let mut above = first - 1;
        while above > 0 && (kind_only(&header[above]) || name_score(&header[above], above).is_none()) {
            above -= 1;
        }
        above
    });
    // The row under a seller's label (`SPRZEDAWCA:`, `FROM:`) names the seller.
    let under_label = header
        .iter()
        .position(|row| seller_label(row))
        .and_then(|label| (label + 1..header.len()).find(|&index| name_score(&header[index], index).is_some()));
    // So does a sender line's name (the return address above a window envelope's).
    let anchor_bonus = |index: usize| {
        (if above_address == Some(index) { 0.8 } else { 0.0 })
            + if under_label == Some(index) || sender == Some(index) { 2.5 } else { 0.0 }
    };
    let best = header
        .iter()
        .enumerate()
        .filter_map(|(index, row)| {
            name_score(row, index).map(|score| (index, score + size_bonus(index) + anchor_bonus(index)))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    // A `Thank you for dining at …` line names the merchant in words, anywhere on the receipt.
    let thanked = rows.iter().find_map(|row| thanks_name(row));
    let Some((mut name_row, score)) = best else {
        return match thanked {
            Some(name) => MerchantFields {
                name: Some(Found { value: normalize(&name), confidence: 0.5 }),
                address: None,
                name_row: None,
                source: Some("thanks_line"),
            },
            None => MerchantFields::default(),
        };
    };
    if let Some(thanked) = &thanked {
        // The thanks line confirms a header row that holds the same name, or replaces a weak one.
        if let Some(index) = header.iter().position(|row| containment(&squash(thanked), &squash(row)) >= 0.8) {
            name_row = index;
        } else if score < 1.5 {
            return MerchantFields {
                name: Some(Found { value: normalize(thanked), confidence: 0.5 }),
                address: None,
                name_row: None,
                source: Some("thanks_line"),
            };
        }
    }
    let mut name_text = header[name_row].clone();
    // A name broken over two rows: `… HARDWARE &` + `ELECTRICAL`, or `… (SETIA` + `ALAM) SDN BHD`.
    if let Some(next) = header.get(name_row + 1)
        && (name_text.ends_with('&') || name_text.matches('(').count() > name_text.matches(')').count())
        && !address_start(next)
    {
        name_text = format!("{name_text} {next}");
        name_row += 1;
    } else if name_row > 0
        && (name_text.starts_with(|c: char| c == ')' || c.is_ascii_lowercase())
            // A row that only says what kind of place it is completes the name above it
            // (`CHRIS'S` + `HAMBURGERS`).
            || kind_only(&name_text)
            || header[name_row - 1].trim() == "THE"
            || header[name_row - 1].ends_with('&')
            || header[name_row - 1].matches('(').count() > header[name_row - 1].matches(')').count())
        && name_score(&header[name_row - 1], name_row - 1).is_some()
    {
        name_text = format!("{} {name_text}", header[name_row - 1]);
    }
    // `CRISFIELD SEAFOOD` + `RESTAURANT`, `NEW DELHI` + `INDIAN` + `RESTAURANT`.
    for _ in 0..2 {
        match header.get(name_row + 1) {
            Some(next) if kind_only(next) && !address_start(next) => {
                name_text = format!("{name_text} {next}");
                name_row += 1;
            }
            _ => break,
        }
    }
    // A lone article (`THE`) or a very short first row continues on the next one.
    if name_text.chars().filter(char::is_ascii_alphabetic).count() <= 3
        && let Some(next) = header.get(name_row + 1)
        && name_score(next, name_row + 1).is_some()
    {
        name_text = format!("{name_text} {next}");
        name_row += 1;
    }
    let below = &header[(name_row + 1).min(header.len())..header.len().min(name_row + 5)];
    let name_text = without_branch(&clean_name(&name_text), below);
    let name = Found { value: normalize(&name_text), confidence: if score > 2.0 { 0.7 } else { 0.45 } };
    let address = address_below(header, name_row);
    MerchantFields { name: Some(name), address, name_row: Some(name_row), source: Some("header") }
}

/// The address printed under the merchant's name on row `name_row` of the header.
fn address_below(header: &[String], name_row: usize) -> Option<Found> {
    // The address starts at the first row that reads like one (skipping registration numbers,
    // "formerly known as" lines and the like) and runs to the first contact or document row.
    let starts = |from: usize, rows: usize| {
        header
            .iter()
            .enumerate()
            .skip(from)
            .take(rows)
            .find(|(index, row)| {
                (address_start(row) || street_above_town(row, header.get(index + 1)))
                    && !registration_row(row)
                    && !stop_address(row)
            })
            .map(|(index, _)| index)
    };
    // Below the name; for a name read low on the page (a legal-entity footer), from the top.
    let start = starts(name_row + 1, 4).or_else(|| starts(0, name_row.min(4)).filter(|_| name_row >= 4));
    let mut address_rows = Vec::new();
    if let Some(start) = start {
        let mut after_postcode = None;
        for row in header.iter().skip(start) {
            if stop_address(row)
                || bare_phone(row)
                || address_rows.len() == 5
                || (registration_row(row) && !address_start(row) && !town_line(row))
            {
                break;
            }
            // After the postcode line, only a short line of words follows (a state, a town, a
            // country, a mall), not the opening hours or a greeting.
            if let Some(rows_after) = after_postcode {
                let short = row.split_whitespace().count() <= 3 && row.chars().all(|c| !c.is_ascii_digit());
                // Nor the label or name of another party (`KUNDE:`, `BILLED TO`, the buyer).
                let other = NOT_ADDRESS_WORDS.iter().any(|word| row.contains(word))
                    || row.contains(':')
                    || has_legal_suffix(row)
                    || seller_label(row)
                    || BUYER_LABELS.iter().any(|label| row.contains(label));
                if rows_after > 0 || !short || other {
                    break;
                }
                after_postcode = Some(rows_after + 1);
            }
            address_rows.push(normalize(row));
            // A town line after the street (`33100 PADERBORN`, `8001 ZÜRICH`, `BANDUNG 40111`)
            // ends the address too.
            let postcode_town =
                address_rows.len() > 1 && (POSTCODE_TOWN.is_match(row) || town_line(row)) && !street_row(row);
            if after_postcode.is_none() && (POSTCODE.is_match(row) || postcode_town) {
                after_postcode = Some(0);
            }
        }
    }
    (!address_rows.is_empty()).then(|| Found { value: address_rows.join(" "), confidence: 0.4 })
}

/// Finds the merchant in upper-cased rows, preferring a confident gazetteer match.
///
/// Each known name is searched for as a fuzzy substring of the header's letters and digits
/// (spacing, punctuation and row breaks ignored), so a name split over two rows or preceded by
/// OCR debris still matches. Names shorter than [`MIN_NAME`] characters are too easy to find by
/// chance and are skipped. The matched merchant's branch addresses are searched the same way.
pub fn merchant(rows: &[String], gazetteer: &Gazetteer) -> MerchantFields {
    merchant_with_layout(rows, &[], gazetteer)
}

/// [`merchant`], with each row's text height (in pixels) so that larger print can mark the name.
pub fn merchant_with_layout(rows: &[String], heights: &[i32], gazetteer: &Gazetteer) -> MerchantFields {
    merchant_in_document(rows, heights, None, gazetteer)
}

/// [`merchant_with_layout`] for a document read column by column, where row `sender` holds the
/// name of a sender line (see [`crate::document`]).
pub fn merchant_in_document(
    rows: &[String],
    heights: &[i32],
    sender: Option<usize>,
    gazetteer: &Gazetteer,
) -> MerchantFields {
    let ruled = rules(rows, heights, sender);
    let header_rows = &rows[..rows.len().min(HEADER_ROWS)];
    let header = squash(&header_rows.concat());
    let header_trigrams: std::collections::HashSet<&[u8]> = header.as_bytes().windows(3).collect();
    let mut best: Option<(f64, &KnownMerchant)> = None;
    for known in &gazetteer.merchants {
        let target = squash(&known.name);
        if target.len() < MIN_NAME {
            continue;
        }
        // A name that matches above the threshold keeps most of its trigrams intact; skip the
        // alignment for names that share too few with the header.
        let trigrams = target.as_bytes().windows(3).count().max(1);
        let shared = target.as_bytes().windows(3).filter(|trigram| header_trigrams.contains(trigram)).count();
        if (shared as f64) < trigrams as f64 * 0.3 {
            continue;
        }
        let score = containment(&target, &header);
        if best.is_none_or(|(best_score, _)| score > best_score) {
            best = Some((score, known));
        }
    }
    let Some((score, known)) = best.filter(|(score, _)| *score >= ACCEPT) else { return ruled };
    // A strong reading of the print (a legal name, larger print) stands against a known name it
    // does not resemble: the gazetteer repairs slips in a name, it does not rename a receipt.
    if let Some(read) = ruled.name.as_ref().filter(|name| strong_reading(name)) {
        let (read, known_name) = (squash(&read.value), squash(&known.name));
        if containment(&known_name, &read).max(containment(&read, &known_name)) < ACCEPT {
            return ruled;
        }
    }
    let name = Found { value: known.name.clone(), confidence: score.min(0.99) };
    let address_region = squash(&rows[..rows.len().min(HEADER_ROWS + 6)].concat());
    let best_address = known
        .addresses
        .iter()
        .map(|address| (containment(&squash(address), &address_region), address))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let address = match best_address {
        Some((score, address)) if score >= ACCEPT_ADDRESS => {
            Some(Found { value: address.clone(), confidence: score.min(0.99) })
        }
        _ => ruled.address,
    };
    let name_row = header_rows.iter().position(|row| containment(&squash(row), &squash(&known.name)) > 0.6);
    MerchantFields { name: Some(name), address, name_row: name_row.or(ruled.name_row), source: Some("gazetteer") }
}

/// The merchant, with the brand directory's reading taken into account, and whether the merchant
/// is that brand: a brand the name row already holds confirms it; a brand found elsewhere (a
/// spaced logo, a legal-entity line, a web domain) names the merchant when the header gave only a
/// weak reading, or when its evidence is strong. A gazetteer match stays.
pub fn with_brand(
    found: MerchantFields,
    brand: Option<&crate::brands::BrandMatch<'_>>,
    rows: &[String],
) -> (MerchantFields, bool) {
    let Some(brand) = brand else { return (found, false) };
    if found.source == Some("gazetteer") {
        return (found, false);
    }
    let printed = squash(&brand.printed);
    let top = crate::brands::TOP_ROWS;
    if let Some(name) = &found.name
        && (squash(&name.value).contains(&printed)
            || (squash(&name.value).len() >= 4 && squash(&brand.display_name()).contains(&squash(&name.value))))
    {
        let confidence = name.confidence.max(0.8);
        // A name read from a line far below the header (a legal-entity footer) gives way to the
        // brand's own name; a header line that holds it is kept as printed.
        if found.name_row.is_some_and(|row| row >= top) {
            let value = normalize(&brand.display_name());
            let named = MerchantFields { name: Some(Found { value, confidence }), source: Some("brand"), ..found };
            return (named, true);
        }
        return (MerchantFields { name: Some(Found { value: name.value.clone(), confidence }), ..found }, true);
    }
    let weak = found.name.as_ref().is_none_or(|name| name.confidence < 0.6);
    // A header name stands unless the brand is seen in two kinds of place (a logo and a domain),
    // or is the sign itself, above the name read.
    let corroborated = brand.sources >= 2 && brand.score >= crate::brands::ACCEPT + 1.0;
    let sign_above = matches!(brand.how, "sign" | "spaced logo")
        && printed.len() >= 3
        && brand.row.is_some_and(|row| found.name_row.is_none_or(|name_row| row < name_row));
    if !(weak || corroborated || sign_above) {
        return (found, false);
    }
    // Found on a header row: the row as printed (`COLUMBUS RESTAURANT`), else the brand's name.
    let value = match (brand.how, brand.row.and_then(|row| rows.get(row))) {
        ("header" | "sign", Some(row)) => {
            let cleaned = clean_name(row);
            // Debris removal takes a number at either end; a brand that starts or ends with one
            // keeps it (`99 SPEED MART`, `7-ELEVEN`, `REMA 1000`).
            let digits = |word: &&str| word.chars().all(|c| c.is_ascii_digit());
            let first = row.split_whitespace().next().filter(digits);
            let last = row.split_whitespace().next_back().filter(digits);
            let kept = squash(&cleaned).contains(&printed);
            match (first, last) {
                (Some(first), _) if !kept && printed.starts_with(first) => normalize(&format!("{first} {cleaned}")),
                (_, Some(last)) if !kept && printed.ends_with(last) => normalize(&format!("{cleaned} {last}")),
                _ => normalize(&cleaned),
            }
        }
        _ => normalize(&brand.display_name()),
    };
    // A sign above the row the header reading took for the name, or with no name read in the
    // header: the address is under the sign.
    let header = &rows[..rows.len().min(HEADER_ROWS)];
    let address = match (brand.row, found.name_row) {
        (Some(sign), name_row) if name_row.is_none_or(|name_row| sign < name_row) && sign < header.len() => {
            address_below(header, sign).or(found.address)
        }
        _ => found.address,
    };
    let named = MerchantFields {
        name: Some(Found { value, confidence: (0.4 + 0.1 * brand.score).min(0.9) }),
        address,
        name_row: brand.row.or(found.name_row),
        source: Some("brand"),
    };
    (named, true)
}

#[cfg(test)]
mod tests;
