//! Spending insights: pure functions over a user's receipts.
//!
//! [`summarize`] gives spend by month, category and merchant over a date range, the top
//! merchants, the month-over-month change, and anomalies: likely duplicate receipts (the same
//! image, or the same merchant, day and total) and amounts far above the user's own history.
//! Money is never mixed across currencies: the summary is in the user's main currency (the one
//! most of their receipts use), and receipts in other currencies are counted, not added.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::ids::ReceiptId;
use crate::money::{Amount, Currency, UNITS_PER_ONE};
use crate::receipt::Category;

/// What insights need to know of one receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendRecord {
    /// The receipt.
    pub receipt_id: ReceiptId,
    /// Date of purchase.
    pub date: NaiveDate,
    /// Merchant name, as extracted or corrected.
    pub merchant: Option<String>,
    pub category: Option<Category>,
    /// Amount paid.
    pub total: Amount,
    /// Currency, when known.
    pub currency: Option<Currency>,
    /// SHA-256 of the image.
    pub image_sha256: String,
}

/// A spend total under a label.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Spend {
    /// Month (`2018-03`), category or merchant.
    pub key: String,
    /// Sum of totals.
    pub total: Amount,
    /// Number of receipts.
    pub receipts: usize,
}

/// One month against the month before.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MonthChange {
    /// The month (`2018-04`).
    pub month: String,
    /// Its spend.
    pub total: Amount,
    /// Percentage change from the previous month, two decimals; `None` for the first month or
    /// after a month with no spend.
    pub change_percent: Option<Decimal>,
}

/// Something worth a second look.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Anomaly {
    /// Two receipts that are probably the same purchase.
    Duplicate {
        /// The earlier-listed receipt.
        first: ReceiptId,
        /// The other one.
        second: ReceiptId,
        /// `same_image` or `same_merchant_date_total`.
        reason: String,
    },
    /// A total far above the user's usual spend.
    UnusualAmount {
        receipt: ReceiptId,
        total: Amount,
        /// The user's median total.
        median: Amount,
    },
}

/// The whole summary.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Insights {
    /// The currency of every amount in the summary.
    pub currency: Option<Currency>,
    /// Spend per month, oldest first.
    pub by_month: Vec<Spend>,
    /// Spend per category, largest first (`uncategorized` for none).
    pub by_category: Vec<Spend>,
    /// Spend per merchant, largest first (`unknown` for none).
    pub by_merchant: Vec<Spend>,
    /// The first few of `by_merchant`.
    pub top_merchants: Vec<Spend>,
    /// Month-over-month change.
    pub month_over_month: Vec<MonthChange>,
    /// Anomalies within the range.
    pub anomalies: Vec<Anomaly>,
    /// Receipts in the range left out because they are in another currency.
    pub other_currency_receipts: usize,
}

/// A total this many times the median of the user's history (with at least [`MIN_HISTORY`]
/// receipts) is unusual.
pub const UNUSUAL_FACTOR: i64 = 4;
/// Receipts of history needed before amounts are judged.
pub const MIN_HISTORY: usize = 5;

fn ranked(mut spends: Vec<Spend>) -> Vec<Spend> {
    spends.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.key.cmp(&b.key)));
    spends
}

/// How many of the user's most recent purchases (by date) their usual total is the median of.
pub const MEDIAN_WINDOW: usize = 1_000;

/// The median of the totals (in [`Amount::to_units`]) of the user's most recent purchases, once
/// there are [`MIN_HISTORY`] of them.
pub fn median_of_recent(mut totals: Vec<i64>) -> Option<Amount> {
    if totals.len() < MIN_HISTORY {
        return None;
    }
    totals.sort_unstable();
    median_of_units(&totals[(totals.len() - 1) / 2..], totals.len())
}

/// The median of totals given as [`Amount::to_units`], rounded to the cent.
pub fn median_of_units(sorted_middle: &[i64], count: usize) -> Option<Amount> {
    match (count, sorted_middle) {
        (0, _) | (_, []) => None,
        (n, [only, ..]) if n % 2 == 1 => Some(Amount::from_units(*only)),
        (_, [low, high, ..]) => {
            let middle = (Decimal::from(*low) + Decimal::from(*high)) / Decimal::TWO / Decimal::from(UNITS_PER_ONE);
            Some(Amount::from_units(Amount::new(middle.round_dp(2)).to_units()))
        }
        (_, [_]) => None,
    }
}

/// The month key of a date (`2018-03`).
pub fn month_key(date: NaiveDate) -> String {
    format!("{:04}-{:02}", date.year(), date.month())
}

/// The merchant key a receipt is grouped under: its name normalised, `unknown` for none.
pub fn merchant_key(name: Option<&str>) -> String {
    name.map(normalize_name).filter(|key| !key.is_empty()).unwrap_or_else(|| "unknown".to_owned())
}

/// The category key a receipt is grouped under, `uncategorized` for none.
pub fn category_key(category: Option<Category>) -> &'static str {
    category.map_or("uncategorized", |c| c.as_str())
}

/// The main currency: the one most receipts use (ties go to the first code), `None` when no
/// receipt names one.
pub fn main_currency(counts: &[(Option<Currency>, usize)]) -> Option<Currency> {
    counts
        .iter()
        .filter(|(currency, count)| currency.is_some() && *count > 0)
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
        .and_then(|(currency, _)| *currency)
}

/// The threshold above which a total is unusual, given the median of the user's history.
pub fn unusual_threshold(median: Amount) -> Option<Amount> {
    (median.value() > Decimal::ZERO).then(|| Amount::new(median.value() * Decimal::from(UNUSUAL_FACTOR)))
}

/// Spend summed per month, per category and per merchant, filled group by group (by receipts in
/// memory, or by a store's group rows).
#[derive(Debug, Default)]
pub struct GroupSums([BTreeMap<String, (i64, usize)>; 3]);

impl GroupSums {
    /// Adds `count` receipts totalling `units` ([`Amount::to_units`]) to their month, category
    /// (`uncategorized` for none) and merchant key (`unknown` for none).
    pub fn add(&mut self, month: String, category: Option<&str>, merchant: Option<&str>, units: i64, count: usize) {
        let keys = [
            month,
            category.unwrap_or_else(|| category_key(None)).to_owned(),
            merchant.unwrap_or("unknown").to_owned(),
        ];
        for (sums, key) in self.0.iter_mut().zip(keys) {
            let entry = sums.entry(key).or_default();
            entry.0 += units;
            entry.1 += count;
        }
    }

    /// The sums per month, category and merchant, each ordered by key.
    pub fn into_spends(self) -> [Vec<Spend>; 3] {
        self.0.map(|sums| {
            sums.into_iter()
                .map(|(key, (units, receipts))| Spend { key, total: Amount::from_units(units), receipts })
                .collect()
        })
    }
}

/// What a summary is made of, as a store can compute it without reading every receipt: group
/// sums over the range, the groups of likely duplicates, and the totals far above the user's
/// median. [`aggregate`] computes it in memory from [`SpendRecord`]s; the stores compute the same
/// with their own queries, and [`summarize_aggregates`] turns either into [`Insights`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpendAggregates {
    /// The main currency over the whole history ([`main_currency`]).
    pub currency: Option<Currency>,
    /// Sums per month within the range, in the main currency (or none).
    pub by_month: Vec<Spend>,
    /// Sums per [`category_key`].
    pub by_category: Vec<Spend>,
    /// Sums per [`merchant_key`].
    pub by_merchant: Vec<Spend>,
    /// Receipts in the range in another currency.
    pub other_currency_receipts: usize,
    /// Groups (two or more) of counted receipts in the range with the same image.
    pub same_image: Vec<Vec<ReceiptId>>,
    /// Groups of counted receipts in the range with the same named merchant, day and total.
    pub same_sale: Vec<Vec<ReceiptId>>,
    /// The median total of the [`MEDIAN_WINDOW`] most recent purchases in the main currency, once
    /// there are [`MIN_HISTORY`].
    pub median: Option<Amount>,
    /// Counted receipts in the range above [`unusual_threshold`] of the median.
    pub unusual: Vec<(ReceiptId, Amount)>,
}

impl SpendAggregates {
    /// Puts every list in one order, so that aggregates computed two ways compare equal.
    pub fn normalized(mut self) -> Self {
        for spends in [&mut self.by_month, &mut self.by_category, &mut self.by_merchant] {
            spends.sort_by(|a, b| a.key.cmp(&b.key));
        }
        for groups in [&mut self.same_image, &mut self.same_sale] {
            groups.iter_mut().for_each(|group| group.sort());
            groups.sort();
        }
        self.unusual.sort();
        self
    }
}

/// Aggregates `history` (all of a user's receipts with a date and a total) over `from..=to`, in
/// memory: the reference the stores' own aggregation is tested against.
pub fn aggregate(history: &[SpendRecord], from: NaiveDate, to: NaiveDate) -> SpendAggregates {
    let mut currencies: HashMap<Option<Currency>, usize> = HashMap::new();
    for record in history {
        *currencies.entry(record.currency).or_default() += 1;
    }
    let currency = main_currency(&currencies.into_iter().collect::<Vec<_>>());
    // Receipts without a currency are counted in the main one: a user's receipts rarely mix.
    let same_money = |record: &SpendRecord| record.currency.is_none() || record.currency == currency;
    let in_range: Vec<&SpendRecord> = history.iter().filter(|r| r.date >= from && r.date <= to).collect();
    let other_currency_receipts = in_range.iter().filter(|r| !same_money(r)).count();
    let counted: Vec<&SpendRecord> = in_range.into_iter().filter(|r| same_money(r)).collect();

    let mut sums = GroupSums::default();
    let mut images: BTreeMap<&str, Vec<ReceiptId>> = BTreeMap::new();
    let mut sales: BTreeMap<(String, NaiveDate, i64), Vec<ReceiptId>> = BTreeMap::new();
    for record in &counted {
        let merchant = merchant_key(record.merchant.as_deref());
        sums.add(
            month_key(record.date),
            Some(category_key(record.category)),
            Some(&merchant),
            record.total.to_units(),
            1,
        );
        images.entry(&record.image_sha256).or_default().push(record.receipt_id);
        if let Some(name) = record.merchant.as_deref().filter(|name| !name.trim().is_empty()) {
            let key = (merchant_key(Some(name)), record.date, record.total.to_units());
            sales.entry(key).or_default().push(record.receipt_id);
        }
    }
    let [by_month, by_category, by_merchant] = sums.into_spends();
    let several = |groups: Vec<Vec<ReceiptId>>| groups.into_iter().filter(|group| group.len() > 1).collect();

    let mut usual: Vec<&SpendRecord> = history.iter().filter(|r| same_money(r)).collect();
    usual.sort_by_key(|record| std::cmp::Reverse(record.date));
    let median = median_of_recent(usual.iter().take(MEDIAN_WINDOW).map(|r| r.total.to_units()).collect());
    let unusual = median
        .and_then(unusual_threshold)
        .map(|threshold| {
            counted
                .iter()
                .filter(|record| record.total.to_units() > threshold.to_units())
                .map(|record| (record.receipt_id, Amount::from_units(record.total.to_units())))
                .collect()
        })
        .unwrap_or_default();
    SpendAggregates {
        currency,
        by_month,
        by_category,
        by_merchant,
        other_currency_receipts,
        same_image: several(images.into_values().collect()),
        same_sale: several(sales.into_values().collect()),
        median,
        unusual,
    }
    .normalized()
}

/// Summarises `history` (all of a user's receipts) over `from..=to`, with `top` merchants.
pub fn summarize(history: &[SpendRecord], from: NaiveDate, to: NaiveDate, top: usize) -> Insights {
    summarize_aggregates(aggregate(history, from, to), top)
}

/// Turns aggregates into the summary, with `top` merchants. Each group of duplicates is reported
/// as its earliest receipt against each of the others; a pair with the same image is not
/// reported again as the same sale.
pub fn summarize_aggregates(aggregates: SpendAggregates, top: usize) -> Insights {
    let aggregates = aggregates.normalized();
    let by_month = aggregates.by_month;
    let month_over_month = by_month
        .iter()
        .enumerate()
        .map(|(index, spend)| {
            let previous = index.checked_sub(1).map(|i| by_month[i].total.value());
            let change_percent = previous
                .filter(|previous| !previous.is_zero())
                .map(|previous| ((spend.total.value() - previous) * Decimal::ONE_HUNDRED / previous).round_dp(2));
            MonthChange { month: spend.key.clone(), total: spend.total, change_percent }
        })
        .collect();
    let by_merchant = ranked(aggregates.by_merchant);

    let mut anomalies = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (groups, reason) in
        [(&aggregates.same_image, "same_image"), (&aggregates.same_sale, "same_merchant_date_total")]
    {
        for group in groups {
            let Some((first, others)) = group.split_first() else { continue };
            for second in others {
                if seen.insert((*first, *second)) {
                    anomalies.push(Anomaly::Duplicate { first: *first, second: *second, reason: reason.to_owned() });
                }
            }
        }
    }
    if let Some(median) = aggregates.median {
        for (receipt, total) in aggregates.unusual {
            anomalies.push(Anomaly::UnusualAmount { receipt, total, median });
        }
    }

    Insights {
        currency: aggregates.currency,
        top_merchants: by_merchant.iter().take(top).cloned().collect(),
        by_month,
        by_category: ranked(aggregates.by_category),
        by_merchant,
        month_over_month,
        anomalies,
        other_currency_receipts: aggregates.other_currency_receipts,
    }
}

/// Upper case, whitespace collapsed to single spaces, trimmed: the key merchants are grouped by.
pub fn normalize_name(text: &str) -> String {
    text.to_uppercase().split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(date: &str, merchant: &str, category: Option<Category>, total: &str, sha: &str) -> SpendRecord {
        SpendRecord {
            receipt_id: ReceiptId::new(),
            date: date.parse().expect("date"),
            merchant: Some(merchant.to_owned()),
            category,
            total: total.parse().expect("amount"),
            currency: Some(Currency::MYR),
            image_sha256: sha.to_owned(),
        }
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("date")
    }

    fn day_of(text: &str) -> NaiveDate {
        day(text)
    }

    #[test]
    fn insight_spend_by_month_category_and_merchant() {
        let history = [
            record("2018-03-02", "99 Speed Mart", Some(Category::Groceries), "20.00", "a"),
            record("2018-03-20", "Kedai Papan", Some(Category::Hardware), "32.76", "b"),
            record("2018-04-01", "99 SPEED  MART", Some(Category::Groceries), "30.00", "c"),
            record("2018-05-01", "Cafe", None, "10.00", "d"),
        ];
        let insights = summarize(&history, day("2018-03-01"), day("2018-04-30"), 1);
        assert_eq!(insights.currency, Some(Currency::MYR));
        let months: Vec<(&str, String)> =
            insights.by_month.iter().map(|s| (s.key.as_str(), s.total.to_string())).collect();
        assert_eq!(months, [("2018-03", "52.76".to_owned()), ("2018-04", "30.00".to_owned())], "May is out of range");
        assert_eq!(insights.by_category[0].key, "groceries");
        assert_eq!(insights.by_category[0].total.to_string(), "50.00");
        assert_eq!(insights.top_merchants.len(), 1);
        assert_eq!((insights.top_merchants[0].key.as_str(), insights.top_merchants[0].receipts), ("99 SPEED MART", 2));
        let change = &insights.month_over_month;
        assert_eq!(change[0].change_percent, None);
        assert_eq!(change[1].change_percent, Some("-43.14".parse().expect("decimal")));
    }

    #[test]
    fn insight_duplicates_and_unusual_amounts_are_flagged() {
        let mut history: Vec<SpendRecord> = (1..=6)
            .map(|d| record(&format!("2018-03-{d:02}"), "Cafe", Some(Category::Dining), "10.00", &format!("s{d}")))
            .collect();
        history.push(record("2018-03-10", "Cafe", Some(Category::Dining), "12.50", "same"));
        history.push(record("2018-03-11", "Other", None, "99.00", "same"));
        history.push(record("2018-03-12", "Kedai", None, "7.00", "x"));
        history.push(record("2018-03-12", "KEDAI", None, "7.00", "y"));
        history.push(record("2018-03-13", "Hotel", Some(Category::Lodging), "450.00", "z"));
        let insights = summarize(&history, day("2018-03-01"), day("2018-03-31"), 3);
        let reasons: Vec<&str> = insights
            .anomalies
            .iter()
            .filter_map(|a| match a {
                Anomaly::Duplicate { reason, .. } => Some(reason.as_str()),
                Anomaly::UnusualAmount { .. } => None,
            })
            .collect();
        assert_eq!(reasons, ["same_image", "same_merchant_date_total"]);
        let unusual: Vec<String> = insights
            .anomalies
            .iter()
            .filter_map(|a| match a {
                Anomaly::UnusualAmount { total, .. } => Some(total.to_string()),
                Anomaly::Duplicate { .. } => None,
            })
            .collect();
        assert_eq!(unusual, ["99.00", "450.00"], "far above a median of 10.00");
    }

    #[test]
    fn insight_usual_totals_are_those_of_the_most_recent_purchases() {
        let day = |offset: u64| (day("2024-12-31") - chrono::Days::new(offset)).to_string();
        // 1,000 recent purchases of 10.00, and 1,100 older ones of 100.00: over the whole history
        // the median would be 100.00.
        let mut history: Vec<SpendRecord> =
            (0..1_000).map(|n| record(&day(n % 300), "Cafe", None, "10.00", &format!("r{n}"))).collect();
        history.extend((0..1_100).map(|n| record(&day(400 + n % 300), "Hotel", None, "100.00", &format!("o{n}"))));
        let aggregates = aggregate(&history, day_of("2024-12-01"), day_of("2024-12-31"));
        assert_eq!(aggregates.median.map(|median| median.to_string()).as_deref(), Some("10.00"));
    }

    #[test]
    fn insight_never_adds_currencies_together() {
        let mut euro = record("2018-03-05", "Cafe", None, "100.00", "e");
        euro.currency = Some(Currency::EUR);
        let history =
            [record("2018-03-02", "Kedai", None, "20.00", "a"), record("2018-03-03", "Kedai", None, "5.00", "b"), euro];
        let insights = summarize(&history, day("2018-03-01"), day("2018-03-31"), 5);
        assert_eq!(insights.currency, Some(Currency::MYR));
        assert_eq!(insights.by_month[0].total.to_string(), "25.00");
        assert_eq!(insights.other_currency_receipts, 1);
    }

    #[test]
    fn insight_of_nothing_is_empty() {
        let insights = summarize(&[], day("2018-01-01"), day("2018-12-31"), 5);
        assert!(insights.by_month.is_empty() && insights.anomalies.is_empty() && insights.currency.is_none());
    }
}
