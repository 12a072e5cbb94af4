//! Line items: the purchased lines between the header and the totals.
//!
//! A row is an item when it carries a description with letters and ends in a priced amount, sits
//! above the total row, and is not itself a summary row (tax, rounding, cash, change, …). A
//! `QTY x PRICE` or `QTY @ PRICE` pattern, or a leading count, gives quantity and unit price; a
//! row holding only numbers continues the item above it (receipts often print the description on
//! one line and `2 x 3.50  7.00` on the next).

use std::sync::LazyLock;

use regex::Regex;
use rust_decimal::Decimal;

use crate::amount::amounts_in;
use crate::text::{has_word, letter_share};
use finagent_core::money::Amount;
use finagent_core::receipt::LineItem;

const SUMMARY: [&str; 30] = [
    "TOTAL", "SUBTOTAL", "GST", "SST", "TAX", "ROUNDING", "ROUND", "CASH", "CHANGE", "TENDER", "BALANCE", "VISA",
    "MASTER", "CARD", "DISCOUNT", "AMOUNT", "PAYMENT", "DEPOSIT", "SERVICE", "QTY", "ITEMS", "CHARGE", "DUE", "NETT",
    "PAID", "SAVING", "TEL", "INVOICE", "DATE", "TIME",
];

static QUANTITY_TIMES_PRICE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(\d+(?:\.\d+)?)\s*(?:X|@|\*)\s*(?:RM\s?)?(\d+[.,]\d{2,3})")
        .unwrap_or_else(|error| panic!("invalid item pattern: {error}"))
});

fn is_summary(row: &str) -> bool {
    SUMMARY.iter().any(|word| has_word(row, word) || row.starts_with(word))
}

fn decimal(text: &str) -> Option<Decimal> {
    Decimal::from_str_exact(&text.replace(',', ".")).ok()
}

/// Reads quantity and unit price from a row, when it shows them.
fn quantity_and_price(row: &str) -> (Option<Decimal>, Option<Amount>) {
    if let Some(captures) = QUANTITY_TIMES_PRICE.captures(row) {
        let quantity = decimal(&captures[1]).filter(|q| *q > Decimal::ZERO && *q < Decimal::from(10_000));
        let price = decimal(&captures[2]).map(|p| Amount::new(p.round_dp(2)));
        return (quantity, price);
    }
    (None, None)
}

/// Where the items start: after the last row of the receipt's header block (date, invoice or
/// cashier details, or the column titles), since addresses and registration numbers also end in
/// numbers that look like prices.
pub fn header_end(rows: &[String]) -> usize {
    const MARKERS: [&str; 13] = [
        "DATE", "INVOICE", "CASHIER", "RECEIPT", "QTY", "DESC", "PRICE", "ITEM", "DOC NO", "BILL NO", "TABLE", "TEL",
        "GST ID",
    ];
    rows.iter()
        .rposition(|row| MARKERS.iter().any(|marker| row.contains(marker)) && !is_priced_item(row))
        .map_or(0, |index| index + 1)
}

fn is_priced_item(row: &str) -> bool {
    amounts_in(row).iter().filter(|amount| amount.has_cents).count() >= 2 && !row.contains("DATE")
}

/// Extracts line items from upper-cased rows `start..end` (header end to total row).
pub fn line_items(rows: &[String], start: usize, end: usize) -> Vec<LineItem> {
    let mut items: Vec<LineItem> = Vec::new();
    let mut pending_description: Option<String> = None;
    for row in rows.iter().take(end).skip(start) {
        if is_summary(row) {
            pending_description = None;
            continue;
        }
        let found = amounts_in(row);
        let priced: Vec<_> = found.iter().filter(|amount| amount.has_cents).collect();
        let description_end = found.first().map_or(row.len(), |first| {
            row[..first.end].rfind(|c: char| c.is_ascii_alphabetic()).map_or(0, |at| at + 1)
        });
        let description: String = row[..description_end.min(row.len())]
            .trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != ')' && c != '(')
            .to_owned();
        let describes = description.len() >= 2 && letter_share(&description) >= 0.5;
        let Some(last) = priced.last() else {
            // A description without a price: remember it for a numbers-only row below.
            pending_description = describes.then_some(description);
            continue;
        };
        let (mut quantity, unit_price) = quantity_and_price(row);
        let description = if describes {
            description
        } else if let Some(previous) = pending_description.take() {
            previous
        } else {
            continue;
        };
        if quantity.is_none() {
            // A leading count such as "2 PC" or "1 NASI LEMAK".
            quantity = row
                .split_whitespace()
                .next()
                .and_then(|token| token.parse::<u32>().ok())
                .filter(|count| (1..=99).contains(count))
                .map(Decimal::from)
                .filter(|_| row.split_whitespace().count() > 2);
        }
        items.push(LineItem { description, quantity, unit_price, amount: Some(last.amount) });
        pending_description = None;
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<String> {
        text.lines().map(|line| line.trim().to_uppercase()).filter(|line| !line.is_empty()).collect()
    }

    fn amount(text: &str) -> Option<Amount> {
        Some(text.parse().expect("valid"))
    }

    #[test]
    fn items_from_common_layouts() {
        let receipt = rows(
            "KF MODELLING CLAY KIDDY FISH\n1 PC * 9.000 0.00 9.00\nNASI LEMAK 2 X 3.50 7.00\nTEH TARIK 2.00\n\
             DISCOUNT -1.00\nROUNDING -0.01\nTOTAL 17.00",
        );
        let items = line_items(&receipt, 0, receipt.len());
        assert_eq!(items.len(), 3, "{items:?}");
        assert_eq!(items[0].description, "KF MODELLING CLAY KIDDY FISH");
        assert_eq!(items[0].amount, amount("9.00"));
        assert_eq!(items[1].description, "NASI LEMAK");
        assert_eq!((items[1].quantity, items[1].unit_price), (Some(Decimal::from(2)), amount("3.50")));
        assert_eq!(items[1].amount, amount("7.00"));
        assert_eq!(items[2].description, "TEH TARIK");
        assert_eq!(items[2].quantity, None);
    }

    #[test]
    fn items_start_below_the_header_block() {
        let receipt =
            rows("NO.53 55,57 & 59, JALAN SAGU 18\nDATE: 25/12/2018\nCODE/DESC PRICE AMOUNT\nKF CLAY 9.00\nTOTAL 9.00");
        assert_eq!(header_end(&receipt), 3);
    }

    #[test]
    fn summary_rows_are_not_items() {
        let receipt = rows("GST 6% 0.51\nCASH 10.00\nCHANGE 1.00\nTOTAL QTY: 3");
        assert!(line_items(&receipt, 0, receipt.len()).is_empty());
    }
}
