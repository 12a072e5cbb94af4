//! Per-user merchant memory: what a user's corrections teach about their merchants.
//!
//! When a user corrects a receipt's merchant (or category), the receipt's fingerprints are
//! remembered with the corrected name and category: its phone numbers (digits only), and its
//! header lines and address (letters and digits only). A later receipt of the same user that
//! shares a fingerprint gets the remembered name and category. Fingerprints are exact keys, so
//! the store looks them up by index, whatever the size of the memory.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use crate::text::squash;
use finagent_core::receipt::ReceiptResult;

/// Header lines shorter than this (letters and digits) are too common to identify a merchant.
pub const MIN_LINE_KEY: usize = 8;

/// Lines every receipt may print, whoever issued it: never a merchant's fingerprint.
const GENERIC_LINES: [&str; 16] = [
    "TAXINVOICE",
    "SIMPLIFIEDTAXINVOICE",
    "OFFICIALRECEIPT",
    "CASHRECEIPT",
    "CASHBILL",
    "RECEIPT",
    "INVOICE",
    "THANKYOU",
    "THANKYOUCOMEAGAIN",
    "THANKYOUPLEASECOMEAGAIN",
    "WELCOME",
    "CUSTOMERCOPY",
    "MERCHANTCOPY",
    "DUPLICATE",
    "SALESRECEIPT",
    "GUESTCHECK",
];
/// How many lines from the top count as the header.
pub const HEADER_LINES: usize = 8;

/// What a user taught about a merchant (defined with the other contracts in `finagent-core`).
pub use finagent_core::receipt::RememberedMerchant as Remembered;

static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\+?\(?\d[\d\s().\-]{6,16}\d").unwrap_or_else(|error| panic!("invalid phone pattern: {error}"))
});

fn phone_keys(text: &str) -> impl Iterator<Item = String> + '_ {
    PHONE.find_iter(text).filter_map(|found| {
        let digits: String = found.as_str().chars().filter(char::is_ascii_digit).collect();
        // Phone numbers have 7 to 15 digits; dates and amounts rarely survive the pattern, and a
        // number with a decimal point or a slash is not a phone.
        let plausible = (7..=15).contains(&digits.len())
            && !found.as_str().contains('/')
            && !found.as_str().contains(':')
            && !found.as_str().contains(',');
        plausible.then(|| format!("tel:{digits}"))
    })
}

/// The fingerprints of a result: `tel:` phone digits, `line:` header lines, `addr:` the address.
pub fn fingerprints(result: &ReceiptResult) -> Vec<String> {
    let mut keys = BTreeSet::new();
    let lines: Vec<&str> = result.text.lines().filter(|line| !line.trim().is_empty()).collect();
    for line in lines.iter().take(HEADER_LINES + 4) {
        keys.extend(phone_keys(line));
    }
    static PRICE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\d[.,]\d{2}\b|\d[/.\-]\d{1,2}[/.\-]\d").unwrap_or_else(|e| panic!("{e}")));
    for line in lines.iter().take(HEADER_LINES) {
        let key = squash(line);
        let digits = key.chars().filter(char::is_ascii_digit).count();
        // A line of mostly digits, or one with a price or a date, is about this purchase, not
        // about the merchant.
        let generic =
            GENERIC_LINES.iter().any(|generic| key == *generic || key.starts_with("GSTREG") || key.starts_with("TEL"));
        if key.len() >= MIN_LINE_KEY && digits * 2 < key.len() && !PRICE.is_match(line) && !generic {
            keys.insert(format!("line:{key}"));
        }
    }
    if let Some(address) = &result.fields.merchant.address {
        let key = squash(address);
        if key.len() >= MIN_LINE_KEY {
            keys.insert(format!("addr:{key}"));
        }
    }
    keys.into_iter().collect()
}

/// Applies what was remembered to a fresh result: the name and category replace the extracted
/// ones (the user said so), with full confidence, and the debug record says where they came from.
pub fn apply(result: &mut ReceiptResult, remembered: &Remembered) {
    if let Some(name) = &remembered.name {
        result.fields.merchant.name = Some(name.clone());
        result.confidence.merchant_name = Some(1.0);
    }
    if let Some(category) = remembered.category {
        result.fields.category = Some(category);
        result.confidence.category = Some(1.0);
    }
    if let Some(debug) = result.debug.as_mut() {
        debug.merchant_source = Some("memory".to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use finagent_core::receipt::{Category, Merchant, ReceiptFields};

    #[test]
    fn fingerprints_are_phones_header_lines_and_the_address() {
        let result = ReceiptResult {
            text:
                "~~ logo ~~\nSUSHI MAN\n2710 Colby Ave\nEverett, WA 98201\n(425) 252-2123\n05/11/18 12:31\nTotal 24.55"
                    .to_owned(),
            fields: ReceiptFields {
                merchant: Merchant {
                    name: Some("SU5HI MAN".to_owned()),
                    address: Some("2710 Colby Ave Everett, WA 98201".to_owned()),
                },
                ..ReceiptFields::default()
            },
            ..ReceiptResult::default()
        };
        let keys = fingerprints(&result);
        assert!(keys.contains(&"tel:4252522123".to_owned()), "{keys:?}");
        assert!(keys.contains(&"line:2710COLBYAVE".to_owned()), "{keys:?}");
        assert!(keys.contains(&"addr:2710COLBYAVEEVERETTWA98201".to_owned()), "{keys:?}");
        // Short lines, dates and amounts are not fingerprints.
        assert!(keys.contains(&"line:SUSHIMAN".to_owned()), "{keys:?}");
        let generic =
            ReceiptResult { text: "TAX INVOICE\nOFFICIAL RECEIPT\nThank you".to_owned(), ..ReceiptResult::default() };
        assert!(fingerprints(&generic).is_empty(), "{:?}", fingerprints(&generic));
        assert!(
            !keys.iter().any(|key| key.contains("0511") || key.contains("2455") || key.contains("LOGO")),
            "{keys:?}"
        );
    }

    #[test]
    fn what_was_remembered_replaces_the_extraction() {
        let mut result = ReceiptResult { debug: Some(Default::default()), ..ReceiptResult::default() };
        apply(&mut result, &Remembered { name: Some("Sushi Man".to_owned()), category: Some(Category::Dining) });
        assert_eq!(result.fields.merchant.name.as_deref(), Some("Sushi Man"));
        assert_eq!(result.fields.category, Some(Category::Dining));
        assert_eq!(result.debug.and_then(|d| d.merchant_source).as_deref(), Some("memory"));
    }
}
