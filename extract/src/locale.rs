//! The receipt's country and conventions, inferred from what it prints.
//!
//! Every signal adds weight to one or more countries:
//!
//! | signal | examples | weight |
//! |---|---|---|
//! | currency code or unambiguous symbol | `MYR`, `RM9.00`, `£`, `₹`, `S$`, `CHF` | 3 (`USD` 2; `EUR`/`€` 1 to each euro country) |
//! | address shape | US state + ZIP `WA 98201`, UK postcode `SW1A 1AA`, Malaysian postcode + state `81100 JOHOR` | 4 |
//! | address and company words | `STRASSE`, `GMBH`; `RUE`, `SARL`; `CALLE`; `VIA`, `S.R.L.`; `STRAAT`, `B.V.`; `RUA`, `LDA`; `JALAN`, `SDN BHD` | 2 |
//! | phone format | `(425) 555-0101`, `425-555-0101`; `+49 …`, `+33 …`, `+60 …` | 3 (prefix 4) |
//! | tax words | `SALES TAX`; `MWST`/`UST`; `TVA`; `IVA`; `BTW`; `GST`; `SST`; `PPN`; `VAT` | 1–2 |
//! | language words | `SUMME`, `DANKE`; `MERCI`; `GRACIAS`; `GRAZIE`; `BEDANKT`; `OBRIGADO`; `TERIMA KASIH` | 1 each, at most 3 |
//! | the account's default country | a prior | 1.5 |
//!
//! The country with the most weight wins when it has at least [`MIN_COUNTRY_WEIGHT`] and leads
//! the next by at least 1. It decides the date order (month-first only for the US), the decimal
//! mark (unless the amounts themselves show theirs), the currency of a bare `$` or of a receipt
//! that prints no currency at all, and the cash-rounding rule (none unless the country has one).
//! The account's default is only a prior: one clear signal (weight 3 or more) outweighs it.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use rust_decimal::Decimal;

use crate::text::has_word;
use finagent_core::money::Currency;

/// A country must reach this much weight to be chosen.
pub const MIN_COUNTRY_WEIGHT: f64 = 2.5;
/// The weight of the account's default country.
pub const PRIOR_WEIGHT: f64 = 1.5;

/// How numeric dates are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateOrder {
    /// `25/12/2018`.
    DayFirst,
    /// `12/25/2018`.
    MonthFirst,
}

/// What a country's receipts follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Country {
    /// ISO 3166-1 alpha-2.
    pub code: &'static str,
    /// ISO 4217 currency.
    pub currency: &'static str,
    /// Numeric date order.
    pub date_order: DateOrder,
    /// Whether amounts use a decimal comma (`24,23`).
    pub decimal_comma: bool,
    /// Cash payments rounded to this many cents (5 for 0.05), if the country rounds cash.
    pub cash_rounding_cents: Option<u32>,
    /// Main language (ISO 639-1).
    pub language: &'static str,
    /// Whether a bare `$` is this country's currency.
    pub dollar: bool,
}

const fn country(
    code: &'static str,
    currency: &'static str,
    date_order: DateOrder,
    decimal_comma: bool,
    cash_rounding_cents: Option<u32>,
    language: &'static str,
    dollar: bool,
) -> Country {
    Country { code, currency, date_order, decimal_comma, cash_rounding_cents, language, dollar }
}

use DateOrder::{DayFirst, MonthFirst};

/// The countries whose conventions are known.
pub const COUNTRIES: [Country; 24] = [
    country("US", "USD", MonthFirst, false, None, "en", true),
    country("CA", "CAD", DayFirst, false, Some(5), "en", true),
    country("GB", "GBP", DayFirst, false, None, "en", false),
    country("IE", "EUR", DayFirst, false, Some(5), "en", false),
    country("DE", "EUR", DayFirst, true, None, "de", false),
    country("AT", "EUR", DayFirst, true, None, "de", false),
    country("CH", "CHF", DayFirst, false, Some(5), "de", false),
    country("FR", "EUR", DayFirst, true, None, "fr", false),
    country("BE", "EUR", DayFirst, true, Some(5), "fr", false),
    country("NL", "EUR", DayFirst, true, Some(5), "nl", false),
    country("ES", "EUR", DayFirst, true, None, "es", false),
    country("IT", "EUR", DayFirst, true, Some(5), "it", false),
    country("PT", "EUR", DayFirst, true, None, "pt", false),
    country("MY", "MYR", DayFirst, false, Some(5), "en", false),
    country("SG", "SGD", DayFirst, false, None, "en", true),
    country("ID", "IDR", DayFirst, true, None, "id", false),
    country("IN", "INR", DayFirst, false, None, "en", false),
    country("AE", "AED", DayFirst, false, None, "en", false),
    country("AU", "AUD", DayFirst, false, Some(5), "en", true),
    country("NZ", "NZD", DayFirst, false, Some(10), "en", true),
    country("MX", "MXN", DayFirst, false, None, "es", true),
    country("BR", "BRL", DayFirst, true, None, "pt", false),
    country("KH", "USD", DayFirst, false, None, "en", true),
    country("TH", "THB", DayFirst, false, None, "en", false),
];

const EURO: [&str; 9] = ["DE", "AT", "FR", "BE", "NL", "ES", "IT", "PT", "IE"];

/// Looks a country up by its code.
pub fn country_by_code(code: &str) -> Option<&'static Country> {
    COUNTRIES.iter().find(|country| country.code.eq_ignore_ascii_case(code))
}

/// What the receipt's print says about where it is from.
#[derive(Clone, Debug, PartialEq)]
pub struct Locale {
    /// The inferred country, when the evidence is clear enough.
    pub country: Option<&'static Country>,
    /// The language of the receipt's words (ISO 639-1), when any are recognised.
    pub language: Option<&'static str>,
    /// The currency: printed, or implied by the country.
    pub currency: Option<Currency>,
    /// How sure the currency is, in 0–1.
    pub currency_confidence: f64,
    /// Numeric date order.
    pub date_order: DateOrder,
    /// Whether the date order came from evidence (a country or a currency) rather than a default.
    pub date_order_known: bool,
    /// Whether amounts use a decimal comma.
    pub decimal_comma: bool,
    /// Cash-rounding step, when the country rounds cash payments.
    pub cash_rounding: Option<Decimal>,
    /// The signals found, strongest first.
    pub evidence: Vec<String>,
}

impl Default for Locale {
    fn default() -> Self {
        Self {
            country: None,
            language: None,
            currency: None,
            currency_confidence: 0.0,
            date_order: DayFirst,
            date_order_known: false,
            decimal_comma: false,
            cash_rounding: None,
            evidence: Vec::new(),
        }
    }
}

impl Locale {
    /// BCP 47 tag: `en-US`, `de-DE`, or the language alone.
    pub fn tag(&self) -> Option<String> {
        match (self.language.or(self.country.map(|c| c.language)), self.country) {
            (Some(language), Some(country)) => Some(format!("{language}-{}", country.code)),
            (Some(language), None) => Some(language.to_owned()),
            (None, Some(country)) => Some(format!("und-{}", country.code)),
            (None, None) => None,
        }
    }

    /// Whether numeric dates read month-first.
    pub fn month_first(&self) -> bool {
        self.date_order == MonthFirst
    }
}

/// A prior from the account's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocaleHint {
    /// Default country (ISO 3166-1 alpha-2).
    pub country: Option<String>,
    /// Default currency (ISO 4217).
    pub currency: Option<String>,
}

fn pattern(text: &str) -> Regex {
    Regex::new(text).unwrap_or_else(|error| panic!("invalid locale pattern: {error}"))
}

const US_STATES: &str = "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY";

static US_STATE_ZIP: LazyLock<Regex> =
    LazyLock::new(|| pattern(&format!(r"\b({US_STATES})\.?,?\s{{0,2}}(\d{{5}})(?:-\d{{4}})?\b")));
static US_PHONE: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"\(\d{3}\)\s?\d{3}[-. ]\d{4}\b|\b\d{3}[-.]\d{3}[-.]\d{4}\b"));
static UK_POSTCODE: LazyLock<Regex> = LazyLock::new(|| pattern(r"\b[A-Z]{1,2}\d[A-Z\d]?\s\d[ABD-HJLNP-UW-Z]{2}\b"));
static FIVE_DIGIT_CITY: LazyLock<Regex> = LazyLock::new(|| pattern(r"\b(\d{5})\s+([A-ZÄÖÜÉÈÀ][A-ZÄÖÜßÉÈÀ\-]{2,})"));
static PHONE_PREFIX: LazyLock<Regex> = LazyLock::new(|| pattern(r"(?:\+|\b00)(\d{2,3})[\s\-(]"));
static RINGGIT: LazyLock<Regex> = LazyLock::new(|| pattern(r"\bRM\s?\d|\(RM\)|\bRM\b"));
static RUPIAH: LazyLock<Regex> = LazyLock::new(|| pattern(r"\bRP\.?\s?\d"));
static RUPEE: LazyLock<Regex> = LazyLock::new(|| pattern(r"₹|\bRS\.?\s?\d|\bINR\b"));
static DOLLAR: LazyLock<Regex> = LazyLock::new(|| pattern(r"\$\s?\d|\d\s?\$"));
static COMMA_DECIMAL: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"(?:^|[^\d,.])\d{1,3}(?:\.\d{3})*,\d{2}(?:[^\d,.]|$)"));
static POINT_DECIMAL: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"(?:^|[^\d,.])\d{1,3}(?:,\d{3})*\.\d{2}(?:[^\d,.]|$)"));

const MALAYSIAN_STATES: [&str; 17] = [
    "JOHOR",
    "SELANGOR",
    "KUALA LUMPUR",
    "PULAU PINANG",
    "PENANG",
    "PERAK",
    "KEDAH",
    "MELAKA",
    "PAHANG",
    "SABAH",
    "SARAWAK",
    "NEGERI SEMBILAN",
    "TERENGGANU",
    "KELANTAN",
    "PERLIS",
    "PUTRAJAYA",
    "SHAH ALAM",
];

/// Country-specific words in addresses and company forms.
const PLACE_WORDS: [(&str, &[&str]); 9] = [
    ("DE", &["STRASSE", "STRAßE", "STR.", "GMBH", "PLATZ", "STEUERNR", "UST-IDNR", "FILIALE"]),
    ("FR", &["RUE", "AVENUE", "BOULEVARD", "SARL", "SIRET", "SIREN", "TVA INTRACOM"]),
    ("ES", &["CALLE", "AVDA", "C/", "S.L.", "CIF", "NIF:"]),
    ("IT", &["VIA", "VIALE", "PIAZZA", "CORSO", "S.R.L.", "SRL", "S.P.A.", "P.IVA", "P. IVA", "PARTITA IVA"]),
    ("NL", &["STRAAT", "LAAN", "PLEIN", "B.V.", "KVK"]),
    ("PT", &["RUA", "AVENIDA", "LDA", "CONTRIBUINTE"]),
    ("MY", &["JALAN", "JLN", "TAMAN", "SDN BHD", "SDN. BHD", "BHD", "KEDAI", "RESTORAN"]),
    ("US", &["BLVD", "AVE", "SUITE", "HWY", "STE"]),
    ("GB", &["VAT NO", "VAT REG", "LTD"]),
];

/// Phone prefixes.
const PHONE_PREFIXES: [(&str, &str); 17] = [
    ("1", "US"),
    ("49", "DE"),
    ("43", "AT"),
    ("41", "CH"),
    ("33", "FR"),
    ("32", "BE"),
    ("31", "NL"),
    ("34", "ES"),
    ("39", "IT"),
    ("351", "PT"),
    ("44", "GB"),
    ("353", "IE"),
    ("60", "MY"),
    ("65", "SG"),
    ("91", "IN"),
    ("971", "AE"),
    ("62", "ID"),
];

/// Tax words and the countries that print them.
const TAX_WORDS: [(&str, &[&str], f64); 10] = [
    ("SALES TAX", &["US"], 2.0),
    ("MWST", &["DE", "AT", "CH"], 2.0),
    ("UST", &["DE", "AT"], 1.0),
    ("TVA", &["FR", "BE"], 2.0),
    ("IVA", &["ES", "IT", "PT"], 1.5),
    ("BTW", &["NL", "BE"], 2.0),
    ("SST", &["MY"], 2.0),
    ("GST", &["MY", "SG", "IN", "AU", "NZ", "CA"], 1.0),
    ("PPN", &["ID"], 2.0),
    ("VAT", &["GB", "IE", "AE"], 1.0),
];

/// Words that only one language prints on receipts (upper case).
pub const LANGUAGE_WORDS: [(&str, &[&str]); 9] = [
    (
        "de",
        &[
            "SUMME",
            "ZU ZAHLEN",
            "GESAMT",
            "GESAMTBETRAG",
            "BETRAG",
            "RÜCKGELD",
            "WECHSELGELD",
            "GEGEBEN",
            "BAR",
            "DANKE",
            "VIELEN DANK",
            "ZWISCHENSUMME",
            "MWST",
            "QUITTUNG",
            "KASSE",
            "BELEG",
            "UHRZEIT",
            "DATUM",
            "STÜCK",
            "EINKAUF",
        ],
    ),
    (
        "fr",
        &[
            "MERCI",
            "TOTAL TTC",
            "TTC",
            "HT",
            "NET A PAYER",
            "NET À PAYER",
            "MONTANT",
            "ESPECES",
            "ESPÈCES",
            "RENDU",
            "MONNAIE",
            "CARTE BANCAIRE",
            "SOUS-TOTAL",
            "SOUS TOTAL",
            "BIENTÔT",
            "BIENTOT",
            "ADDITION",
        ],
    ),
    (
        "es",
        &[
            "GRACIAS",
            "IMPORTE",
            "TOTAL A PAGAR",
            "EFECTIVO",
            "CAMBIO",
            "TARJETA",
            "FECHA",
            "FACTURA",
            "SU VISITA",
            "VUELTO",
        ],
    ),
    (
        "it",
        &[
            "GRAZIE",
            "TOTALE",
            "CONTANTI",
            "RESTO",
            "SCONTRINO",
            "IMPORTO",
            "COMPLESSIVO",
            "CORRISPETTIVI",
            "ARRIVEDERCI",
            "COPERTO",
        ],
    ),
    ("nl", &["BEDANKT", "TOTAAL", "TE BETALEN", "WISSELGELD", "CONTANT", "PINNEN", "BONNUMMER", "TOT ZIENS", "BTW"]),
    ("pt", &["OBRIGADO", "OBRIGADA", "TOTAL A PAGAR", "DINHEIRO", "TROCO", "CARTÃO", "CONTRIBUINTE", "VOLTE SEMPRE"]),
    ("ms", &["TERIMA KASIH", "JUMLAH", "TUNAI", "BAKI", "TARIKH", "RESIT", "KEDAI", "SILA", "DATANG LAGI", "BAYARAN"]),
    ("id", &["TERIMA KASIH", "TOTAL BAYAR", "KEMBALI", "KEMBALIAN", "TUNAI", "TANGGAL", "HARGA", "BELANJA"]),
    (
        "en",
        &[
            "THANK YOU",
            "TOTAL",
            "SUBTOTAL",
            "CHANGE",
            "CASH",
            "RECEIPT",
            "TIP",
            "SERVER",
            "GUEST",
            "CHECK",
            "TABLE",
            "AMOUNT",
            "BALANCE",
            "WELCOME",
        ],
    ),
];

#[derive(Default)]
struct Tally {
    weights: BTreeMap<&'static str, f64>,
    evidence: Vec<(f64, String)>,
}

impl Tally {
    fn add(&mut self, countries: &[&'static str], weight: f64, what: String) {
        for country in countries {
            *self.weights.entry(country).or_default() += weight;
        }
        self.evidence.push((weight, what));
    }
}

fn code_list(code: &'static str) -> &'static [&'static str] {
    COUNTRIES.iter().find(|c| c.code == code).map_or(&[], |c| std::slice::from_ref(&c.code))
}

fn printed_currency(text: &str, rows: &[String], tally: &mut Tally) -> Option<(Currency, f64, bool)> {
    // ISO codes printed as words.
    const CODES: [(&str, &[&str], f64); 17] = [
        ("MYR", &["MY"], 3.0),
        ("SGD", &["SG"], 3.0),
        ("GBP", &["GB"], 3.0),
        ("INR", &["IN"], 3.0),
        ("AED", &["AE"], 3.0),
        ("IDR", &["ID"], 3.0),
        ("AUD", &["AU"], 3.0),
        ("NZD", &["NZ"], 3.0),
        ("CAD", &["CA"], 3.0),
        ("CHF", &["CH"], 3.0),
        ("THB", &["TH"], 3.0),
        ("MXN", &["MX"], 3.0),
        ("BRL", &["BR"], 3.0),
        ("USD", &["US"], 2.0),
        ("EUR", &EURO, 1.0),
        ("HKD", &[], 0.0),
        ("JPY", &[], 0.0),
    ];
    let mut found: Option<(Currency, f64, bool)> = None;
    for (code, countries, weight) in CODES {
        if rows.iter().any(|row| has_word(row, code))
            && let Ok(currency) = code.parse::<Currency>()
        {
            tally.add(countries, weight, format!("currency code {code}"));
            found.get_or_insert((currency, 0.9, false));
        }
    }
    let symbol = |tally: &mut Tally, present: bool, code: &str, countries: &[&'static str], weight: f64, what: &str| {
        if present {
            tally.add(countries, weight, what.to_owned());
            code.parse::<Currency>().ok()
        } else {
            None
        }
    };
    let symbols = [
        symbol(tally, RINGGIT.is_match(text), "MYR", &["MY"], 3.0, "ringgit sign RM"),
        symbol(tally, text.contains('€'), "EUR", &EURO, 1.0, "euro sign"),
        symbol(tally, text.contains('£'), "GBP", &["GB"], 3.0, "pound sign"),
        symbol(tally, RUPEE.is_match(text), "INR", &["IN"], 3.0, "rupee sign"),
        symbol(tally, RUPIAH.is_match(text), "IDR", &["ID"], 3.0, "rupiah sign Rp"),
        symbol(tally, text.contains("S$"), "SGD", &["SG"], 3.0, "Singapore dollar sign S$"),
        symbol(tally, has_word(text, "DHS") || has_word(text, "AED"), "AED", &["AE"], 3.0, "dirham"),
    ];
    if let Some(currency) = symbols.into_iter().flatten().next() {
        found.get_or_insert((currency, 0.85, false));
    }
    let dollar = DOLLAR.is_match(text);
    if dollar {
        // A dollar sign says "some dollar", most often the US one.
        tally.add(&["US"], 1.0, "dollar sign".to_owned());
    }
    found.or_else(|| dollar.then_some((Currency::USD, 0.0, true)))
}

fn address_and_phone(text: &str, rows: &[String], tally: &mut Tally) {
    if let Some(found) = US_STATE_ZIP.find(text) {
        tally.add(&["US"], 4.0, format!("US state + ZIP {:?}", found.as_str()));
    }
    if let Some(found) = UK_POSTCODE.find(text) {
        tally.add(&["GB"], 4.0, format!("UK postcode {:?}", found.as_str()));
    }
    for captures in FIVE_DIGIT_CITY.captures_iter(text) {
        let city = &captures[2];
        if let Some(state) =
            MALAYSIAN_STATES.iter().find(|state| text[captures.get(0).map_or(0, |m| m.start())..].contains(*state))
        {
            tally.add(&["MY"], 4.0, format!("Malaysian postcode + state {:?} {state}", &captures[1]));
            break;
        }
        if !["TOTAL", "CASH", "VISA", "ITEMS", "BHD", "SDN"].contains(&city) {
            tally.add(&["DE", "FR", "ES", "IT", "MY"], 0.5, format!("5-digit postcode + city {:?}", &captures[0]));
            break;
        }
    }
    for (country, words) in PLACE_WORDS {
        let hits: Vec<&str> = words.iter().copied().filter(|word| rows.iter().any(|row| has_word(row, word))).collect();
        if let Some(first) = hits.first() {
            tally.add(
                code_list(country),
                if hits.len() > 1 { 3.0 } else { 2.0 },
                format!("address/company word {first}"),
            );
        }
    }
    if let Some(found) = US_PHONE.find(text) {
        // Canada shares the format; its postal codes say so on their own.
        tally.add(&["US"], 3.0, format!("North American phone {:?}", found.as_str()));
        tally.add(&["CA"], 2.0, String::new());
    }
    if let Some(captures) = PHONE_PREFIX.captures(text) {
        let digits = &captures[1];
        if let Some((_, country)) = PHONE_PREFIXES
            .iter()
            .filter(|(prefix, _)| digits.starts_with(prefix))
            .max_by_key(|(prefix, _)| prefix.len())
        {
            tally.add(code_list(country), 4.0, format!("phone prefix +{digits}"));
        }
    }
}

fn words(rows: &[String], tally: &mut Tally) -> Option<&'static str> {
    for (word, countries, weight) in TAX_WORDS {
        if rows.iter().any(|row| has_word(row, word)) {
            tally.add(countries, weight, format!("tax word {word}"));
        }
    }
    let mut languages: Vec<(&'static str, usize, &'static str)> = LANGUAGE_WORDS
        .iter()
        .filter_map(|(language, words)| {
            let hits: Vec<&'static str> =
                words.iter().copied().filter(|word| rows.iter().any(|row| has_word(row, word))).collect();
            (!hits.is_empty()).then(|| (*language, hits.len(), hits[0]))
        })
        .collect();
    // English words are printed everywhere (TOTAL, CASH): they only decide when nothing else does.
    languages.sort_by_key(|(language, hits, _)| {
        (std::cmp::Reverse(usize::from(*language != "en") * hits.min(&3)), std::cmp::Reverse(*hits))
    });
    for (language, hits, first) in &languages {
        if *language == "en" {
            continue;
        }
        // Malaysian receipts are mostly printed in English; Malay words point there all the same.
        let countries: Vec<&'static str> = COUNTRIES
            .iter()
            .filter(|c| c.language == *language || (*language == "ms" && c.code == "MY"))
            .map(|c| c.code)
            .collect();
        tally.add(&countries, (*hits).min(3) as f64 * 0.7, format!("{language} words ({hits}, e.g. {first})"));
    }
    // Another language needs two of its words, and no fewer than English has: one `BAR` on a
    // Malaysian receipt (`BAR WANG RICE`) does not make it German.
    let english = languages.iter().find(|(language, _, _)| *language == "en").map_or(0, |(_, hits, _)| *hits);
    match languages.iter().find(|(language, _, _)| *language != "en") {
        Some((language, hits, _)) if *hits >= 2 && *hits >= english => Some(*language),
        _ if english > 0 => Some("en"),
        Some((language, _, _)) => Some(*language),
        None => None,
    }
}

/// Infers the locale of upper-cased rows, with the account's settings as a prior.
pub fn infer(rows: &[String], hint: &LocaleHint) -> Locale {
    let text = rows.join("\n");
    let mut tally = Tally::default();
    let printed = printed_currency(&text, rows, &mut tally);
    address_and_phone(&text, rows, &mut tally);
    let language = words(rows, &mut tally);
    if let Some(prior) = hint.country.as_deref().and_then(country_by_code) {
        tally.add(std::slice::from_ref(&prior.code), PRIOR_WEIGHT, format!("account default country {}", prior.code));
    }
    let mut ranked: Vec<(&'static str, f64)> = tally.weights.iter().map(|(c, w)| (*c, *w)).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let country = match ranked.as_slice() {
        [(best, weight), rest @ ..]
            if *weight >= MIN_COUNTRY_WEIGHT && rest.first().is_none_or(|(_, second)| weight - second >= 1.0) =>
        {
            country_by_code(best)
        }
        _ => None,
    };
    // Without a clear winner, the account's default country stands unless the print points
    // elsewhere at least as strongly.
    let prior = hint.country.as_deref().and_then(country_by_code);
    let country = country.or_else(|| {
        let prior = prior?;
        let own = tally.weights.get(prior.code).copied().unwrap_or_default();
        tally.weights.iter().all(|(code, weight)| *code == prior.code || *weight < own).then_some(prior)
    });
    // The currency: printed beats the country; a bare `$` is the country's dollar if it has one.
    let (currency, currency_confidence) = match (printed, country) {
        (Some((currency, confidence, false)), _) => (Some(currency), confidence),
        (Some((_, _, true)), Some(country)) if country.dollar => (country.currency.parse().ok(), 0.85),
        (Some((_, _, true)), _) => match hint.currency.as_deref().and_then(|c| c.parse::<Currency>().ok()) {
            Some(prior) => (Some(prior), 0.6),
            None => (Some(Currency::USD), 0.5),
        },
        (None, Some(country)) => (country.currency.parse().ok(), 0.6),
        (None, None) => (hint.currency.as_deref().and_then(|c| c.parse().ok()), 0.4),
    };
    let comma_decimals = COMMA_DECIMAL.find_iter(&text).count();
    let point_decimals = POINT_DECIMAL.find_iter(&text).count();
    let decimal_comma = if comma_decimals != point_decimals {
        comma_decimals > point_decimals
    } else {
        country.is_some_and(|c| c.decimal_comma)
    };
    let (date_order, date_order_known) = match (country, currency) {
        (Some(country), _) => (country.date_order, true),
        (None, Some(currency)) if currency == Currency::USD => (MonthFirst, true),
        (None, Some(_)) => (DayFirst, true),
        (None, None) => (DayFirst, false),
    };
    let mut evidence: Vec<(f64, String)> = tally.evidence.into_iter().filter(|(_, what)| !what.is_empty()).collect();
    evidence.sort_by(|a, b| b.0.total_cmp(&a.0));
    Locale {
        country,
        language,
        currency,
        currency_confidence,
        date_order,
        date_order_known,
        decimal_comma,
        cash_rounding: country.and_then(|c| c.cash_rounding_cents).map(|cents| Decimal::new(i64::from(cents), 2)),
        evidence: evidence.into_iter().map(|(_, what)| what).collect(),
    }
}

/// Rewrites decimal-comma amounts with thousands points (`1.234,56`) so the amount reader sees
/// `1234,56`, which it reads as 1234.56.
pub fn normalize_amounts(row: &str) -> String {
    static THOUSANDS: LazyLock<Regex> = LazyLock::new(|| pattern(r"(\d{1,3})\.(\d{3}),(\d{2})\b"));
    THOUSANDS.replace_all(row, "$1$2,$3").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<String> {
        text.lines().map(|line| line.trim().to_uppercase()).filter(|line| !line.is_empty()).collect()
    }

    fn locale(text: &str) -> Locale {
        infer(&rows(text), &LocaleHint::default())
    }

    #[test]
    fn a_us_address_and_a_dollar_sign_make_a_us_receipt() {
        let found = locale("SUSHI MAN\n2710 Colby Ave\nEverett, WA 98201\n(425) 252-2123\n05/11/18\nTotal $24.55");
        assert_eq!(found.country.map(|c| c.code), Some("US"));
        assert_eq!(found.currency, Some(Currency::USD));
        assert!(found.month_first());
        assert_eq!(found.cash_rounding, None);
        assert_eq!(found.tag().as_deref(), Some("en-US"));
        assert!(found.evidence[0].contains("WA 98201"), "{:?}", found.evidence);
    }

    #[test]
    fn a_german_supermarket_reads_day_first_with_a_decimal_comma() {
        let found = locale(
            "REWE Markt GmbH\nHauptstrasse 12\n10115 Berlin\nSUMME EUR 24,23\nGegeben BAR 30,00\nRückgeld 5,77\nMwSt 7%",
        );
        assert_eq!(found.country.map(|c| c.code), Some("DE"));
        assert_eq!(found.currency, Some(Currency::EUR));
        assert!(found.decimal_comma);
        assert!(!found.month_first());
        assert_eq!(found.language, Some("de"));
        assert_eq!(found.tag().as_deref(), Some("de-DE"));
    }

    #[test]
    fn malaysian_receipts_round_cash_and_others_do_not() {
        let found =
            locale("BOOK TA .K (TAMAN DAYA) SDN BHD\nNO.53, JALAN SAGU 18,\n81100 JOHOR BAHRU, JOHOR.\nTOTAL RM 9.00");
        assert_eq!(found.country.map(|c| c.code), Some("MY"));
        assert_eq!(found.currency, Some(Currency::MYR));
        assert_eq!(found.cash_rounding, Some(Decimal::new(5, 2)));
        let british = locale("The Ivy\n1-5 West Street\nLondon WC2H 9NQ\nTOTAL £45.20\nVAT 20%");
        assert_eq!(british.country.map(|c| c.code), Some("GB"));
        assert_eq!(british.currency.map(|c| c.to_string()).as_deref(), Some("GBP"));
        assert_eq!(british.cash_rounding, None);
    }

    #[test]
    fn the_account_default_is_a_prior_not_an_override() {
        let hint = LocaleHint { country: Some("DE".to_owned()), currency: Some("EUR".to_owned()) };
        // No evidence: the prior decides.
        let bare = infer(&rows("TOTAL 12,50"), &hint);
        assert_eq!(bare.country.map(|c| c.code), Some("DE"));
        assert_eq!(bare.currency, Some(Currency::EUR));
        // Clear evidence of another country wins over it.
        let american = infer(&rows("Seattle, WA 98101\nTOTAL $12.50"), &hint);
        assert_eq!(american.country.map(|c| c.code), Some("US"));
        assert_eq!(american.currency, Some(Currency::USD));
    }

    #[test]
    fn one_foreign_word_does_not_change_the_language() {
        let found = locale("BAR WANG RICE@PERMAS JAYA\nNETT TOTAL: $8.20\nCASH $8.20\nCHANGE $0.00\nTHANK YOU");
        assert_eq!(found.language, Some("en"));
        let french = locale("CAFE DE LA GARE\n12 RUE DE LA PAIX\n75002 PARIS\nTOTAL TTC 24,00\nMERCI DE VOTRE VISITE");
        assert_eq!(french.language, Some("fr"));
        assert_eq!(french.country.map(|c| c.code), Some("FR"));
    }

    #[test]
    fn thin_evidence_gives_no_country() {
        let found = locale("TOTAL 9.00\nCASH 10.00");
        assert_eq!(found.country, None);
        assert_eq!(found.currency, None);
        assert!(!found.date_order_known);
        assert_eq!(normalize_amounts("SUMME 1.234,56"), "SUMME 1234,56");
    }
}
