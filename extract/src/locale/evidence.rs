//! The evidence a receipt prints of its country: currency signs, tax ids, address shapes, phone
//! prefixes, tax words and language words, each tallied as weight for the countries it points to.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use finagent_core::money::Currency;
use regex::Regex;

use super::countries::EURO;
use super::{COUNTRIES, Country};
use crate::text::has_word;

use super::contact::{PHONE_PREFIXES, domain_country};

pub(crate) fn pattern(text: &str) -> Regex {
    Regex::new(text).unwrap_or_else(|error| panic!("invalid locale pattern: {error}"))
}

pub(crate) const US_STATES: &str = "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY";

pub(crate) static US_STATE_ZIP: LazyLock<Regex> =
    LazyLock::new(|| pattern(&format!(r"\b({US_STATES})\.?,?\s{{0,2}}(\d{{5}})(?:-\d{{4}})?\b")));

pub(crate) static US_PHONE: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"\(\d{3}\)\s?\d{3}[-. ]\d{4}\b|\b\d{3}[-.]\d{3}[-.]\d{4}\b"));

pub(crate) static UK_POSTCODE: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"\b[A-Z]{1,2}\d[A-Z\d]?\s\d[ABD-HJLNP-UW-Z]{2}\b"));

pub(crate) static FIVE_DIGIT_CITY: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"\b(\d{5})\s+([A-ZÄÖÜÉÈÀ][A-ZÄÖÜßÉÈÀ\-]{2,})"));

pub(crate) static PHONE_PREFIX: LazyLock<Regex> = LazyLock::new(|| pattern(r"(?:\+|(?:^|[\s(:.])00)(\d{2,3})[\s\-(]"));

pub(crate) static RINGGIT: LazyLock<Regex> = LazyLock::new(|| pattern(r"\bRM\s?\d|\(RM\)|\bRM\b"));

pub(crate) static RUPIAH: LazyLock<Regex> = LazyLock::new(|| pattern(r"\bRP\.?\s?\d"));

pub(crate) static RUPEE: LazyLock<Regex> = LazyLock::new(|| pattern(r"₹|\bRS\.?\s?\d|\bINR\b"));

pub(crate) static DOLLAR: LazyLock<Regex> = LazyLock::new(|| pattern(r"(?:^|[^A-Z])\$\s?\d|\d\s?\$"));

// A dollar sign with its country's letters: `S$`, `R$` (the real), `HK$`, `US$`, `MX$`.
pub(crate) static PREFIXED_DOLLAR: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"(?:^|[^A-Z])(S|R|A|AU|C|CA|HK|NZ|US|MX|NT)\s?\$"));

// Amounts printed with the yen/yuan sign, the won, the dong, the peso of the Philippines, the lira.
pub(crate) static YEN: LazyLock<Regex> = LazyLock::new(|| pattern(r"[¥￥]\s?\d|\d\s?円"));

pub(crate) static ZLOTY: LazyLock<Regex> = LazyLock::new(|| pattern(r"\d\s?ZŁ\b|\bPLN\b|\bZŁ\s?\d"));

pub(crate) static KRONA: LazyLock<Regex> = LazyLock::new(|| pattern(r"\d\s?KR\b|\bKR\.?\s?\d"));

// The Czech koruna (`Kč`, read `KC` or `KE` by OCR that drops the caron) after an amount.
pub(crate) static KORUNA: LazyLock<Regex> = LazyLock::new(|| pattern(r"\d\s?K[ČC]\b|\bCZK\b"));

pub(crate) static FORINT: LazyLock<Regex> = LazyLock::new(|| pattern(r"\d\s?FT\b|\bHUF\b"));

pub(crate) static DONG: LazyLock<Regex> = LazyLock::new(|| pattern(r"₫|\d\s?(?:Đ|VNĐ|VND)\b"));

// Mexico's "moneda nacional" after an amount (`$123.00 M.N.`).
pub(crate) static MONEDA_NACIONAL: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"\d\s?M\.\s?N\.?(?:[^A-Z]|$)|\bPESOS\b"));

/// Tax and company ids whose shape names their country.
pub(crate) static TAX_IDS: LazyLock<[(Regex, &'static str, &'static str); 16]> = LazyLock::new(|| {
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
pub(crate) static POSTCODES: LazyLock<[(Regex, &'static str, f64, &'static str); 7]> = LazyLock::new(|| {
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

pub(crate) static COMMA_DECIMAL: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"(?:^|[^\d,.])\d{1,3}(?:\.\d{3})*,\d{2}(?:[^\d,.]|$)"));

pub(crate) static POINT_DECIMAL: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"(?:^|[^\d,.])\d{1,3}(?:,\d{3})*\.\d{2}(?:[^\d,.]|$)"));

pub(crate) const MALAYSIAN_STATES: [&str; 17] = [
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
pub(crate) const PLACE_WORDS: [(&str, &[&str]); 26] = [
    ("DE", &["STRASSE", "STRAßE", "STR.", "GMBH", "PLATZ", "STEUERNR", "UST-IDNR", "FILIALE"]),
    ("FR", &["RUE", "AVENUE", "BOULEVARD", "SARL", "SIRET", "SIREN", "TVA INTRACOM"]),
    ("ES", &["CALLE", "AVDA", "C/", "S.L.", "CIF", "NIF:"]),
    ("IT", &["VIA", "VIALE", "PIAZZA", "CORSO", "S.R.L.", "SRL", "S.P.A.", "P.IVA", "P. IVA", "PARTITA IVA"]),
    ("NL", &["STRAAT", "LAAN", "PLEIN", "B.V.", "KVK"]),
    ("PT", &["RUA", "AVENIDA", "LDA", "CONTRIBUINTE"]),
    ("MY", &["JALAN", "JLN", "TAMAN", "SDN BHD", "SDN. BHD", "BHD", "KEDAI", "RESTORAN"]),
    ("US", &["BLVD", "AVE", "SUITE", "HWY", "STE"]),
    ("GB", &["VAT NO", "VAT REG", "LTD"]),
    ("AT", &["GASSE", "UID", "ATU"]),
    ("CH", &["MWST-NR", "CHE", "ZURICH", "GENEVE", "BASEL"]),
    ("CZ", &["S.R.O.", "DIC", "ICO", "NAMESTI", "PRAHA", "BRNO"]),
    ("FI", &["OY", "OYJ", "Y-TUNNUS", "HELSINKI", "TAMPERE"]),
    ("DK", &["APS", "A/S", "CVR", "GADE", "KOBENHAVN"]),
    ("NO", &["ORG.NR", "FORETAKSREGISTERET", "VEIEN", "OSLO"]),
    ("SE", &["ORG.NR", "GATAN", "STOCKHOLM", "GOTEBORG"]),
    ("PL", &["UL.", "SP. Z O.O.", "SP.Z O.O.", "WARSZAWA", "KRAKOW"]),
    ("TR", &["LTD. STI.", "STI.", "CADDESI", "SOKAK", "BULVARI", "MAH.", "VKN", "ISTANBUL", "ANKARA"]),
    ("JP", &["K.K.", "TOKYO", "OSAKA", "KYOTO", "JAPAN", "CHOME"]),
    ("ZA", &["(PTY) LTD", "PTY LTD", "JOHANNESBURG", "CAPE TOWN"]),
    ("IN", &["GSTIN", "PVT LTD", "PVT. LTD", "NAGAR", "MUMBAI", "BENGALURU", "DELHI"]),
    ("ID", &["JL.", "NPWP", "JAKARTA", "KOTA"]),
    ("PH", &["VAT REG TIN", "BARANGAY", "BRGY", "MAKATI", "MANILA", "QUEZON CITY"]),
    ("SG", &["PTE LTD", "PTE. LTD", "SINGAPORE", "GST REG NO"]),
    ("MX", &["S.A. DE C.V.", "CDMX", "COL.", "RFC"]),
    ("IE", &["DUBLIN", "CORK", "GALWAY", "EIRCODE"]),
];

/// Tax words and the countries that print them.
pub(crate) const TAX_WORDS: [(&str, &[&str], f64); 18] = [
    ("SALES TAX", &["US"], 2.0),
    ("MWST", &["DE", "AT", "CH"], 2.0),
    ("UST", &["DE", "AT"], 1.0),
    ("TVA", &["FR", "BE"], 2.0),
    ("IVA", &["ES", "IT", "PT", "MX", "AR", "CL", "CO"], 1.5),
    ("MOMS", &["SE", "DK"], 2.0),
    ("MVA", &["NO"], 2.0),
    ("ALV", &["FI"], 2.0),
    ("DPH", &["CZ"], 2.0),
    ("AFA", &["HU"], 2.0),
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
pub const LANGUAGE_WORDS: [(&str, &[&str]); 16] = [
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
    ("da", &["TAK FOR", "I ALT", "AT BETALE", "BYTTEPENGE", "BYTTEPENGER", "KONTANT", "MOMS", "KVITTERING", "DATO"]),
    ("no", &["TAKK FOR", "A BETALE", "VEKSEL", "KONTANT", "MVA", "KVITTERING", "DATO", "TOTALT", "HANDELEN"]),
    ("fi", &["KIITOS", "YHTEENSA", "MAKSETTAVA", "KATEINEN", "TAKAISIN", "ALV", "KUITTI", "VALISUMMA", "KORTTI"]),
    ("cs", &["DEKUJEME", "CELKEM", "K UHRADE", "HOTOVE", "VRACENO", "DPH", "UCTENKA", "MEZISOUCET", "NAKUP"]),
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
pub(crate) struct Tally {
    pub(crate) weights: BTreeMap<&'static str, f64>,
    pub(crate) evidence: Vec<(f64, String)>,
}

impl Tally {
    pub(crate) fn add(&mut self, countries: &[&'static str], weight: f64, what: String) {
        for country in countries {
            *self.weights.entry(country).or_default() += weight;
        }
        self.evidence.push((weight, what));
    }
}

pub(crate) fn code_list(code: &'static str) -> &'static [&'static str] {
    COUNTRIES.iter().find(|c| c.code == code).map_or(&[], |c| std::slice::from_ref(&c.code))
}

/// A sign several countries print for their own currency (`$`, `kr`): the inferred country
/// decides which one it is, when it is one of them.
pub(crate) type SharedSign = fn(&Country) -> bool;

/// The printed currency, how sure it is, and whether the sign is shared.
pub(crate) type Printed = (Currency, f64, Option<SharedSign>);

/// Currencies printed on a receipt: ISO codes as words (the first one), the signs found (each with
/// the countries it belongs to) and a shared sign.
#[derive(Default)]
pub(crate) struct PrintedCurrencies {
    pub(crate) code: Option<Currency>,
    pub(crate) signs: Vec<(Currency, &'static [&'static str])>,
    pub(crate) shared: Option<Printed>,
}

pub(crate) fn printed_currency(text: &str, rows: &[String], tally: &mut Tally) -> PrintedCurrencies {
    // ISO codes printed as words.
    const CODES: [(&str, &[&str], f64); 34] = [
        ("CZK", &["CZ"], 3.0),
        ("HUF", &["HU"], 3.0),
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
        if rows.iter().any(|row| has_word(row, code) || before_number(row, code))
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
        symbol(tally, KORUNA.is_match(text), "CZK", &["CZ"], 3.0, "koruna sign Kč"),
        symbol(tally, FORINT.is_match(text), "HUF", &["HU"], 3.0, "forint sign Ft"),
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

/// Whether `code` is printed glued to the amount it prefixes (`PHP395.81`, `CHF12.50`).
fn before_number(row: &str, code: &str) -> bool {
    row.match_indices(code).any(|(start, _)| {
        let before = row[..start].chars().next_back();
        let after = row[start + code.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && after.is_some_and(|c| c.is_ascii_digit())
    })
}

pub(crate) fn address_and_phone(text: &str, rows: &[String], tally: &mut Tally) {
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
            // The countries whose postcodes are five digits before the town (not Austria's or
            // Switzerland's four, the other German-speaking countries).
            tally.add(
                &["DE", "FR", "ES", "IT", "FI", "TR", "MY"],
                1.0,
                format!("5-digit postcode + city {:?}", &captures[0]),
            );
            break;
        }
    }
    // OCR often drops the spaces of a phrase (`VATREGTIN80546893`): a phrase of several words is
    // also found with its spaces gone.
    let squashed: Vec<String> = rows.iter().map(|row| row.chars().filter(|c| !c.is_whitespace()).collect()).collect();
    let printed = |word: &str| {
        rows.iter().any(|row| has_word(row, word))
            || (word.contains(' ')
                && word.len() >= 8
                && squashed.iter().any(|row| row.contains(&word.replace(' ', ""))))
    };
    for (country, words) in PLACE_WORDS {
        let hits: Vec<&str> = words.iter().copied().filter(|word| printed(word)).collect();
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
    if let Some((domain, country)) = domain_country(text) {
        tally.add(code_list(country), 3.0, format!("web or e-mail domain {domain:?}"));
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

pub(crate) fn words(rows: &[String], tally: &mut Tally) -> Option<&'static str> {
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
