//! Field extraction: from an OCR [`Page`] to the fields of a [`ReceiptResult`].
//!
//! Pure and deterministic: the same page always gives the same fields. Each field comes with a
//! confidence in 0–1, and a field the receipt does not support is `None` — nothing is invented.
//! The steps, each in its own module: rows from the layout ([`layout`]), the merchant ([`merchant`]),
//! the date ([`date`]), the money fields, payment method and currency ([`totals`]), the line items
//! ([`items`]) and the category ([`category`]).

pub mod amount;
pub mod category;
pub mod date;
pub mod items;
pub mod layout;
pub mod merchant;
pub mod review;
pub mod text;
pub mod totals;

use chrono::NaiveDate;

use crate::money::{Amount, Currency};
use crate::receipt::{
    Category, EngineInfo, FieldConfidence, LayoutLine, LineItem, Merchant, PaymentMethod, PixelBox, ReceiptResult,
    ResultLayout, Timings,
};
pub use layout::{BoundingBox, Page, TextLine};
pub use merchant::Gazetteer;

/// The fields extracted from one page.
#[derive(Clone, Debug, PartialEq)]
pub struct Extraction {
    /// Merchant name and address.
    pub merchant: Merchant,
    /// Date of purchase.
    pub date: Option<NaiveDate>,
    /// How an ambiguous date was read.
    pub date_order: Option<String>,
    /// Currency.
    pub currency: Option<Currency>,
    /// Before tax.
    pub subtotal: Option<Amount>,
    /// Tax.
    pub tax: Option<Amount>,
    /// Tip or service charge.
    pub tip: Option<Amount>,
    /// Paid.
    pub total: Option<Amount>,
    /// How it was paid.
    pub payment_method: Option<PaymentMethod>,
    /// Category.
    pub category: Option<Category>,
    /// Purchased lines.
    pub line_items: Vec<LineItem>,
    /// Confidence per field.
    pub confidence: FieldConfidence,
    /// The page's text.
    pub text: String,
    /// Where each field was read.
    pub layout: ResultLayout,
}

impl Extraction {
    /// The client-facing result, with the engine and timings filled in.
    pub fn into_result(self, engine: EngineInfo, timings: Timings) -> ReceiptResult {
        ReceiptResult {
            merchant: self.merchant,
            date: self.date,
            date_order: self.date_order,
            currency: self.currency,
            subtotal: self.subtotal,
            tax: self.tax,
            tip: self.tip,
            total: self.total,
            payment_method: self.payment_method,
            category: self.category,
            line_items: self.line_items,
            confidence: self.confidence,
            text: self.text,
            engine,
            timings,
            layout: Some(self.layout),
        }
    }
}

/// Reads the purchase date: a date on a row that says `DATE` wins, else the first date printed.
/// Returns the date, its confidence and the row it was read from.
fn purchase_date(rows: &[String], month_first: bool) -> Option<(date::FoundDate, f64, usize)> {
    let first_date = |labelled: bool| {
        rows.iter()
            .enumerate()
            .filter(|(_, row)| !labelled || row.contains("DATE") || row.contains("TARIKH"))
            .find_map(|(index, row)| date::dates_in(row, month_first).into_iter().next().map(|found| (found, index)))
    };
    if let Some((found, index)) = first_date(true) {
        return Some((found, 0.95, index));
    }
    first_date(false).map(|(found, index)| (found, 0.85, index))
}

fn pixel_box(bbox: &BoundingBox) -> PixelBox {
    [bbox.left, bbox.top, bbox.right, bbox.bottom]
}

/// The last row that prints `amount` (as `12.50` or `12,50`), searching upwards from `before`.
fn amount_row(rows: &[String], amount: Option<Amount>, before: usize) -> Option<usize> {
    let text = amount?.to_string();
    let comma = text.replace('.', ",");
    rows[..before.min(rows.len())].iter().rposition(|row| row.contains(&text) || row.contains(&comma))
}

/// The layout of a result: the page size, its lines, and the row each field was read from.
fn layout_of(page: &Page, rows: &[layout::Row], fields: &[(&str, Option<usize>)]) -> ResultLayout {
    ResultLayout {
        width: page.width,
        height: page.height,
        fields: fields
            .iter()
            .filter_map(|(name, row)| {
                row.and_then(|row| rows.get(row)).map(|row| ((*name).to_owned(), pixel_box(&row.bbox)))
            })
            .collect(),
        lines: page
            .lines
            .iter()
            .map(|line| LayoutLine { text: line.text.clone(), bbox: pixel_box(&line.bbox) })
            .collect(),
    }
}

/// Extracts every field from a page.
pub fn extract(page: &Page, gazetteer: &Gazetteer) -> Extraction {
    let page_rows = page.rows();
    let rows: Vec<String> = page_rows.iter().map(|row| row.text.to_uppercase()).collect();
    let ocr_confidence =
        |index: Option<usize>| index.and_then(|i| page_rows.get(i)).map_or(1.0, |row| row.confidence.clamp(0.0, 1.0));

    let currency = totals::currency(&rows);
    let month_first = currency.is_some_and(|c| c.value == Currency::USD);
    let found_merchant = merchant::merchant(&rows, gazetteer);
    let money = totals::money_fields(&rows);
    let dated = purchase_date(&rows, month_first);
    let payment = totals::payment_method(&rows);
    let items_end = money.total_row.unwrap_or(rows.len());
    let header_end = items::header_end(&rows[..items_end]).max(found_merchant.name_row.map_or(0, |row| row + 1));
    let line_items = items::line_items(&rows, header_end, items_end);
    let item_texts: Vec<&str> = line_items.iter().map(|item| item.description.as_str()).collect();
    let category = categorize_merchant(found_merchant.name.as_ref().map(|n| n.value.as_str()), &item_texts);

    let confidence = FieldConfidence {
        merchant_name: found_merchant.name.as_ref().map(|n| n.confidence),
        merchant_address: found_merchant.address.as_ref().map(|a| a.confidence),
        date: dated.map(|(_, c, _)| c),
        total: money.total.map(|t| t.confidence * ocr_confidence(money.total_row).max(0.5)),
        subtotal: money.subtotal.map(|f| f.confidence),
        tax: money.tax.map(|f| f.confidence),
        tip: money.tip.map(|f| f.confidence),
        currency: currency.map(|c| c.confidence),
        payment_method: payment.map(|p| p.confidence),
        category: category.map(|(_, c)| c),
        line_items: (!line_items.is_empty()).then_some(0.5),
    };
    let total_row = money.total_row.or_else(|| amount_row(&rows, money.total.map(|t| t.value), rows.len()));
    let below_total = total_row.map_or(rows.len(), |row| row + 1);
    let address_row = found_merchant.address.as_ref().and_then(|address| {
        let start: String = address.value.to_uppercase().chars().take(12).collect();
        rows.iter().position(|row| !start.is_empty() && row.contains(start.trim()))
    });
    // The last row that names the method found (a card slip's `VISA`, a `CASH` line).
    let payment_row = payment.and_then(|found| {
        rows.iter().rposition(|row| {
            totals::payment_method(std::slice::from_ref(row)).is_some_and(|own| own.value == found.value)
        })
    });
    let layout = layout_of(
        page,
        &page_rows,
        &[
            ("merchant_name", found_merchant.name.as_ref().and(found_merchant.name_row)),
            ("merchant_address", address_row),
            ("date", dated.map(|(_, _, row)| row)),
            ("subtotal", amount_row(&rows, money.subtotal.map(|f| f.value), below_total)),
            ("tax", amount_row(&rows, money.tax.map(|f| f.value), below_total)),
            ("tip", amount_row(&rows, money.tip.map(|f| f.value), below_total)),
            ("total", money.total.and(total_row)),
            ("payment_method", payment_row),
        ],
    );
    Extraction {
        layout,
        merchant: Merchant {
            name: found_merchant.name.map(|n| n.value),
            address: found_merchant.address.map(|a| a.value),
        },
        date: dated.map(|(found, _, _)| found.date),
        date_order: dated.and_then(|(found, _, _)| found.order.label()).map(str::to_owned),
        currency: currency.map(|c| c.value),
        subtotal: money.subtotal.map(|f| f.value),
        tax: money.tax.map(|f| f.value),
        tip: money.tip.map(|f| f.value),
        total: money.total.map(|t| t.value),
        payment_method: payment.map(|p| p.value),
        category: category.map(|(c, _)| c),
        line_items,
        confidence,
        text: page.text(),
    }
}

fn categorize_merchant(name: Option<&str>, items: &[&str]) -> Option<(Category, f64)> {
    category::categorize(name, items)
}
