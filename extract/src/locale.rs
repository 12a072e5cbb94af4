//! The receipt's country and conventions, inferred from what it prints.
//!
//! Every signal adds weight to one or more countries:
//!
//! | signal | examples | weight |
//! |---|---|---|
//! | currency code or unambiguous symbol | `MYR`, `RM9.00`, `£`, `₹`, `S$`, `R$`, `HK$`, `¥`, `₩`, `Rp`, `zł`, `M.N.`, `CHF` | 3 (`USD` 2; `¥` 2; `EUR`/`€` 1 to each euro country; `kr` 1 to each krona country) |
//! | tax and company ids | `DE123456789`, `ATU12345678`, `CHE-105.825.480`, GSTIN, ABN, RFC, CNPJ, RUT, CUIT, NIP | 3 |
//! | address shape | US state + ZIP `WA 98201`, UK postcode `SW1A 1AA`, Malaysian postcode + state `81100 JOHOR`, Canadian `M5V 2T6`, Australian `NSW 2000`, Brazilian CEP `01304-001`, Mexican `C.P. 06700`, Dutch, Portuguese and Polish postcodes with a city | 2–4 |
//! | address and company words | `STRASSE`, `GMBH`; `RUE`, `SARL`; `CALLE`; `VIA`, `S.R.L.`; `STRAAT`, `B.V.`; `RUA`, `LDA`; `JALAN`, `SDN BHD` | 2 |
//! | phone format | `(425) 555-0101`, `425-555-0101`; `+49 …`, `+33 …`, `+60 …` | 3 (prefix 4) |
//! | tax words | `SALES TAX`; `MWST`/`UST`; `TVA`; `IVA`; `BTW`; `GST`; `SST`; `PPN`; `VAT` | 1–2 |
//! | language words | `SUMME`, `DANKE`; `MERCI`; `GRACIAS`; `GRAZIE`; `BEDANKT`; `OBRIGADO`; `TERIMA KASIH`; `TACK`; `PARAGON`; `TEŞEKKÜR` | 0.7 each, at most 3 |
//! | the account's default country | a prior | 1.5 |
//!
//! The country with the most weight wins when it has at least [`MIN_COUNTRY_WEIGHT`] and leads
//! the next by at least 1. It decides the date order (month-first only for the US), the decimal
//! mark (unless the amounts themselves show theirs), the currency of a bare `$` or of a receipt
//! that prints no currency at all, and the cash-rounding rule (none unless the country has one).
//! The currency decides whether amounts carry minor units (`¥1,280` and `Rp 125.000` are whole).
//! A printed sign of another country than a clearly inferred one (`¥` read for `@` on a Malaysian
//! receipt) does not set the currency.
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
pub const COUNTRIES: [Country; 39] = [
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
    country("SE", "SEK", DayFirst, true, None, "sv", false),
    country("NO", "NOK", DayFirst, true, None, "no", false),
    country("DK", "DKK", DayFirst, true, None, "da", false),
    country("PL", "PLN", DayFirst, true, None, "pl", false),
    country("TR", "TRY", DayFirst, true, None, "tr", false),
    country("MY", "MYR", DayFirst, false, Some(5), "en", false),
    country("SG", "SGD", DayFirst, false, None, "en", true),
    country("ID", "IDR", DayFirst, true, None, "id", false),
    country("IN", "INR", DayFirst, false, None, "en", false),
    country("AE", "AED", DayFirst, false, None, "en", false),
    country("AU", "AUD", DayFirst, false, Some(5), "en", true),
    country("NZ", "NZD", DayFirst, false, Some(10), "en", true),
    country("MX", "MXN", DayFirst, false, None, "es", true),
    country("BR", "BRL", DayFirst, true, None, "pt", false),
    country("AR", "ARS", DayFirst, true, None, "es", true),
    country("CL", "CLP", DayFirst, true, None, "es", true),
    country("CO", "COP", DayFirst, true, None, "es", true),
    country("KH", "USD", DayFirst, false, None, "en", true),
    country("TH", "THB", DayFirst, false, None, "en", false),
    country("JP", "JPY", DayFirst, false, None, "ja", false),
    country("KR", "KRW", DayFirst, false, None, "ko", false),
    country("CN", "CNY", DayFirst, false, None, "zh", false),
    country("HK", "HKD", DayFirst, false, None, "en", true),
    country("PH", "PHP", MonthFirst, false, None, "en", false),
    country("VN", "VND", DayFirst, true, None, "vi", false),
    country("ZA", "ZAR", DayFirst, false, None, "en", false),
];

/// Currencies whose amounts receipts print without minor units (`¥1,280`, `Rp 125.000`,
/// `₫45.000`): a grouped number is a whole amount, not a decimal one.
pub const WHOLE_CURRENCIES: [&str; 10] = ["JPY", "KRW", "VND", "CLP", "IDR", "COP", "ISK", "PYG", "UGX", "HUF"];

/// How many decimals a currency's receipt amounts carry: 0 for [`WHOLE_CURRENCIES`], else 2.
pub fn minor_units(currency: Currency) -> u32 {
    if WHOLE_CURRENCIES.contains(&currency.code()) { 0 } else { 2 }
}

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
    /// Decimals the currency's amounts are printed with (0 for yen, won, rupiah, dong, pesos
    /// chilenos; 2 otherwise).
    pub minor_units: u32,
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
            minor_units: 2,
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
static DOLLAR: LazyLock<Regex> = LazyLock::new(|| pattern(r"(?:^|[^A-Z])\$\s?\d|\d\s?\$"));
// A dollar sign with its country's letters: `S$`, `R$` (the real), `HK$`, `US$`, `MX$`.
static PREFIXED_DOLLAR: LazyLock<Regex> = LazyLock::new(|| pattern(r"(?:^|[^A-Z])(S|R|A|AU|C|CA|HK|NZ|US|MX|NT)\s?\$"));
// Amounts printed with the yen/yuan sign, the won, the dong, the peso of the Philippines, the lira.
static YEN: LazyLock<Regex> = LazyLock::new(|| pattern(r"[¥￥]\s?\d|\d\s?円"));
static ZLOTY: LazyLock<Regex> = LazyLock::new(|| pattern(r"\d\s?ZŁ\b|\bPLN\b|\bZŁ\s?\d"));
static KRONA: LazyLock<Regex> = LazyLock::new(|| pattern(r"\d\s?KR\b|\bKR\.?\s?\d"));
static DONG: LazyLock<Regex> = LazyLock::new(|| pattern(r"₫|\d\s?(?:Đ|VNĐ|VND)\b"));
// Mexico's "moneda nacional" after an amount (`$123.00 M.N.`).
static MONEDA_NACIONAL: LazyLock<Regex> = LazyLock::new(|| pattern(r"\d\s?M\.\s?N\.?(?:[^A-Z]|$)|\bPESOS\b"));
/// Tax and company ids whose shape names their country.
static TAX_IDS: LazyLock<[(Regex, &'static str, &'static str); 16]> = LazyLock::new(|| {
    [
        (pattern(r"\bDE\s?\d{9}\b"), "DE", "German VAT id"),
        (pattern(r"\bATU\s?\d{8}\b"), "AT", "Austrian VAT id"),
        (pattern(r"\bFR\s?[0-9A-Z]{2}\s?\d{9}\b|\bSIRE[NT]\b"), "FR", "French VAT id or SIRET"),
        (pattern(r"\bIT\s?\d{11}\b|\bP\.?\s?IVA\b"), "IT", "Italian VAT id"),
        (pattern(r"\bES\s?[A-Z]\d{7}[0-9A-Z]\b|\b(?:CIF|NIF)[:.]?\s?[A-Z]\d{7}[0-9A-Z]\b"), "ES", "Spanish tax id"),
        (pattern(r"\bNL\s?\d{9}B\d{2}\b"), "NL", "Dutch VAT id"),
        (pattern(r"\bBE\s?0\d{9}\b"), "BE", "Belgian VAT id"),
        (pattern(r"\bCHE[-\s]?\d{3}\.\d{3}\.\d{3}\b"), "CH", "Swiss company id"),
        (pattern(r"\bGB\s?\d{3}\s?\d{4}\s?\d{2}\b"), "GB", "UK VAT number"),
        (pattern(r"\bNIP[:\s]+\d{3}-?\d{3}-?\d{2}-?\d{2}\b"), "PL", "Polish NIP"),
        (pattern(r"\b\d{2}[A-Z]{5}\d{4}[A-Z][0-9A-Z]Z[0-9A-Z]\b"), "IN", "Indian GSTIN"),
        (pattern(r"\bABN[:\s]+\d{2}\s?\d{3}\s?\d{3}\s?\d{3}\b"), "AU", "Australian ABN"),
        (pattern(r"\bRFC[:\s]+[A-Z&Ñ]{3,4}-?\d{6}-?[0-9A-Z]{3}\b"), "MX", "Mexican RFC"),
        (pattern(r"\b\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}\b|\bCNPJ\b"), "BR", "Brazilian CNPJ"),
        (pattern(r"\bRUT[:\s]+\d{1,2}\.\d{3}\.\d{3}-[0-9K]\b"), "CL", "Chilean RUT"),
        (pattern(r"\bCUIT[:\s]+\d{2}-\d{8}-\d\b"), "AR", "Argentine CUIT"),
    ]
});
/// Postcode shapes that belong to one country (the UK's and the US's are above).
static POSTCODES: LazyLock<[(Regex, &'static str, f64, &'static str); 7]> = LazyLock::new(|| {
    [
        (pattern(r"\b[A-Z]\d[A-Z]\s?\d[A-Z]\d\b"), "CA", 4.0, "Canadian postal code"),
        (pattern(r"\b\d{4}\s?[A-Z]{2}\s+[A-Z]{3,}"), "NL", 2.0, "Dutch postcode + city"),
        (pattern(r"\b\d{5}-\d{3}\b"), "BR", 3.0, "Brazilian CEP"),
        (pattern(r"\b\d{4}-\d{3}\s+[A-Z]{3,}"), "PT", 3.0, "Portuguese postcode + city"),
        (pattern(r"\b\d{2}-\d{3}\s+[A-ZŁŚŻŹĆŃÓ]{3,}"), "PL", 3.0, "Polish postcode + city"),
        (pattern(r"\b(?:NSW|VIC|QLD|TAS|ACT|WA|SA|NT)\s+\d{4}\b"), "AU", 4.0, "Australian state + postcode"),
        (pattern(r"\bC\.\s?P\.?\s?\d{5}\b"), "MX", 3.0, "Mexican código postal"),
    ]
});
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
const PHONE_PREFIXES: [(&str, &str); 38] = [
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
    ("46", "SE"),
    ("47", "NO"),
    ("45", "DK"),
    ("48", "PL"),
    ("90", "TR"),
    ("60", "MY"),
    ("65", "SG"),
    ("91", "IN"),
    ("971", "AE"),
    ("62", "ID"),
    ("61", "AU"),
    ("64", "NZ"),
    ("52", "MX"),
    ("55", "BR"),
    ("54", "AR"),
    ("56", "CL"),
    ("57", "CO"),
    ("855", "KH"),
    ("66", "TH"),
    ("81", "JP"),
    ("82", "KR"),
    ("86", "CN"),
    ("852", "HK"),
    ("63", "PH"),
    ("84", "VN"),
    ("27", "ZA"),
];

/// Tax words and the countries that print them.
const TAX_WORDS: [(&str, &[&str], f64); 15] = [
    ("SALES TAX", &["US"], 2.0),
    ("MWST", &["DE", "AT", "CH"], 2.0),
    ("UST", &["DE", "AT"], 1.0),
    ("TVA", &["FR", "BE"], 2.0),
    ("IVA", &["ES", "IT", "PT", "MX", "AR", "CL", "CO"], 1.5),
    ("MOMS", &["SE", "DK", "NO"], 2.0),
    ("MVA", &["NO"], 2.0),
    ("PTU", &["PL"], 2.0),
    ("KDV", &["TR"], 2.0),
    ("BTW", &["NL", "BE"], 2.0),
    ("SST", &["MY"], 2.0),
    ("GST", &["MY", "SG", "IN", "AU", "NZ", "CA"], 1.0),
    ("CGST", &["IN"], 2.0),
    ("PPN", &["ID"], 2.0),
    ("VAT", &["GB", "IE", "AE", "ZA", "PH"], 1.0),
];

/// Words that only one language prints on receipts (upper case).
pub const LANGUAGE_WORDS: [(&str, &[&str]); 12] = [
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
    ("sv", &["TACK", "KVITTO", "MOMS", "KONTANT", "BETALA", "ATT BETALA", "VÄLKOMMEN", "SUMMA", "KORT", "ÅTER"]),
    (
        "pl",
        &["PARAGON", "FISKALNY", "SUMA", "RAZEM", "GOTÓWKA", "RESZTA", "DZIĘKUJEMY", "KARTA", "SPRZEDAŻ", "PTU", "NIP"],
    ),
    ("tr", &["TEŞEKKÜR", "TESEKKUR", "TOPLAM", "NAKİT", "NAKIT", "FİŞ", "KDV", "ARA TOPLAM", "KREDİ KARTI", "TARİH"]),
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

/// A sign several countries print for their own currency (`$`, `kr`): the inferred country
/// decides which one it is, when it is one of them.
type SharedSign = fn(&Country) -> bool;

/// The printed currency, how sure it is, and whether the sign is shared.
type Printed = (Currency, f64, Option<SharedSign>);

/// Currencies printed on a receipt: ISO codes as words (the first one), the signs found (each with
/// the countries it belongs to) and a shared sign.
#[derive(Default)]
struct PrintedCurrencies {
    code: Option<Currency>,
    signs: Vec<(Currency, &'static [&'static str])>,
    shared: Option<Printed>,
}

fn printed_currency(text: &str, rows: &[String], tally: &mut Tally) -> PrintedCurrencies {
    // ISO codes printed as words.
    const CODES: [(&str, &[&str], f64); 32] = [
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
        ("ARS", &["AR"], 3.0),
        ("CLP", &["CL"], 3.0),
        ("COP", &["CO"], 3.0),
        ("SEK", &["SE"], 3.0),
        ("NOK", &["NO"], 3.0),
        ("DKK", &["DK"], 3.0),
        ("PLN", &["PL"], 3.0),
        ("TRY", &["TR"], 3.0),
        ("JPY", &["JP"], 3.0),
        ("KRW", &["KR"], 3.0),
        ("CNY", &["CN"], 3.0),
        ("RMB", &["CN"], 3.0),
        ("HKD", &["HK"], 3.0),
        ("PHP", &["PH"], 3.0),
        ("VND", &["VN"], 3.0),
        ("ZAR", &["ZA"], 3.0),
        ("USD", &["US"], 2.0),
        ("EUR", &EURO, 1.0),
        ("TWD", &[], 0.0),
    ];
    let mut found = PrintedCurrencies::default();
    for (code, countries, weight) in CODES {
        let iso = if code == "RMB" { "CNY" } else { code };
        if rows.iter().any(|row| has_word(row, code))
            && let Ok(currency) = iso.parse::<Currency>()
        {
            tally.add(countries, weight, format!("currency code {code}"));
            found.code.get_or_insert(currency);
        }
    }
    let symbol =
        |tally: &mut Tally, present: bool, code: &str, countries: &'static [&'static str], weight: f64, what: &str| {
            if present {
                tally.add(countries, weight, what.to_owned());
                code.parse::<Currency>().ok().map(|currency| (currency, countries))
            } else {
                None
            }
        };
    // A dollar sign with its country's letters names that dollar (or the real, `R$`).
    let prefixed = PREFIXED_DOLLAR.captures(text).map(|captures| captures[1].to_owned());
    let prefixed_dollar = prefixed.as_deref().and_then(|letters| match letters {
        "S" => Some(("SGD", &["SG"][..], 3.0)),
        "R" => Some(("BRL", &["BR"][..], 3.0)),
        "A" | "AU" => Some(("AUD", &["AU"][..], 3.0)),
        "C" | "CA" => Some(("CAD", &["CA"][..], 3.0)),
        "HK" => Some(("HKD", &["HK"][..], 3.0)),
        "NZ" => Some(("NZD", &["NZ"][..], 3.0)),
        "MX" => Some(("MXN", &["MX"][..], 3.0)),
        "NT" => Some(("TWD", &[][..], 0.0)),
        "US" => Some(("USD", &[][..], 0.0)),
        _ => None,
    });
    let symbols = [
        prefixed_dollar.and_then(|(code, countries, weight)| {
            symbol(tally, true, code, countries, weight, &format!("dollar sign {}$", prefixed.as_deref().unwrap_or("")))
        }),
        symbol(tally, RINGGIT.is_match(text), "MYR", &["MY"], 3.0, "ringgit sign RM"),
        symbol(tally, text.contains('€'), "EUR", &EURO, 1.0, "euro sign"),
        symbol(tally, text.contains('£'), "GBP", &["GB"], 3.0, "pound sign"),
        symbol(tally, RUPEE.is_match(text), "INR", &["IN"], 3.0, "rupee sign"),
        symbol(tally, RUPIAH.is_match(text), "IDR", &["ID"], 3.0, "rupiah sign Rp"),
        symbol(tally, has_word(text, "DHS") || has_word(text, "AED"), "AED", &["AE"], 3.0, "dirham"),
        symbol(tally, YEN.is_match(text), "JPY", &["JP"], 2.0, "yen sign"),
        symbol(tally, text.contains('₩'), "KRW", &["KR"], 3.0, "won sign"),
        symbol(tally, DONG.is_match(text), "VND", &["VN"], 3.0, "dong sign"),
        symbol(tally, text.contains('₱'), "PHP", &["PH"], 3.0, "peso sign ₱"),
        symbol(tally, text.contains('₺'), "TRY", &["TR"], 3.0, "lira sign"),
        symbol(tally, ZLOTY.is_match(text), "PLN", &["PL"], 3.0, "złoty"),
        symbol(tally, text.contains('฿'), "THB", &["TH"], 3.0, "baht sign"),
        symbol(tally, MONEDA_NACIONAL.is_match(text), "MXN", &["MX"], 3.0, "M.N. (moneda nacional)"),
    ];
    found.signs = symbols.into_iter().flatten().collect();
    if KRONA.is_match(text) {
        tally.add(&["SE", "NO", "DK"], 1.0, "kronor/kroner sign".to_owned());
        let krone: SharedSign = |country| ["SE", "NO", "DK"].contains(&country.code);
        if let Ok(krona) = "SEK".parse::<Currency>() {
            found.shared = Some((krona, 0.0, Some(krone)));
        }
    }
    let dollar = DOLLAR.is_match(text);
    if dollar {
        // A bare dollar sign says "some dollar or peso", most often the US one.
        tally.add(&["US"], 1.0, "dollar sign".to_owned());
    }
    let dollar_country: SharedSign = |country| country.dollar;
    if dollar && found.shared.is_none() {
        found.shared = Some((Currency::USD, 0.0, Some(dollar_country)));
    }
    found
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
    for (shape, country, what) in TAX_IDS.iter() {
        if let Some(found) = shape.find(text) {
            tally.add(code_list(country), 3.0, format!("{what} {:?}", found.as_str()));
        }
    }
    for (shape, country, weight, what) in POSTCODES.iter() {
        if let Some(found) = shape.find(text) {
            tally.add(code_list(country), *weight, format!("{what} {:?}", found.as_str()));
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
    // The currency: a printed code; else a printed sign, the one of the inferred country when
    // several are printed (a sign of another country beside a clear country is more likely OCR
    // noise, `¥` for `@`, than a foreign currency); else the country's own. A shared sign (`$`,
    // `kr`) is the country's when it uses that sign.
    let own_sign = country.and_then(|country| {
        printed.signs.iter().find(|(_, countries)| countries.contains(&country.code)).map(|(currency, _)| *currency)
    });
    let sign = match country {
        Some(_) => own_sign,
        None => printed.signs.first().map(|(currency, _)| *currency),
    };
    let (currency, currency_confidence) = match (printed.code, sign, printed.shared, country) {
        (Some(code), _, _, _) => (Some(code), 0.9),
        (None, Some(sign), _, _) => (Some(sign), 0.85),
        (None, None, Some((_, _, Some(shared))), Some(country)) if shared(country) => {
            (country.currency.parse().ok(), 0.85)
        }
        (None, None, _, Some(country)) => (country.currency.parse().ok(), 0.6),
        (None, None, Some((fallback, _, _)), None) => {
            match hint.currency.as_deref().and_then(|c| c.parse::<Currency>().ok()) {
                Some(prior) => (Some(prior), 0.6),
                None => (Some(fallback), 0.5),
            }
        }
        (None, None, None, None) => (hint.currency.as_deref().and_then(|c| c.parse().ok()), 0.4),
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
        minor_units: currency.map_or(2, minor_units),
        evidence: evidence.into_iter().map(|(_, what)| what).collect(),
    }
}

/// Rewrites a row's amounts into the forms the amount reader takes, following the locale:
/// - with a decimal comma, thousands points and spaces go (`1.234,56`, `1 234,56` → `1234,56`);
/// - in a currency printed without minor units, a whole amount gets them: grouped numbers
///   (`125.000`, `1,280`) and the last number on the row (the value column) become `125000.00`,
///   so that `Rp 125.000` is read as 125,000 and not as 125.
pub fn normalize_amounts(row: &str, locale: &Locale) -> String {
    static THOUSANDS: LazyLock<Regex> = LazyLock::new(|| pattern(r"(\d{1,3})\.(\d{3}),(\d{2})\b"));
    static MILLIONS: LazyLock<Regex> = LazyLock::new(|| pattern(r"(\d{1,3})\.(\d{3})\.(\d{3}),(\d{2})\b"));
    // Space grouping only after a label, a currency sign or a colon: `2 350,00` at the start of
    // an item row is a quantity and a price.
    static SPACED: LazyLock<Regex> = LazyLock::new(|| pattern(r"([A-Z€$£:]\s*)(\d{1,3}) (\d{3}),(\d{2})\b"));
    let mut text = row.to_owned();
    if locale.decimal_comma {
        text = MILLIONS.replace_all(&text, "$1$2$3,$4").into_owned();
        text = THOUSANDS.replace_all(&text, "$1$2,$3").into_owned();
        text = SPACED.replace_all(&text, "$1$2$3,$4").into_owned();
    }
    if locale.minor_units == 0 {
        text = whole_amounts(&text);
    }
    text
}

/// Whole amounts written with two decimals, for currencies printed without minor units.
fn whole_amounts(row: &str) -> String {
    static WHOLE: LazyLock<Regex> = LazyLock::new(|| pattern(r"\d{1,3}(?:[.,'’]\d{3})+|\d+"));
    let numbers: Vec<regex::Match<'_>> = WHOLE
        .find_iter(row)
        .filter(|found| {
            // Standalone: not part of a date, a time, a code or a decimal number.
            let before = row[..found.start()].chars().next_back();
            let after = row[found.end()..].chars().next();
            let joined = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || "/:.,-%".contains(c));
            let decimal_after = row[found.end()..].starts_with(['.', ','])
                && row[found.end() + 1..].starts_with(|c: char| c.is_ascii_digit());
            let sign_before =
                before == Some('-') && row[..found.start() - 1].chars().next_back().is_none_or(char::is_whitespace);
            (!joined(before) || sign_before) && !joined(after) && !decimal_after
        })
        .collect();
    let last = numbers.last().map(|found| found.start());
    let mut out = String::with_capacity(row.len() + 8);
    let mut copied = 0;
    for found in &numbers {
        let grouped = found.as_str().contains(['.', ',', '\'', '’']);
        let value_column = Some(found.start()) == last && found.as_str().len() >= 2;
        if grouped || value_column {
            out.push_str(&row[copied..found.start()]);
            out.extend(found.as_str().chars().filter(char::is_ascii_digit));
            out.push_str(".00");
            copied = found.end();
        }
    }
    out.push_str(&row[copied..]);
    out
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
    fn prefixed_dollars_and_national_ids_name_their_countries() {
        let brazil = locale(
            "PADARIA BOA VISTA LTDA\nCNPJ 12.345.678/0001-90\nRUA AUGUSTA 1500\n01304-001 SAO PAULO\nTOTAL R$ 23,50\nOBRIGADO",
        );
        assert_eq!(brazil.country.map(|c| c.code), Some("BR"));
        assert_eq!(brazil.currency.map(|c| c.to_string()).as_deref(), Some("BRL"));
        assert!(brazil.decimal_comma && !brazil.month_first());
        let mexico = locale(
            "TAQUERIA EL FOGON\nRFC: TEF980101AB1\nC.P. 06700 CDMX\nTOTAL $ 245.00 M.N.\nIVA 16% 33.79\nGRACIAS",
        );
        assert_eq!(mexico.country.map(|c| c.code), Some("MX"));
        assert_eq!(mexico.currency.map(|c| c.to_string()).as_deref(), Some("MXN"));
        assert!(!mexico.month_first());
        let singapore = locale("KOPITIAM\nTOTAL S$12.50\nTHANK YOU");
        assert_eq!(singapore.currency.map(|c| c.to_string()).as_deref(), Some("SGD"));
        let hong_kong = locale("CAFE DE CORAL\nTOTAL HK$128.00");
        assert_eq!(hong_kong.currency.map(|c| c.to_string()).as_deref(), Some("HKD"));
        let india = locale("HOTEL SARAVANA BHAVAN\nGSTIN 33AAACH1234F1Z5\nCGST 2.5% 7.50\nGRAND TOTAL RS.250.00");
        assert_eq!(india.country.map(|c| c.code), Some("IN"));
        assert_eq!(india.currency.map(|c| c.to_string()).as_deref(), Some("INR"));
        let switzerland = locale("MIGROS\nCHE-105.825.480 MWST\nTOTAL CHF 1'234.50");
        assert_eq!(switzerland.country.map(|c| c.code), Some("CH"));
        let poland =
            locale("BIEDRONKA\nNIP 779-10-11-327\n00-950 WARSZAWA\nPARAGON FISKALNY\nSUMA PLN 45,20\nGOTÓWKA 50,00");
        assert_eq!(poland.country.map(|c| c.code), Some("PL"));
        assert_eq!(poland.currency.map(|c| c.to_string()).as_deref(), Some("PLN"));
        let sweden = locale("ICA NARA\nKVITTO\nATT BETALA 123,50 KR\nMOMS 12% 13,23\nTACK FÖR BESÖKET");
        assert_eq!(sweden.country.map(|c| c.code), Some("SE"));
        assert_eq!(sweden.currency.map(|c| c.to_string()).as_deref(), Some("SEK"));
        let canada = locale("TIM HORTONS\nTORONTO ON M5V 2T6\nTOTAL $4.52\nGST/HST 0.52");
        assert_eq!(canada.country.map(|c| c.code), Some("CA"));
        assert_eq!(canada.currency.map(|c| c.to_string()).as_deref(), Some("CAD"));
        assert!(!canada.month_first());
    }

    #[test]
    fn currencies_without_minor_units_read_whole_amounts() {
        let japan = locale("LAWSON\n+81 3-1234-5678\nTOTAL ¥1,280\nCASH ¥2,000");
        assert_eq!(japan.country.map(|c| c.code), Some("JP"));
        assert_eq!(japan.minor_units, 0);
        assert_eq!(normalize_amounts("TOTAL ¥1,280", &japan), "TOTAL ¥1280.00");
        let indonesia = locale("INDOMARET\nTOTAL BAYAR RP 125.000\nTUNAI RP 150.000\nKEMBALI RP 25.000\nTERIMA KASIH");
        assert_eq!(indonesia.country.map(|c| c.code), Some("ID"));
        assert_eq!(indonesia.currency.map(|c| c.to_string()).as_deref(), Some("IDR"));
        assert_eq!(normalize_amounts("TOTAL BAYAR RP 125.000", &indonesia), "TOTAL BAYAR RP 125000.00");
        // A quantity stays a quantity, a date and a time stay as they are.
        assert_eq!(normalize_amounts("2 AQUA 600ML 3.500", &indonesia), "2 AQUA 600ML 3500.00");
        assert_eq!(normalize_amounts("12.05.2024 10:31", &indonesia), "12.05.2024 10:31");
        // Grouped with a decimal comma: the decimals stay.
        assert_eq!(normalize_amounts("TOTAL 125.000,00", &indonesia), "TOTAL 125000,00");
    }

    #[test]
    fn a_stray_sign_does_not_outvote_a_clear_country() {
        // `¥` is OCR's reading of `@` on a Malaysian receipt.
        let found = locale("BERRY'S CARE HOUSE\n47100 PUCHONG,\nSELANGOR\nGST G4 ¥ 0.00 0.00\nTOTAL 11.25");
        assert_eq!(found.country.map(|c| c.code), Some("MY"));
        assert_eq!(found.currency, Some(Currency::MYR));
    }

    #[test]
    fn thin_evidence_gives_no_country() {
        let found = locale("TOTAL 9.00\nCASH 10.00");
        assert_eq!(found.country, None);
        assert_eq!(found.currency, None);
        assert!(!found.date_order_known);
        let german = Locale { decimal_comma: true, ..Locale::default() };
        assert_eq!(normalize_amounts("SUMME 1.234,56", &german), "SUMME 1234,56");
    }
}
