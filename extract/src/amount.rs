//! Reading amounts out of noisy OCR text.
//!
//! Receipts print `46.98`, OCR returns `46,98`, `RM41 .81`, `1,234.50`, `$ 9.00`, `12.50-` or
//! `(3.00)`. [`amounts_in`] finds every amount in a line, most trustworthy reading first in
//! position order, and [`parse_amount`] reads one token.

use std::sync::LazyLock;

use regex::Regex;
use rust_decimal::Decimal;

use finagent_core::money::Amount;

/// An amount found in a line, with where it ends (for "rightmost amount" decisions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundAmount {
    pub amount: Amount,
    /// Byte offset of its start in the searched text (currency prefix included).
    pub start: usize,
    /// Byte offset of its end in the searched text.
    pub end: usize,
    /// Whether it had exactly two decimals (prices almost always do; counts and codes do not).
    pub has_cents: bool,
}

// A currency prefix, a sign, digits with optional thousands separators (Western `1,234`, Indian
// `1,23,456`, Swiss `1'234`, thin-space `1 234`), a decimal mark (possibly surrounded by stray
// spaces) and cents, and a trailing minus or parentheses for negatives. A prefix is a code or a
// sign, glued or spaced: `RM`, `RS.`, `RP`, `S$`, `R$`, `US$`, `HK$`, `€`, `¥`, `₹`, `CHF`.
static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        (?P<open>\()?
        (?P<prefix>(?:RM|MYR|SGD|USD|EUR|GBP|INR|IDR|JPY|KRW|CHF|BRL|MXN|AUD|CAD|HKD|NZD|PHP|PLN|CZK|SEK|NOK|DKK|TRY|ZAR|THB|HUF|RS\.?|RP\.?|[A-Z]{1,3}\$|\$|€|£|₹|¥|₩|₫|₱|₺)\s?)?
        (?P<minus>-)?
        (?:(?:RM|\$)\s?)?
        (?P<int>\d{1,3}(?:,\d{3})+|\d{1,2}(?:,\d{2})+,\d{3}|\d{1,3}(?:['’\x{2009}\x{202F}]\d{3})+|\d+)
        (?:\s?[.,]\s?(?P<cents>\d{2})(?P<extra>\d)?)?
        (?P<close>\))?
        (?P<trailing_minus>-)?",
    )
    .unwrap_or_else(|error| panic!("invalid amount pattern: {error}"))
});

/// Separators that group thousands inside an amount's whole part.
const GROUPING: [char; 5] = [',', '\'', '’', '\u{2009}', '\u{202F}'];

/// Every amount in `text`, left to right. Amounts without cents are included (flagged), since
/// some receipts print whole amounts; callers decide how much to trust them.
pub fn amounts_in(text: &str) -> Vec<FoundAmount> {
    let mut found = Vec::new();
    for captures in AMOUNT.captures_iter(text) {
        let Some(whole) = captures.get(0) else {
            continue;
        };
        // Not part of a longer token such as an invoice number or a date. A prefix glued to a
        // word (`TOURS 25.00` matched from its `RS`) is dropped, and the number judged alone.
        let after = text[whole.end()..].chars().next();
        let glued = |at: usize| {
            text[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '/' || c == ':' || c == '.')
        };
        let start = match captures.name("prefix") {
            Some(prefix) if glued(whole.start()) => prefix.end(),
            _ => whole.start(),
        };
        if glued(start) || after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '/' || c == ':' || c == '%') {
            continue;
        }
        if captures.name("extra").is_some() {
            // Three decimals: a unit price such as 9.000 or a quantity; read it exactly.
            let number_start = captures.name("int").map_or(start, |m| m.start());
            let number = &text[number_start..whole.end()];
            let Ok(value) = Decimal::from_str_exact(&number.replace(' ', "").replace(',', ".")) else {
                continue;
            };
            found.push(FoundAmount { amount: Amount::new(value), start, end: whole.end(), has_cents: false });
            continue;
        }
        let integer: String = captures["int"].chars().filter(|c| !GROUPING.contains(c)).collect();
        if integer.len() > 9 {
            continue;
        }
        let cents = captures.name("cents").map(|m| m.as_str());
        let text_value = match cents {
            Some(cents) => format!("{integer}.{cents}"),
            None => integer,
        };
        let Ok(mut value) = Decimal::from_str_exact(&text_value) else {
            continue;
        };
        let negative = captures.name("minus").is_some()
            || captures.name("trailing_minus").is_some()
            || (captures.name("open").is_some() && captures.name("close").is_some());
        if negative {
            value = -value;
        }
        found.push(FoundAmount { amount: Amount::new(value), start, end: whole.end(), has_cents: cents.is_some() });
    }
    found
}

/// Reads a single amount token, e.g. a label value such as `RM 9.00` or `46,98`.
pub fn parse_amount(text: &str) -> Option<Amount> {
    let found = amounts_in(text.trim());
    match found.as_slice() {
        [only] => Some(only.amount),
        _ => None,
    }
}

/// How `amount` was printed in `text` (the last such amount), currency marker included
/// (`RM 9.00`, `$8.20`), with the slips OCR makes inside a number put right: stray spaces
/// (`65. 20`) and, where amounts use a decimal point, a comma read for it (`343,95`).
pub fn printed_amount(text: &str, amount: Amount, decimal_comma: bool) -> Option<String> {
    let found = amounts_in(text).into_iter().filter(|found| found.amount == amount).max_by_key(|found| found.end)?;
    let printed = text.get(found.start..found.end)?.trim_end_matches(')').trim_start_matches('(');
    let digits_from = printed.find(|c: char| c.is_ascii_digit() || c == '-')?;
    let (marker, number) = printed.split_at(digits_from);
    let mut number: String = number.chars().filter(|c| !c.is_whitespace()).collect();
    if !decimal_comma
        && let Some(at) = number.rfind(',')
        && number.len() - at == 3
    {
        number.replace_range(at..=at, ".");
    }
    Some(format!("{marker}{number}").trim().to_owned())
}

/// How a whole `amount` of a currency without minor units was printed in `text` (`RP 125.000`,
/// `¥1,280`), the last such token, currency marker included.
pub fn printed_whole(text: &str, amount: Amount) -> Option<String> {
    static WHOLE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:(?:RP\.?|IDR|JPY|KRW|VND|CLP|COP|\$|¥|￥|₩|₫)\s?)?\d{1,3}(?:[.,'’]\d{3})+|\d+")
            .unwrap_or_else(|error| panic!("invalid amount pattern: {error}"))
    });
    let wanted = amount.value().trunc().to_string();
    WHOLE
        .find_iter(text)
        .filter(|found| found.as_str().chars().filter(char::is_ascii_digit).collect::<String>() == wanted)
        .last()
        .map(|found| found.as_str().trim().to_owned())
}

/// The rightmost amount with cents in `text`, the usual place of a line's value.
pub fn rightmost_priced(text: &str) -> Option<Amount> {
    amounts_in(text).into_iter().filter(|found| found.has_cents).max_by_key(|found| found.end).map(|found| found.amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(text: &str) -> Amount {
        text.parse().expect("valid")
    }

    #[test]
    fn ocr_noise_table() {
        let cases = [
            ("TOTAL 46,98", Some("46.98")),
            ("TOTAL: RM41 .81", Some("41.81")),
            ("GRAND TOTAL 1,234.50", Some("1234.50")),
            ("AMOUNT $ 9.00", Some("9.00")),
            ("ROUNDED TOTAL (RM): 9.00", Some("9.00")),
            ("DISCOUNT 3.00-", Some("-3.00")),
            ("VOUCHER (5.00)", Some("-5.00")),
            ("ROUNDING -0.02", Some("-0.02")),
            ("TOTAL AMT PAYABLE - 159.00 SL", Some("159.00")),
            ("RM 12.50", Some("12.50")),
            ("TOTAL RM12. 50", Some("12.50")),
            ("INVOICE NO 12345", None),
            ("DATE 25/12/2018", None),
            ("TIME 10:45", None),
            ("GST 6%", None),
        ];
        for (text, expected) in cases {
            assert_eq!(rightmost_priced(text), expected.map(amount), "{text:?}");
        }
    }

    #[test]
    fn currency_prefixes_and_groupings_of_many_countries() {
        let cases = [
            ("TOTAL S$12.50", Some("12.50")),
            ("TOTAL R$ 23,50", Some("23.50")),
            ("TOTAL US$ 8.00", Some("8.00")),
            ("TOTAL A$7.95", Some("7.95")),
            ("TOTAL C$ 14.20", Some("14.20")),
            ("TOTAL HK$128.00", Some("128.00")),
            ("TOTAL NZ$9.10", Some("9.10")),
            ("TOTAL €12,40", Some("12.40")),
            ("TOTAL ¥1,280.00", Some("1280.00")),
            ("GRAND TOTAL RS.250.00", Some("250.00")),
            ("GRAND TOTAL RS. 250.00", Some("250.00")),
            ("NET AMOUNT ₹1,23,456.00", Some("123456.00")),
            ("TOTAL 1,23,456.00", Some("123456.00")),
            ("TOTAL CHF 1'234.50", Some("1234.50")),
            ("TOTAL 1’234.50", Some("1234.50")),
            ("TOTAL 1\u{202F}234,56", Some("1234.56")),
            ("TOTAL 1\u{2009}234.56", Some("1234.56")),
            // A code glued to the word before it is not a prefix: the number still counts.
            ("TOURS 25.00", Some("25.00")),
            ("FARM 12.00", Some("12.00")),
            ("ITEMS25.00", None),
        ];
        for (text, expected) in cases {
            assert_eq!(rightmost_priced(text), expected.map(amount), "{text:?}");
        }
    }

    #[test]
    fn several_amounts_are_found_left_to_right() {
        let found: Vec<String> = amounts_in("2 X 3.50 7.00").into_iter().map(|f| f.amount.to_string()).collect();
        assert_eq!(found, ["2", "3.50", "7.00"]);
    }

    #[test]
    fn printed_amounts_keep_their_marker_and_lose_ocr_slips() {
        let cases = [
            ("TOTAL RM8.60", "8.60", false, "RM8.60"),
            ("TOTAL: RM 57.40", "57.40", false, "RM 57.40"),
            ("AMOUNT $8.20", "8.20", false, "$8.20"),
            ("TOTAL 343,95", "343.95", false, "343.95"),
            ("TOTAL 65. 20", "65.20", false, "65.20"),
            ("SUMME 24,23", "24.23", true, "24,23"),
        ];
        for (text, value, decimal_comma, printed) in cases {
            assert_eq!(printed_amount(text, amount(value), decimal_comma).as_deref(), Some(printed), "{text:?}");
        }
    }

    #[test]
    fn single_tokens_parse() {
        assert_eq!(parse_amount("RM9.00"), Some(amount("9.00")));
        assert_eq!(parse_amount("$10.30"), Some(amount("10.30")));
        assert_eq!(parse_amount("9.00 10.00"), None);
        assert_eq!(parse_amount("abc"), None);
    }
}
