//! What the stores answer about one owner's receipts without reading all of them: a filtered,
//! sorted page after a keyset [`Position`], a count, the owner's [`Usage`], and the spend
//! aggregates of their insights.
//!
//! Each receipt carries [`IndexKeys`], derived from its effective (corrected, else extracted)
//! result whenever it is stored or changed; the backends keep them as indexed columns (SQLite)
//! or an indexed sub-document (MongoDB), and every query path starts with the owner. The
//! functions here that work on receipts in memory ([`ReceiptFilter::matches`], [`page_in_memory`])
//! are the reference the backends' queries are tested against.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use finagent_core::ReceiptId;
use finagent_core::insights::{merchant_key, month_key};
use finagent_core::money::Amount;
use finagent_core::receipt::{Category, Receipt, ReceiptResult, ReceiptStatus};
use serde::Deserialize;

/// Filters of a list, a count or an export.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReceiptFilter {
    /// Purchases on or after this date (receipts without a date are left out when set).
    pub from: Option<NaiveDate>,
    /// Purchases on or before this date.
    pub to: Option<NaiveDate>,
    /// The merchant name contains this, ignoring case.
    pub merchant: Option<String>,
    /// Spending category.
    pub category: Option<Category>,
    /// Total at least this much.
    pub min_total: Option<Amount>,
    /// Total at most this much.
    pub max_total: Option<Amount>,
    /// Processing status.
    pub status: Option<ReceiptStatus>,
}

impl ReceiptFilter {
    /// The merchant substring as the stores compare it: lower case, or none when blank.
    pub fn merchant_needle(&self) -> Option<String> {
        self.merchant.as_deref().map(str::trim).filter(|wanted| !wanted.is_empty()).map(str::to_lowercase)
    }

    /// Whether a receipt passes the filter (the reference for the stores' queries).
    pub fn matches(&self, receipt: &Receipt) -> bool {
        let keys = IndexKeys::of(receipt);
        let date = keys.date;
        let total = keys.total_units;
        let dated = |bound: Option<NaiveDate>, keep: fn(NaiveDate, NaiveDate) -> bool| {
            bound.is_none_or(|bound| date.is_some_and(|date| keep(date, bound)))
        };
        let priced = |bound: Option<Amount>, keep: fn(i64, i64) -> bool| {
            bound.is_none_or(|bound| total.is_some_and(|total| keep(total, bound.to_units())))
        };
        dated(self.from, |date, from| date >= from)
            && dated(self.to, |date, to| date <= to)
            && priced(self.min_total, |total, min| total >= min)
            && priced(self.max_total, |total, max| total <= max)
            && self
                .merchant_needle()
                .is_none_or(|wanted| keys.merchant_lower.as_deref().is_some_and(|name| name.contains(&wanted)))
            && self.category.is_none_or(|wanted| keys.category == Some(wanted.as_str()))
            && self.status.is_none_or(|wanted| receipt.status == wanted)
    }
}

/// The order of a list. Every order ends with newest upload first, then by id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    /// Newest upload first (the default).
    #[default]
    Newest,
    /// Oldest upload first.
    Oldest,
    /// Latest purchase date first; undated receipts last.
    Purchased,
    /// Largest total first; receipts without a total last.
    Total,
    /// Processed receipts that most need a look first: lowest [`review_confidence`] first;
    /// receipts still processing or failed last.
    Review,
}

impl SortOrder {
    /// Every order.
    pub const ALL: [SortOrder; 5] = [Self::Newest, Self::Oldest, Self::Purchased, Self::Total, Self::Review];

    /// The order's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Newest => "newest",
            Self::Oldest => "oldest",
            Self::Purchased => "purchased",
            Self::Total => "total",
            Self::Review => "review",
        }
    }
}

/// Sort keys of receipts that lack the field sorted on: after every real value.
pub const LAST: i64 = 2_000_000_000_000_000;
/// The review key of receipts not processed: after every confidence.
pub const NOT_REVIEWABLE: f64 = 2.0;

/// The lowest confidence among the fields a person checks first (merchant, date and total; a
/// missing one counts 0), for a processed receipt.
pub fn review_confidence(receipt: &Receipt) -> Option<f64> {
    receipt.effective_result().filter(|_| receipt.status == ReceiptStatus::Done).map(review_of)
}

fn review_of(result: &ReceiptResult) -> f64 {
    let confidence = &result.confidence;
    [confidence.merchant_name, confidence.date, confidence.total]
        .into_iter()
        .map(|value| value.unwrap_or(0.0))
        .fold(1.0, f64::min)
}

/// The fields of a receipt its queries filter, sort and group on, from its effective result.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexKeys {
    /// Upload time in microseconds since the epoch.
    pub created_us: i64,
    /// Date of purchase.
    pub date: Option<NaiveDate>,
    /// The merchant name in lower case, for substring filters.
    pub merchant_lower: Option<String>,
    /// The merchant's grouping key ([`merchant_key`]), when it has a name.
    pub merchant_key: Option<String>,
    /// The category's name.
    pub category: Option<&'static str>,
    /// The total in [`Amount::to_units`].
    pub total_units: Option<i64>,
    /// The currency code.
    pub currency: Option<String>,
    /// Key of the `purchased` order: minus the day number, or [`LAST`].
    pub sort_purchased: i64,
    /// Key of the `total` order: minus the total's units, or [`LAST`].
    pub sort_total: i64,
    /// Key of the `review` order: [`review_confidence`], or [`NOT_REVIEWABLE`].
    pub sort_review: f64,
}

impl IndexKeys {
    /// The keys of a receipt as it is now.
    pub fn of(receipt: &Receipt) -> Self {
        let result = receipt.effective_result().filter(|_| receipt.status == ReceiptStatus::Done);
        Self::new(receipt.created_at, result)
    }

    /// The keys of a receipt uploaded at `created_at` whose effective result (when it is
    /// processed) is `result`.
    pub fn new(created_at: DateTime<Utc>, result: Option<&ReceiptResult>) -> Self {
        let date = result.and_then(|result| result.fields.date);
        let name =
            result.and_then(|result| result.fields.merchant.name.as_deref()).filter(|name| !name.trim().is_empty());
        let total_units = result.and_then(|result| result.fields.total).map(|total| total.to_units());
        Self {
            created_us: created_at.timestamp_micros(),
            date,
            merchant_lower: name.map(str::to_lowercase),
            merchant_key: name.map(|name| merchant_key(Some(name))),
            category: result.and_then(|result| result.fields.category).map(|category| category.as_str()),
            total_units,
            currency: result.and_then(|result| result.fields.currency).map(|currency| currency.to_string()),
            sort_purchased: date.map_or(LAST, |date| -i64::from(date.num_days_from_ce())),
            sort_total: total_units.map_or(LAST, |units| -units),
            sort_review: result.map_or(NOT_REVIEWABLE, review_of),
        }
    }

    /// The month of purchase (`2018-03`).
    pub fn month(&self) -> Option<String> {
        self.date.map(month_key)
    }

    /// The date of purchase as ISO text, which sorts like the date.
    pub fn date_text(&self) -> Option<String> {
        self.date.map(|date| date.to_string())
    }
}

/// Where a receipt sits in a sorted list: the order's key, then newest first, then by id.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Position {
    /// The order's key (0 for `newest`, the upload microsecond for `oldest`).
    pub primary: f64,
    /// Upload time in microseconds since the epoch.
    pub created_us: i64,
    /// The receipt.
    pub id: ReceiptId,
}

impl Position {
    /// Where `receipt` sits in `sort`.
    pub fn of(sort: SortOrder, receipt: &Receipt) -> Self {
        let keys = IndexKeys::of(receipt);
        let primary = match sort {
            SortOrder::Newest => 0.0,
            SortOrder::Oldest => keys.created_us as f64,
            SortOrder::Purchased => keys.sort_purchased as f64,
            SortOrder::Total => keys.sort_total as f64,
            SortOrder::Review => keys.sort_review,
        };
        Self { primary, created_us: keys.created_us, id: receipt.id }
    }

    /// The upload time.
    pub fn created(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_micros(self.created_us)
    }

    /// The list's order between two positions.
    pub fn order(&self, other: &Self) -> std::cmp::Ordering {
        self.primary
            .total_cmp(&other.primary)
            .then_with(|| other.created_us.cmp(&self.created_us))
            .then_with(|| self.id.cmp(&other.id))
    }
}

/// A key of an order's index, after the owner: every key ascending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderKey {
    /// Upload time in microseconds.
    CreatedUs,
    /// Minus the upload time, so that newest comes first.
    Recency,
    /// [`IndexKeys::sort_purchased`].
    SortPurchased,
    /// [`IndexKeys::sort_total`].
    SortTotal,
    /// [`IndexKeys::sort_review`].
    SortReview,
    /// The receipt id.
    Id,
}

/// A position's value for one [`OrderKey`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyValue {
    /// An integer key.
    Integer(i64),
    /// The review confidence.
    Real(f64),
    /// The receipt id.
    Id(ReceiptId),
}

impl SortOrder {
    /// The keys of the order's index after the owner, in order: its own key, then newest upload
    /// first, then id. A page after a position is `keys > position.bounds(sort)`.
    pub fn keys(self) -> &'static [OrderKey] {
        use OrderKey::*;
        match self {
            Self::Newest => &[Recency, Id],
            Self::Oldest => &[CreatedUs, Id],
            Self::Purchased => &[SortPurchased, Recency, Id],
            Self::Total => &[SortTotal, Recency, Id],
            Self::Review => &[SortReview, Recency, Id],
        }
    }
}

impl Position {
    /// The position's values for `sort.keys()`.
    pub fn bounds(&self, sort: SortOrder) -> Vec<KeyValue> {
        let (recency, id) = (KeyValue::Integer(-self.created_us), KeyValue::Id(self.id));
        match sort {
            SortOrder::Newest => vec![recency, id],
            SortOrder::Oldest => vec![KeyValue::Integer(self.created_us), id],
            SortOrder::Purchased | SortOrder::Total => vec![KeyValue::Integer(self.primary as i64), recency, id],
            SortOrder::Review => vec![KeyValue::Real(self.primary), recency, id],
        }
    }
}

/// One page of an owner's receipts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReceiptQuery {
    /// Which receipts.
    pub filter: ReceiptFilter,
    /// In which order.
    pub sort: SortOrder,
    /// Only those after this position (the previous page's last).
    pub after: Option<Position>,
    /// At most this many.
    pub limit: u32,
}

/// The page `query` selects from `receipts`, computed in memory (the reference for the stores).
pub fn page_in_memory(receipts: &[Receipt], query: &ReceiptQuery) -> Vec<Receipt> {
    let mut matching: Vec<(Position, &Receipt)> = receipts
        .iter()
        .filter(|receipt| query.filter.matches(receipt))
        .map(|receipt| (Position::of(query.sort, receipt), receipt))
        .filter(|(position, _)| query.after.is_none_or(|after| position.order(&after).is_gt()))
        .collect();
    matching.sort_by(|a, b| a.0.order(&b.0));
    matching.into_iter().take(query.limit as usize).map(|(_, receipt)| receipt.clone()).collect()
}

/// What an owner has stored, counted against their quota.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Receipts stored.
    pub receipts: u64,
    /// Bytes of their images.
    pub image_bytes: u64,
}
