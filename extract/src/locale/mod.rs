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

mod contact;
mod countries;
mod evidence;

use std::sync::LazyLock;

use finagent_core::money::Currency;
use regex::Regex;
use rust_decimal::Decimal;

use countries::DateOrder::DayFirst;
use countries::DateOrder::MonthFirst;
pub use countries::{COUNTRIES, Country, DateOrder, WHOLE_CURRENCIES, country_by_code, minor_units};
use evidence::COMMA_DECIMAL;
pub use evidence::LANGUAGE_WORDS;
use evidence::POINT_DECIMAL;
use evidence::Tally;
use evidence::address_and_phone;
use evidence::pattern;
use evidence::printed_currency;
use evidence::words;

/// A country must reach this much weight to be chosen.
pub const MIN_COUNTRY_WEIGHT: f64 = 2.5;

/// The weight of the account's default country.
pub const PRIOR_WEIGHT: f64 = 1.5;

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
    let shared = shared_currency(&ranked);
    let (currency, currency_confidence) = match (printed.code, sign, printed.shared, country) {
        (Some(code), _, _, _) => (Some(code), 0.9),
        (None, Some(sign), _, _) => (Some(sign), 0.85),
        (None, None, Some((_, _, Some(shared))), Some(country)) if shared(country) => {
            (country.currency.parse().ok(), 0.85)
        }
        (None, None, _, Some(country)) => (country.currency.parse().ok(), 0.6),
        // No clear country, but every close contender pays in the same currency (Germany and
        // Austria both in euros): that currency, less surely.
        (None, None, None, None) if shared.is_some() => (shared, 0.5),
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

/// The currency of the leading countries of a tally without a clear winner, when they all share
/// it: those within a point of the best, which must itself have [`MIN_COUNTRY_WEIGHT`].
fn shared_currency(ranked: &[(&'static str, f64)]) -> Option<Currency> {
    let (_, best) = *ranked.first()?;
    if best < MIN_COUNTRY_WEIGHT {
        return None;
    }
    let mut contenders =
        ranked.iter().take_while(|(_, weight)| best - weight < 1.0).map(|(code, _)| country_by_code(code));
    let first = contenders.next()??.currency;
    contenders.all(|country| country.is_some_and(|c| c.currency == first)).then(|| first.parse().ok()).flatten()
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
    static SPACED: LazyLock<Regex> = LazyLock::new(|| pattern(r"([\p{Lu}€$£:]\s*)(\d{1,3}) (\d{3}),(\d{2})\b"));
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
mod tests;
