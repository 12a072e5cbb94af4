//! Address rows: street lines and town lines of many countries, and the rows that end an address.

use crate::text::{fold_text, has_word, squash};

/// A postcode: five digits (Malaysia, Germany, France, Spain, Italy, the US ZIP), four digits
/// before a town (Austria, Switzerland, the Netherlands, Belgium, Denmark, Norway), a UK or
/// Canadian postcode, an Indian PIN after a dash, an Australian state and postcode.
pub(crate) static POSTCODE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"\b\d{5}\b|\b[A-Z]{1,2}\d[A-Z\d]?\s\d[ABD-HJLNP-UW-Z]{2}\b|\b[A-Z]\d[A-Z]\s?\d[A-Z]\d\b|-\s?\d{6}\b|\b(?:NSW|VIC|QLD|TAS|ACT|WA|SA|NT)\s+\d{4}\b",
    )
    .unwrap_or_else(|error| panic!("invalid pattern: {error}"))
});

/// Words of lines printed under an address that are not part of it: opening hours, greetings.
pub(crate) const NOT_ADDRESS_WORDS: [&str; 16] = [
    "ÖFFNUNGSZEITEN",
    "OFFNUNGSZEITEN",
    "UNSERE",
    "OPENING",
    "HOURS",
    "HORAIRES",
    "ORARI",
    "HORARIO",
    "OPEN ",
    "WELCOME",
    "WILLKOMMEN",
    "BIENVENUE",
    "BIENVENIDO",
    "BENVENUTI",
    "MON-",
    "MO-",
];

/// Street words of many countries, as whole words (with a number on the row).
pub(crate) const STREET_WORDS: [&str; 48] = [
    "JALAN",
    "JLN",
    "TAMAN",
    "LOT",
    "STREET",
    "ROAD",
    "RD",
    "AVE",
    "AVENUE",
    "BLVD",
    "STRASSE",
    "RUE",
    "VIA",
    "CALLE",
    "ST",
    "ST.",
    "DRIVE",
    "DR",
    "PARKWAY",
    "PKWY",
    "HIGHWAY",
    "HWY",
    "WAY",
    "LANE",
    "LN",
    "SUITE",
    "BOULEVARD",
    "STR.",
    "VIALE",
    "PIAZZA",
    "CORSO",
    "AVENIDA",
    "AVDA",
    "RUA",
    "CARRER",
    "CAMINO",
    "PASEO",
    "UL.",
    "ULICA",
    "ALLÉE",
    "CHEMIN",
    "QUAI",
    "LARGO",
    "TRAVESSA",
    "ESTRADA",
    "RODOVIA",
    "MARG",
    "TURNPIKE",
];

/// Street words that are ordinary words too (`THE PLACE 2 BE`): a street only after a house number.
pub(crate) const NUMBERED_STREET_WORDS: [&str; 10] =
    ["PLAZA", "PLACE", "PL", "SQUARE", "SQ", "COURT", "CT", "TERRACE", "CIRCLE", "TRAIL"];

/// Endings of street names written as one word (`HAUPTSTRASSE`, `KIRCHWEG`, `DROTTNINGGATAN`).
pub(crate) const STREET_ENDINGS: [&str; 18] = [
    "STRASSE", "STRAßE", "STRABE", "STR.", "WEG", "GASSE", "PLATZ", "ALLEE", "DAMM", "STRAAT", "GRACHT", "PLEIN",
    "GATAN", "VÄGEN", "VEJ", "GADE", "VEIEN", "GATE",
];

/// Whether a row is a street line: a street word or a street-name ending, with a house number.
pub(crate) fn street_row(row: &str) -> bool {
    let numbered = row.chars().any(|c| c.is_ascii_digit());
    let house_number =
        row.split_whitespace().next().is_some_and(|first| first.starts_with(|c: char| c.is_ascii_digit()));
    numbered
        && (STREET_WORDS.iter().any(|word| has_word(row, word))
            || (house_number && NUMBERED_STREET_WORDS.iter().any(|word| has_word(row, word)))
            || row.split_whitespace().any(|word| {
                let word = word.trim_end_matches([',', ';']);
                word.chars().count() > 4 && STREET_ENDINGS.iter().any(|ending| word.ends_with(ending))
            }))
}

pub(crate) fn stop_address(row: &str) -> bool {
    const STOPS: [&str; 62] = [
        // Tax and company registration ids, which follow an invoice's address.
        "VAT",
        "UST",
        "UST-IDNR",
        "UID",
        "MWST",
        "TVA",
        "IVA",
        "BTW",
        "NIP",
        "IČO",
        "ICO",
        "DIČ",
        "CVR",
        "ORG.NR",
        "MVA",
        "Y-TUNNUS",
        "NPWP",
        "ABN",
        "GSTIN",
        "SIRET",
        "P.IVA",
        "NIF",
        "CIF",
        "RFC",
        "CNPJ",
        "KVK",
        "VERGI",
        "IBAN",
        // Document titles of invoices in other languages (`INVOICE` below).
        "RECHNUNG",
        "FACTURE",
        "FACTURA",
        "FATTURA",
        "FACTUUR",
        "FAKTURA",
        "NOTA FISCAL",
        "TAXINVOICE",
        "COMPANY",
        "GUEST",
        "CHECK",
        "TABLE",
        "SERVER",
        "TEL",
        "ROC",
        "FAX",
        "PHONE",
        "H/P",
        "HP:",
        "GST",
        "TAX INVOICE",
        "INVOICE",
        "RECEIPT",
        "DATE",
        "EMAIL",
        "E-MAIL",
        "WEBSITE",
        "WWW",
        "CASHIER",
        "DOC",
        "SST",
        "CASH BILL",
        "REG NO",
        "BUSINESS",
    ];
    STOPS.iter().any(|stop| has_word(row, stop) || row.starts_with(stop))
}

pub(crate) fn registration_row(row: &str) -> bool {
    let squashed = squash(row);
    let digits = squashed.chars().filter(char::is_ascii_digit).count();
    (row.contains("CO.REG") || row.contains("CO REG") || row.contains("COMPANY NO") || row.contains("ROC"))
        || (squashed.len() <= 14 && digits >= 4 && digits * 2 >= squashed.len())
}

/// Whether a row is part of an address: a street line, a city line with its postcode, or a
/// region's name.
pub(crate) fn address_words(row: &str) -> bool {
    const REGIONS: [&str; 8] = ["SELANGOR", "JOHOR", "KUALA LUMPUR", "PERAK", "PENANG", "MELAKA", "KEDAH", "PAHANG"];
    street_row(row)
        || CITY_STATE_ZIP.is_match(row)
        || (REGIONS.iter().any(|region| has_word(row, region)) && !row.contains("BHD") && !row.contains("S/B"))
}

/// A European town line: a postcode of four or five digits and the town, nothing else
/// (`33100 PADERBORN`, `8001 ZÜRICH`, `75002 PARIS CEDEX 02` is a postcode line too).
pub(crate) static POSTCODE_TOWN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^(?:[A-Z]{1,2}-)?\d{4,5}\s+[A-ZÄÖÜÉÈÀ][A-ZÄÖÜßÉÈÀ\-.]+(?:\s+[A-ZÄÖÜÉÈÀ(][A-ZÄÖÜßÉÈÀ\-.)]*){0,2}(?:\s+\d{1,2})?$")
        .unwrap_or_else(|error| panic!("invalid pattern: {error}"))
});

/// A street line in the order most of the world prints it: the street's name, then the house
/// number (`HAUPTSTRASSE 24`, `AV. PAULISTA, 131`, `JL. THAMRIN NO. 211`, `NORREGADE 6`).
static NAME_THEN_NUMBER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^[A-Z][A-Z.'’\- ]{2,}[ ,]+(?:NO\.?\s?)?\d{1,4}[A-Z]?$")
        .unwrap_or_else(|error| panic!("invalid pattern: {error}"))
});

/// A town line with its postcode, either way round: `33100 PADERBORN`, `602 00 BRNO`,
/// `00-001 WARSZAWA`, `1100-048 LISBOA`, `1012 NX AMSTERDAM`, `BANDUNG 40111`,
/// `MUMBAI - 400050`, `TOKYO 104-0061`. OCR often glues the postcode to the town.
static TOWN_LINE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"^(?:[A-Z]{1,2}-)?(?:\d{4,6}|\d{3} \d{2}|\d{2}-\d{3}|\d{4,5}-\d{3}|\d{3}-\d{4}|\d{4} ?[A-Z]{2})\s*[A-Z][A-Z .,'()\-]*$|^[A-Z][A-Z .,'\-]*[ ,\-]+(?:\d{4,6}|\d{3}-\d{4}|\d{5}-\d{3})$",
    )
    .unwrap_or_else(|error| panic!("invalid pattern: {error}"))
});

/// Whether a row is a town line with its postcode ([`TOWN_LINE`]), accents aside.
pub(crate) fn town_line(row: &str) -> bool {
    TOWN_LINE.is_match(fold_text(row.trim()).as_str())
}

/// Whether `row` is a street printed name-first with its house number, directly above `next`, a
/// town line: the shape of a European, Latin American or Indonesian address.
pub(crate) fn street_above_town(row: &str, next: Option<&String>) -> bool {
    next.is_some_and(|next| town_line(next)) && NAME_THEN_NUMBER.is_match(fold_text(row.trim()).as_str())
}

/// A US city line: a state's two letters and a ZIP code, often run together by OCR (`MESA,AZ85205`).
pub(crate) static CITY_STATE_ZIP: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?:^|[^A-Z])(?:AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY)[\s.,]*\d{5}(?:-\d{4})?\b",
    )
    .unwrap_or_else(|error| panic!("invalid pattern: {error}"))
});

/// A short row that ends with a street's kind (`COLLINS AVE`, `DAWSON STREET`): a street
/// printed without its number.
pub(crate) fn street_without_number(row: &str) -> bool {
    const ENDINGS: [&str; 16] = [
        "AVE",
        "AVE.",
        "AVENUE",
        "BLVD",
        "BLVD.",
        "BOULEVARD",
        "STREET",
        "ROAD",
        "RD",
        "RD.",
        "DRIVE",
        "HWY",
        "HIGHWAY",
        "PARKWAY",
        "PKWY",
        "LANE",
    ];
    let words: Vec<&str> = row.split_whitespace().collect();
    (2..=3).contains(&words.len()) && words.last().is_some_and(|last| ENDINGS.contains(last))
}

/// A row that opens with a house number: a number of three to six digits, alone or with one
/// letter (`237 WASHINGTON`, `#237E, SISIWATH QUAY`), or glued to the street's name as OCR often
/// reads it (`16530BELLFLOWERBLVD`, `4105MAINEAVE`). A business name seldom starts so; a short
/// number does (`99 SPEED MART`, `7-ELEVEN`, `85C BAKERY`).
pub(crate) fn house_number_first(row: &str) -> bool {
    static HOUSE_NUMBER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^#?\d{3,6}(?:[A-Z]?(?:[,.]|$)|[A-Z]{3,})")
            .unwrap_or_else(|error| panic!("invalid pattern: {error}"))
    });
    row.split_whitespace().next().is_some_and(|first| HOUSE_NUMBER.is_match(first))
}

/// A house number OCR glued to the street's name (`16530BELLFLOWERBLVD`, `4105MAINEAVE`).
pub(crate) fn glued_house_number(row: &str) -> bool {
    static GLUED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^#?\d{3,6}[A-Z]{3}").unwrap_or_else(|error| panic!("invalid pattern: {error}"))
    });
    GLUED.is_match(row)
}

/// A town line of any of the shapes read: a US city, state and ZIP, a town with its postcode
/// either way round, or any row holding a postcode.
pub(crate) fn town_row(row: &str) -> bool {
    CITY_STATE_ZIP.is_match(row) || town_line(row) || POSTCODE.is_match(row)
}

/// Whether a row reads like the first line of a postal address.
pub(crate) fn address_start(row: &str) -> bool {
    const STARTS: [&str; 14] = [
        "NO", "LOT", "LEVEL", "UNIT", "BLOK", "BLOCK", "JALAN", "JLN", "TINGKAT", "WISMA", "PLAZA", "G-", "KM", "BATU",
    ];
    let first = row.split_whitespace().next().unwrap_or_default();
    street_row(row)
        || first.starts_with(|c: char| c.is_ascii_digit())
        || STARTS.iter().any(|start| first.starts_with(start))
        || has_word(row, "JALAN")
        || has_word(row, "JLN")
}

/// A phone number printed without a label (`07-355 2616`).
pub(crate) fn bare_phone(row: &str) -> bool {
    let digits = row.chars().filter(char::is_ascii_digit).count();
    let letters = row.chars().filter(char::is_ascii_alphabetic).count();
    // With dashes (`07-355 2616`), or nine digits or more standing alone (`8328902382`,
    // `(631) 329.1600`): longer than any postcode.
    let alone = row.chars().all(|c| c.is_ascii_digit() || " ().+/".contains(c));
    digits >= 7 && letters <= 2 && (row.contains('-') || (alone && digits >= 9))
}
