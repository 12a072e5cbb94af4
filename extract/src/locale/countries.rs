//! The countries the reader knows: currency, date order, decimal mark, cash rounding and language.

use finagent_core::money::Currency;

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

pub(crate) const fn country(
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
pub const COUNTRIES: [Country; 42] = [
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
    country("FI", "EUR", DayFirst, true, Some(5), "fi", false),
    country("CZ", "CZK", DayFirst, true, Some(100), "cs", false),
    country("HU", "HUF", DayFirst, true, Some(500), "hu", false),
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

pub(crate) const EURO: [&str; 9] = ["DE", "AT", "FR", "BE", "NL", "ES", "IT", "PT", "IE"];

/// Looks a country up by its code.
pub fn country_by_code(code: &str) -> Option<&'static Country> {
    COUNTRIES.iter().find(|country| country.code.eq_ignore_ascii_case(code))
}
