//! The worldwide brand directory: shop and amenity brands from OpenStreetMap's
//! name-suggestion-index (`data/brands.tsv`, built by `scripts/build_brands.py`; BSD-3-Clause,
//! `data/brands-LICENSE.md`), each with the countries it operates in and its OSM category.
//!
//! A brand is looked for where receipts print the merchant's name:
//!
//! | where | evidence |
//! |---|---|
//! | a header row (the first [`HEADER_ROWS`]) | 2, less 0.1 a row; +1.5 when the row is the name alone |
//! | a logo printed spaced or split (`A L D I`) | as a header row (letters joined) |
//! | a legal-entity line anywhere (`Aldi GmbH & Co. KG`) | 2 |
//! | a web domain or e-mail address (`www.aldi-sued.de`) | 2.5 |
//! | any other row | 0.5 |
//! | the brand operates in the receipt's country | +1 (a brand that does not is never matched; with the country unknown, a brand of a few countries −0.5) |
//!
//! Names of three letters or fewer (`BP`, `KFC`, `H&M`) count only as a whole row or a domain, and
//! names that are receipt words (`TOTAL`, `CASH`, `SUBWAY` is fine) are never matched. A brand is
//! a match at [`ACCEPT`] evidence or more.

use std::collections::HashMap;
use std::sync::LazyLock;

use finagent_core::receipt::Category;
use regex::Regex;

use crate::text::{fold, has_word};

/// Header rows searched as the merchant's own lines.
pub const HEADER_ROWS: usize = 8;
/// The rows where a row that is only a brand's name is its sign (later ones are a server's name,
/// an item, a slogan).
pub const TOP_ROWS: usize = 3;
/// The evidence a brand needs to be a match.
pub const ACCEPT: f64 = 3.0;

/// Where a brand operates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operates {
    /// Worldwide.
    Everywhere,
    /// Only in areas the index draws itself (a city, a region): no country can be told.
    Unknown,
    /// In these countries (ISO 3166-1 alpha-2).
    In(Vec<String>),
}

/// A brand of the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Brand {
    /// The name on its signs.
    pub name: String,
    /// Where it operates.
    pub operates: Operates,
    /// Its OSM category (`shop=supermarket`).
    pub osm: String,
}

impl Brand {
    /// Whether it operates in `country` (`None` when the receipt's country is unknown).
    fn fits(&self, country: Option<&str>) -> Option<bool> {
        match (&self.operates, country) {
            (_, None) | (Operates::Unknown, _) => None,
            (Operates::Everywhere, Some(_)) => Some(true),
            (Operates::In(codes), Some(country)) => Some(codes.iter().any(|code| code == country)),
        }
    }

    /// The spending category of its OSM category, when it has one.
    pub fn category(&self) -> Option<Category> {
        category_of(&self.osm)
    }
}

/// The spending category of an OSM category (`shop=supermarket` → groceries).
pub fn category_of(osm: &str) -> Option<Category> {
    let (key, value) = osm.split_once('=')?;
    let category = match (key, value) {
        (
            "shop",
            "supermarket" | "convenience" | "greengrocer" | "butcher" | "alcohol" | "beverages" | "deli"
            | "frozen_food" | "seafood" | "cheese" | "wholesale" | "health_food" | "farm" | "dairy" | "wine",
        ) => Category::Groceries,
        (
            "amenity",
            "restaurant" | "fast_food" | "cafe" | "pub" | "bar" | "ice_cream" | "food_court" | "biergarten",
        )
        | ("shop", "bakery" | "pastry" | "confectionery" | "coffee" | "tea" | "chocolate") => Category::Dining,
        ("shop", "doityourself" | "hardware" | "trade" | "paint" | "garden_centre" | "building_materials") => {
            Category::Hardware
        }
        ("shop", "books" | "stationery" | "copyshop" | "newsagent") => Category::Office,
        ("amenity", "pharmacy" | "clinic" | "dentist" | "doctors" | "hospital")
        | ("shop", "chemist" | "optician" | "medical_supply" | "hearing_aids") => Category::Health,
        (
            "amenity",
            "fuel" | "charging_station" | "parking" | "car_rental" | "car_wash" | "bicycle_rental" | "taxi"
            | "ferry_terminal" | "motorcycle_rental",
        )
        | ("shop", "car_repair" | "tyres" | "car_parts" | "car" | "motorcycle" | "bicycle") => Category::Transport,
        ("shop", "electronics" | "mobile_phone" | "computer" | "hifi" | "appliance") => Category::Electronics,
        ("shop", "telecommunication") => Category::Utilities,
        (
            "shop",
            "clothes"
            | "shoes"
            | "department_store"
            | "variety_store"
            | "jewelry"
            | "sports"
            | "toys"
            | "furniture"
            | "houseware"
            | "cosmetics"
            | "beauty"
            | "gift"
            | "bag"
            | "outdoor"
            | "pet"
            | "florist"
            | "bed"
            | "fabric"
            | "perfumery"
            | "watches"
            | "boutique"
            | "general"
            | "interior_decoration"
            | "kitchen"
            | "lighting"
            | "baby_goods"
            | "craft"
            | "video_games"
            | "music"
            | "second_hand"
            | "charity",
        ) => Category::Shopping,
        _ => return None,
    };
    Some(category)
}

/// The directory: brands and their names, indexed.
#[derive(Debug, Default)]
pub struct Directory {
    brands: Vec<Brand>,
    /// Normalised names (words separated by single spaces) → brands.
    by_words: HashMap<String, Vec<u32>>,
    /// Names with every space and mark removed, for logos printed spaced (`A L D I`) → brands.
    by_letters: HashMap<String, Vec<u32>>,
}

/// Words receipts print for other reasons than naming the shop; a brand called so is never matched.
const RECEIPT_WORDS: [&str; 40] = [
    "TOTAL",
    "CASH",
    "CARD",
    "VISA",
    "TAX",
    "CHANGE",
    "SUBTOTAL",
    "RECEIPT",
    "THANK YOU",
    "TABLE",
    "SERVER",
    "DATE",
    "TIME",
    "ORDER",
    "ITEM",
    "ITEMS",
    "QTY",
    "PRICE",
    "AMOUNT",
    "BALANCE",
    "TIP",
    "CREDIT",
    "DEBIT",
    "SALE",
    "STORE",
    "SHOP",
    "MARKET",
    "CAFE",
    "BAR",
    "PUB",
    "GUEST",
    "CHECK",
    "WELCOME",
    "DANKE",
    "MERCI",
    "GRACIAS",
    "SUMME",
    "BON",
    "KASSE",
    "TICKET",
];

/// Whether a name is a word receipts print anyway: a receipt word, a kind of business
/// (`GRILL`, `HOUSE`, `KITCHEN`), a cuisine.
fn ordinary_word(words: &str) -> bool {
    RECEIPT_WORDS.contains(&words)
        || crate::merchant::words::BUSINESS_WORDS.contains(&words)
        || crate::merchant::words::KIND_WORDS.contains(&words)
}

impl Directory {
    /// Reads the directory's TSV form (see `scripts/build_brands.py`).
    pub fn parse(tsv: &str) -> Directory {
        let mut directory = Directory::default();
        for line in tsv.lines().filter(|line| !line.starts_with('#') && !line.is_empty()) {
            let mut fields = line.split('\t');
            let (Some(name), Some(others), Some(countries), Some(osm)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let operates = match countries {
                "*" => Operates::Everywhere,
                "?" => Operates::Unknown,
                list => Operates::In(list.split(',').map(str::to_owned).collect()),
            };
            let Ok(id) = u32::try_from(directory.brands.len()) else { break };
            directory.brands.push(Brand { name: name.to_owned(), operates, osm: osm.to_owned() });
            for spelling in std::iter::once(name).chain(others.split('|')).filter(|s| !s.is_empty()) {
                let words = words_key(spelling);
                if words.is_empty() || ordinary_word(&words) {
                    continue;
                }
                let letters = words.replace(' ', "");
                let entry = directory.by_words.entry(words).or_default();
                if !entry.contains(&id) {
                    entry.push(id);
                }
                if letters.chars().count() >= 4 {
                    let entry = directory.by_letters.entry(letters).or_default();
                    if !entry.contains(&id) {
                        entry.push(id);
                    }
                }
            }
        }
        directory
    }

    /// The directory shipped with this build.
    pub fn bundled() -> &'static Directory {
        static BUNDLED: LazyLock<Directory> = LazyLock::new(|| Directory::parse(include_str!("../data/brands.tsv")));
        &BUNDLED
    }

    /// How many brands it holds.
    pub fn len(&self) -> usize {
        self.brands.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.brands.is_empty()
    }

    /// The brand printed on upper-cased `rows`, for a receipt from `country` when known.
    pub fn find(&self, rows: &[String], country: Option<&str>) -> Option<BrandMatch<'_>> {
        if self.is_empty() {
            return None;
        }
        // Evidence per brand name (brands of one name share it), with the row it was best seen on.
        let mut evidence: HashMap<String, Seen> = HashMap::new();
        let mut note = |key: String, weight: f64, row: Option<usize>, how: &'static str| {
            let seen = evidence.entry(key).or_insert(Seen { score: 0.0, row, how, kinds: Vec::new() });
            // Repeated mentions add less than the first.
            seen.score += if seen.score > 0.0 { weight.min(1.0) } else { weight };
            if !seen.kinds.contains(&how) {
                seen.kinds.push(how);
            }
        };
        // An invoice's buyer is no brand of this receipt, however well known.
        let buyer = crate::merchant::words::buyer_rows(rows);
        for (index, row) in rows.iter().enumerate() {
            if buyer[index] {
                continue;
            }
            let header = index < HEADER_ROWS;
            let legal = legal_entity(row);
            let base = match (header, legal) {
                (true, named) => (2.0 - 0.1 * index as f64).max(if named { 2.0 } else { 0.0 }),
                (false, true) => 2.0,
                (false, false) => 0.5,
            };
            let how = match (legal, header) {
                (true, _) => "legal entity line",
                (false, true) => "header",
                (false, false) => "mention",
            };
            let row_words = words_key(row);
            for (key, whole_row, spaced) in self.names_in(&row_words) {
                let letters = key.chars().filter(|c| c.is_alphabetic()).count();
                if letters < 2 || (letters <= 3 && !whole_row) {
                    continue;
                }
                // A row that is the name alone, among the first rows, is the sign's own line; a
                // single word inside a longer row is as often an ordinary word (`EXPRESS`, `HOME`).
                let alone = whole_row && index < TOP_ROWS;
                let single_word = !key.contains(' ') && letters < 6;
                let weight = if alone {
                    base + 1.5
                } else if single_word && !spaced {
                    base / 2.0
                } else {
                    base
                };
                let how = match (spaced, alone) {
                    (true, _) => "spaced logo",
                    (false, true) => "sign",
                    (false, false) => how,
                };
                note(key, weight, Some(index), how);
            }
            for label in domain_labels(row) {
                for (key, _, _) in self.names_in(&label) {
                    note(key, 2.5, Some(index), "web or e-mail domain");
                }
            }
        }
        let mut best: Option<BrandMatch<'_>> = None;
        for (key, Seen { score, row, how, kinds }) in evidence {
            let candidates = self.by_words.get(&key).or_else(|| self.by_letters.get(&key.replace(' ', "")));
            let Some(ids) = candidates else { continue };
            // The brand of that name that operates in the receipt's country, else one that may.
            let fitting =
                ids.iter().map(|id| &self.brands[*id as usize]).filter_map(|brand| match brand.fits(country) {
                    Some(false) => None,
                    Some(true) => Some((brand, 1.0_f64)),
                    // With the receipt's country unknown, a brand of a few countries needs more.
                    None if matches!(brand.operates, Operates::In(_)) => Some((brand, -0.5)),
                    None => Some((brand, 0.0)),
                });
            let Some((brand, bonus)) = fitting.max_by(|a, b| a.1.total_cmp(&b.1)) else { continue };
            let score = score + bonus;
            let better = best.as_ref().is_none_or(|current| {
                score > current.score || (score == current.score && brand.name.len() > current.brand.name.len())
            });
            if score >= ACCEPT && better {
                best = Some(BrandMatch { brand, score, row, how, printed: key.clone(), sources: kinds.len() });
            }
        }
        best
    }

    /// The directory's names found in a normalised row: (key, whether it is the whole row,
    /// whether it was found with its letters spaced).
    fn names_in(&self, row: &str) -> Vec<(String, bool, bool)> {
        let words: Vec<&str> = row.split(' ').filter(|w| !w.is_empty()).collect();
        let mut found = Vec::new();
        for length in (1..=words.len().min(6)).rev() {
            for start in 0..=words.len() - length {
                let window = &words[start..start + length];
                let whole = length == words.len();
                let key = window.join(" ");
                if self.by_words.contains_key(&key) {
                    found.push((key, whole, false));
                    continue;
                }
                // Letters spaced out (`A L D I`), or a name OCR split (`MC DONALDS`).
                let letters = window.concat();
                if length > 1 && letters.chars().count() >= 4 && self.by_letters.contains_key(&letters) {
                    let spaced = window.iter().all(|word| word.chars().count() == 1);
                    found.push((letters, whole, spaced));
                }
            }
        }
        found
    }
}

/// A brand found on a receipt.
#[derive(Clone, Debug, PartialEq)]
pub struct BrandMatch<'a> {
    pub brand: &'a Brand,
    /// Its evidence (at least [`ACCEPT`]).
    pub score: f64,
    /// The row it was best seen on.
    pub row: Option<usize>,
    /// Where it was seen first: `sign` (a top row that is the name alone), `spaced logo`, `header`,
    /// `legal entity line`, `web or e-mail domain`, `mention`.
    pub how: &'static str,
    /// The name as matched on the receipt (normalised: `MCDONALDS`).
    pub printed: String,
    /// How many kinds of place it was seen in (a header row and a domain: 2).
    pub sources: usize,
}

/// What was seen of one name.
struct Seen {
    score: f64,
    row: Option<usize>,
    how: &'static str,
    kinds: Vec<&'static str>,
}

impl BrandMatch<'_> {
    /// The name to show: the brand's own in Latin script, else as printed (`ローソン` → `LAWSON`).
    pub fn display_name(&self) -> String {
        let latin = self
            .brand
            .name
            .chars()
            .filter(|c| c.is_alphabetic())
            .all(|c| fold(c.to_uppercase().next().unwrap_or(c)).is_ascii());
        if latin { self.brand.name.to_uppercase() } else { self.printed.clone() }
    }
}

/// Legal forms of companies, as whole words.
pub const LEGAL_FORMS: [&str; 38] = [
    "GMBH", "AG", "KG", "OHG", "GBR", "UG", "E.K.", "INC", "INC.", "LLC", "L.L.C.", "LTD", "LTD.", "LIMITED", "PLC",
    "PVT", "PTY", "CORP", "CORP.", "B.V.", "N.V.", "S.A.", "SA", "S.A.S.", "SAS", "SARL", "S.R.L.", "SRL", "S.P.A.",
    "SPA", "S.L.", "SDN BHD", "BHD", "K.K.", "LDA", "AB", "A/S", "OY",
];

/// Whether a row names a company by its legal form (`Aldi GmbH & Co. KG`, `Acme Pty Ltd`).
pub fn legal_entity(row: &str) -> bool {
    LEGAL_FORMS.iter().any(|form| has_word(row, form))
}

/// The names in a row's web domains and e-mail addresses: `WWW.ALDI-SUED.DE` → `ALDI SUED`.
fn domain_labels(row: &str) -> Vec<String> {
    static DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)(?:WWW\.|@|HTTPS?://)([A-Z0-9][A-Z0-9\-]*(?:\.[A-Z0-9\-]+)*)\.[A-Z]{2,6}\b")
            .unwrap_or_else(|error| panic!("invalid pattern: {error}"))
    });
    DOMAIN
        .captures_iter(row)
        .filter_map(|captures| {
            // The registered name: the last label before the top-level domain (`shop.aldi` → `aldi`).
            let host = captures.get(1)?.as_str();
            // `.co.uk`, `.com.au`: the label before the second-level one.
            let label = host.rsplit('.').find(|label| {
                !["CO", "COM", "ORG", "NET", "GOV", "AC", "EDU", "OR", "NE", "GO"]
                    .contains(&label.to_uppercase().as_str())
            })?;
            let words = words_key(&label.replace('-', " "));
            (!words.is_empty()).then_some(words)
        })
        .collect()
}

/// A name as words: upper case, accents folded, apostrophes dropped (`McDonald's` → `MCDONALDS`),
/// other marks as spaces, single spaces.
pub fn words_key(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_uppercase) {
        let c = fold(c);
        if c.is_alphanumeric() || c == '&' {
            out.push(c);
        } else if c == '\'' || c == '’' || c == '.' {
            // `McDonald's`, `D.I.Y.`: kept together.
        } else {
            out.push(' ');
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<String> {
        text.lines().map(|line| line.trim().to_uppercase()).filter(|line| !line.is_empty()).collect()
    }

    fn found(text: &str, country: Option<&str>) -> Option<(String, &'static str)> {
        Directory::bundled().find(&rows(text), country).map(|m| (m.brand.name.clone(), m.how))
    }

    #[test]
    fn the_bundled_directory_loads_with_its_countries_and_categories() {
        let directory = Directory::bundled();
        assert!(directory.len() > 15_000, "{}", directory.len());
        let aldi = found("A L D I\nSUMME 12,40", Some("DE")).expect("Aldi");
        assert_eq!(aldi, ("Aldi".to_owned(), "spaced logo"));
        assert_eq!(category_of("shop=supermarket"), Some(Category::Groceries));
        assert_eq!(category_of("amenity=fuel"), Some(Category::Transport));
        assert_eq!(category_of("amenity=atm"), None);
    }

    #[test]
    fn a_brand_is_read_from_its_footer_domain_and_legal_line() {
        // The German ALDI receipt whose logo OCR missed.
        let text = "FAD LUNBEL NELL\n33100 PADERBORN\nUNSERE ÖFFNUNGSZEITEN\nMILCH 0,99\nSUMME 12,40\n\
                    Aldi GmbH & Co. KG\nwww.aldi-sued.de";
        let (name, how) = found(text, Some("DE")).expect("Aldi");
        assert_eq!(name, "Aldi");
        assert_eq!(how, "legal entity line");
    }

    #[test]
    fn a_brand_that_does_not_operate_in_the_country_is_not_matched() {
        // `Biedronka` operates in Poland only.
        assert!(found("BIEDRONKA\nSUMA PLN 45,20", Some("PL")).is_some());
        assert_eq!(found("BIEDRONKA\nSUMME 12,40", Some("DE")), None);
    }

    #[test]
    fn short_names_and_receipt_words_need_a_row_of_their_own() {
        // `BP` alone on a header row is the fuel brand; inside a word or a sentence it is nothing.
        assert!(found("BP\nUNLEADED 40.00", Some("GB")).is_some());
        assert_eq!(found("BP CODE 1234\nUNLEADED 40.00", Some("GB")), None);
        // `Total` is a fuel brand and the word of every receipt.
        assert_eq!(found("JOE'S DINER\nTOTAL 12.00", Some("US")), None);
    }

    #[test]
    fn keys_fold_case_accents_and_marks() {
        assert_eq!(words_key("McDonald's"), "MCDONALDS");
        assert_eq!(words_key("Müller  Drogerie"), "MULLER DROGERIE");
        assert_eq!(words_key("7-Eleven"), "7 ELEVEN");
        assert_eq!(domain_labels("WWW.ALDI-SUED.DE"), ["ALDI SUED"]);
        assert_eq!(domain_labels("INFO@SHOP.LIDL.CO.UK"), ["LIDL"]);
    }
}
