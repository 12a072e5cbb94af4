//! FinancialAgent's receipt understanding: from an OCR [`Page`] to the fields of a
//! [`ReceiptResult`], and the scoring of that against labelled receipts ([`evaluation`]).
//!
//! Pure and deterministic: the same page always gives the same fields. Each field comes with a
//! confidence in 0–1, and a field the receipt does not support is `None` — nothing is invented.
//! The steps, each in its own module: rows from the layout ([`layout`]), the merchant ([`merchant`]),
//! the date ([`date`]), the money fields, payment method and currency ([`totals`]), the line items
//! ([`items`]) and the category ([`category`]).

pub mod amount;
pub mod brands;
pub mod category;
pub mod date;
pub mod document;
pub mod evaluation;
pub mod items;
pub mod layout;
pub mod locale;
pub mod memory;
pub mod merchant;
pub mod recheck;
pub mod text;
pub mod totals;

use chrono::NaiveDate;
use finagent_core::money::Amount;
use finagent_core::receipt::{
    Category, EngineInfo, ExtractionDebug, FieldConfidence, LayoutLine, LineItem, Merchant, PixelBox, ReceiptFields,
    ReceiptResult, ResultLayout, Timings,
};
pub use layout::{BoundingBox, Page, TextLine};
pub use locale::{Locale, LocaleHint};
pub use merchant::Gazetteer;
use text::has_word;

/// What extraction knows besides the page: the gazetteer of known merchants (applied only to
/// receipts from the countries it covers) and the account's locale settings (a prior).
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// Known merchants.
    pub gazetteer: &'a Gazetteer,
    /// The account's default country and currency.
    pub hint: &'a LocaleHint,
    /// Today, in the account's time zone or UTC: a later date is not a purchase date.
    pub today: NaiveDate,
}

/// The fields extracted from one page.
#[derive(Clone, Debug, PartialEq)]
pub struct Extraction {
    /// The fields read.
    pub fields: ReceiptFields,
    /// Confidence per field.
    pub confidence: FieldConfidence,
    /// The page's text.
    pub text: String,
    /// Where each field was read.
    pub layout: ResultLayout,
    /// The inferred locale.
    pub locale: Locale,
    /// How the fields were decided.
    pub debug: ExtractionDebug,
}

impl Extraction {
    /// The client-facing result, with the engine and timings filled in.
    pub fn into_result(self, engine: EngineInfo, timings: Timings) -> ReceiptResult {
        ReceiptResult {
            fields: self.fields,
            confidence: self.confidence,
            text: self.text,
            engine,
            timings,
            layout: Some(self.layout),
            country: self.locale.country.map(|c| c.code.to_owned()),
            locale: self.locale.tag(),
            debug: Some(self.debug),
        }
    }
}

/// Words that label the date, in the supported languages.
const DATE_WORDS: [&str; 11] =
    ["DATE", "TARIKH", "DATUM", "FECHA", "DATA", "TANGGAL", "DATE:", "DATO", "TARİH", "TARIH", "RECHNUNGSDATUM"];

/// Labels of dates that are not the purchase: membership, expiry, due and best-before dates, in
/// the supported languages (matched with accents folded).
const OTHER_DATES: [&str; 41] = [
    "MEMBER",
    "SINCE",
    "EXP",
    "EXPIRY",
    "EXPIRES",
    "EXPIRATION",
    "VALID",
    "GULTIG",
    "BEST BEFORE",
    "USE BY",
    "DUE",
    "FALLIG",
    "ZAHLBAR BIS",
    "VENCE",
    "VENCIMIENTO",
    "VENCIMENTO",
    "ECHEANCE",
    "SCADENZA",
    "VERVALDATUM",
    "BIRTH",
    "DOB",
    "VALIDO",
    // "Customer since", "member since" and the like.
    "SEIT",
    "DEPUIS",
    "SINDS",
    "DESDE",
    "SEDAN",
    "SIDEN",
    "VUODESTA",
    "SEJAK",
    "CLIENTE DAL",
    "MEMBRO DAL",
    "KLIENT OD",
    "CLENEM OD",
    "UYELIK",
    "AHLI",
    "MITGLIED",
    "ADHERENT",
    "SOCIO",
    "LID SINDS",
    "GELDIG",
];

/// A time of day (`14:44`), printed beside the date of the purchase and never beside a
/// membership or expiry date.
static TIME_OF_DAY: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?:^|[^\d:])(?:[01]?\d|2[0-3]):[0-5]\d(?:[^\d]|$)")
        .unwrap_or_else(|error| panic!("invalid pattern: {error}"))
});

/// A date found on a row: the date, its confidence, the row, and how it was printed.
type Dated = (date::FoundDate, f64, usize, String);

/// Reads the purchase date: a date on a row that says `DATE` (in any supported language) wins,
/// then the first date printed with a time of day beside it, else the first date printed. Dates
/// before [`date::EARLIEST_YEAR`], after `today` (a day of
/// slack for time zones), and dates labelled as something else (a membership, an expiry, a due
/// date) are not purchase dates.
fn purchase_date(rows: &[String], month_first: bool, today: NaiveDate) -> Option<Dated> {
    let latest = today.succ_opt().unwrap_or(today);
    let other = |row: &str| {
        OTHER_DATES.iter().any(|label| has_word(row, label) || (label.contains(' ') && row.contains(label)))
    };
    let first_date = |row_says: &dyn Fn(&str) -> bool| {
        rows.iter().enumerate().filter(|(_, row)| !other(row) && row_says(row)).find_map(|(index, row)| {
            date::date_spans(row, month_first)
                .into_iter()
                .find(|(found, _)| found.date <= latest)
                .map(|(found, span)| (found, index, row.get(span).unwrap_or_default().to_owned()))
        })
    };
    let labelled = |row: &str| DATE_WORDS.iter().any(|word| row.contains(word));
    if let Some((found, index, printed)) = first_date(&labelled) {
        return Some((found, 0.95, index, printed));
    }
    if let Some((found, index, printed)) = first_date(&|row: &str| TIME_OF_DAY.is_match(row)) {
        return Some((found, 0.9, index, printed));
    }
    first_date(&|_: &str| true).map(|(found, index, printed)| (found, 0.85, index, printed))
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

/// Extracts every field from a page, with a gazetteer and no account settings.
pub fn extract(page: &Page, gazetteer: &Gazetteer) -> Extraction {
    extract_with(page, Context { gazetteer, hint: &LocaleHint::default(), today: chrono::Utc::now().date_naive() })
}

/// How many of a document's last rows are read for its sender, besides its header.
const FOOTER_ROWS: usize = 3;

/// Extracts every field from a page.
pub fn extract_with(page: &Page, context: Context<'_>) -> Extraction {
    let page_rows = page.rows();
    // No-break and thin spaces (a PDF's `1 234,56`) are spaces.
    let upper: Vec<String> =
        page_rows.iter().map(|row| row.text.to_uppercase().replace(['\u{a0}', '\u{202f}', '\u{2009}'], " ")).collect();
    let locale = locale::infer(&upper, context.hint);
    let rows: Vec<String> = upper.iter().map(|row| locale::normalize_amounts(row, &locale)).collect();
    let ocr_confidence =
        |index: Option<usize>| index.and_then(|i| page_rows.get(i)).map_or(1.0, |row| row.confidence.clamp(0.0, 1.0));

    let heights: Vec<i32> = page_rows.iter().map(|row| row.bbox.height()).collect();
    let gazetteer = context.gazetteer.covers(locale.country.map(|c| c.code));

    let country = locale.country.map(|c| c.code);
    // The merchant and its address are read from the rows as printed: amounts rewritten for the
    // locale (`211` → `211.00` where amounts carry no minor units) would spoil house numbers and
    // postcodes.
    let brand = brands::Directory::bundled().find(&upper, country);
    // A document (a letter, an invoice) is read column by column: its seller's block sits beside
    // the title and the invoice's dates. Its name row is mapped back to the page's row.
    let read_merchant = match document::header_reading(page) {
        Some(reading) => {
            // The header's rows, then the footer's last rows (where a letter prints its sender's
            // legal name), not the table between them.
            let footer = reading.iter().rposition(|row| row.header).map_or(0, |last| last + 1);
            let footer = footer.max(reading.len().saturating_sub(FOOTER_ROWS));
            let reading: Vec<&document::ReadingRow> = reading
                .iter()
                .enumerate()
                .filter(|(index, row)| row.header || *index >= footer)
                .map(|(_, row)| row)
                .collect();
            let texts: Vec<String> = reading.iter().map(|row| row.text.to_uppercase()).collect();
            let heights: Vec<i32> = reading.iter().map(|row| row.height).collect();
            let sender = reading.iter().position(|row| row.sender);
            let mut found = merchant::merchant_in_document(&texts, &heights, sender, gazetteer);
            found.name_row = found.name_row.and_then(|row| reading.get(row)).map(|row| row.row);
            found
        }
        None => merchant::merchant_with_layout(&upper, &heights, gazetteer),
    };
    let (found_merchant, is_brand) = merchant::with_brand(read_merchant, brand.as_ref(), &upper);
    // The brand's own category when the merchant is that brand.
    let brand_category = brand.as_ref().filter(|_| is_brand).and_then(|brand| brand.brand.category());
    let money = totals::money_fields(&rows, locale.cash_rounding);
    let dated = purchase_date(&rows, locale.month_first(), context.today);
    let payment = totals::payment_method(&rows);
    let items_end = money.total_row.unwrap_or(rows.len());
    let header_end = items::header_end(&rows[..items_end]).max(found_merchant.name_row.map_or(0, |row| row + 1));
    let line_items = items::line_items(&rows, header_end, items_end);
    let item_texts: Vec<&str> = line_items.iter().map(|item| item.description.as_str()).collect();
    let category = brand_category
        .map(|category| (category, 0.85))
        .or_else(|| categorize_merchant(found_merchant.name.as_ref().map(|n| n.value.as_str()), &item_texts));

    let confidence = FieldConfidence {
        merchant_name: found_merchant.name.as_ref().map(|n| n.confidence),
        merchant_address: found_merchant.address.as_ref().map(|a| a.confidence),
        date: dated.as_ref().map(|(_, c, _, _)| *c),
        total: money.total.map(|t| t.confidence * ocr_confidence(money.total_row).max(0.5)),
        subtotal: money.subtotal.map(|f| f.confidence),
        tax: money.tax.map(|f| f.confidence),
        tip: money.tip.map(|f| f.confidence),
        currency: locale.currency.map(|_| locale.currency_confidence),
        payment_method: payment.map(|p| p.confidence),
        category: category.map(|(_, c)| c),
        line_items: (!line_items.is_empty()).then_some(0.5),
    };
    let total_row = money.total_row.or_else(|| amount_row(&rows, money.total.map(|t| t.value), rows.len()));
    let below_total = total_row.map_or(rows.len(), |row| row + 1);
    let address_row = found_merchant.address.as_ref().and_then(|address| {
        let start: String = address.value.to_uppercase().chars().take(12).collect();
        upper.iter().position(|row| !start.is_empty() && row.contains(start.trim()))
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
            ("date", dated.as_ref().map(|(_, _, row, _)| *row)),
            ("subtotal", amount_row(&rows, money.subtotal.map(|f| f.value), below_total)),
            ("tax", amount_row(&rows, money.tax.map(|f| f.value), below_total)),
            ("tip", amount_row(&rows, money.tip.map(|f| f.value), below_total)),
            ("total", money.total.and(total_row)),
            ("payment_method", payment_row),
        ],
    );
    let debug = ExtractionDebug {
        locale_evidence: locale.evidence.clone(),
        merchant_source: found_merchant.source.map(str::to_owned),
        date_text: dated.as_ref().map(|(_, _, _, printed)| printed.clone()),
        total_text: money.total.and_then(|total| {
            // The total's row, the row below a label that stands alone, else the last row that
            // prints the amount.
            let near = total_row.into_iter().flat_map(|row| [row, row + 1]);
            let mut searched = near.chain((0..rows.len()).rev());
            if locale.minor_units == 0 {
                searched.find_map(|row| {
                    page_rows.get(row).and_then(|r| amount::printed_whole(&r.text.to_uppercase(), total.value))
                })
            } else {
                searched
                    .filter_map(|row| rows.get(row))
                    .find_map(|row| amount::printed_amount(row, total.value, locale.decimal_comma))
            }
        }),
        ocr_languages: None,
        preprocessing: Vec::new(),
    };
    // Currencies without minor units keep none: `125000`, not `125000.00`.
    let whole = |amount: Amount| {
        if locale.minor_units == 0 { Amount::new(amount.value().round_dp(0)) } else { amount }
    };
    Extraction {
        layout,
        debug,
        fields: ReceiptFields {
            merchant: Merchant {
                name: found_merchant.name.map(|n| n.value),
                address: found_merchant.address.map(|a| a.value),
            },
            date: dated.as_ref().map(|(found, _, _, _)| found.date),
            date_order: dated.as_ref().and_then(|(found, _, _, _)| found.order.label()).map(str::to_owned),
            currency: locale.currency,
            subtotal: money.subtotal.map(|f| whole(f.value)),
            tax: money.tax.map(|f| whole(f.value)),
            tip: money.tip.map(|f| whole(f.value)),
            total: money.total.map(|t| whole(t.value)),
            payment_method: payment.map(|p| p.value),
            category: category.map(|(c, _)| c),
            line_items: line_items
                .into_iter()
                .map(|item| LineItem { unit_price: item.unit_price.map(whole), amount: item.amount.map(whole), ..item })
                .collect(),
        },
        confidence,
        text: page.text(),
        locale,
    }
}

fn categorize_merchant(name: Option<&str>, items: &[&str]) -> Option<(Category, f64)> {
    category::categorize(name, items)
}
