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
use crate::money::{Amount, Currency};
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
    /// Category.
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
        /// The receipt.
        receipt: ReceiptId,
        /// Its total.
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

fn ranked(groups: BTreeMap<String, (Amount, usize)>) -> Vec<Spend> {
    let mut spends: Vec<Spend> =
        groups.into_iter().map(|(key, (total, receipts))| Spend { key, total, receipts }).collect();
    spends.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.key.cmp(&b.key)));
    spends
}

fn median(mut values: Vec<Amount>) -> Option<Amount> {
    values.sort();
    let middle = values.len() / 2;
    match values.len() {
        0 => None,
        n if n % 2 == 1 => Some(values[middle]),
        _ => Some(Amount::new(((values[middle - 1].value() + values[middle].value()) / Decimal::TWO).round_dp(2))),
    }
}

/// Summarises `history` (all of a user's receipts) over `from..=to`, with `top` merchants.
pub fn summarize(history: &[SpendRecord], from: NaiveDate, to: NaiveDate, top: usize) -> Insights {
    let mut currencies: HashMap<Option<Currency>, usize> = HashMap::new();
    for record in history {
        *currencies.entry(record.currency).or_default() += 1;
    }
    let currency = currencies
        .iter()
        .filter(|(currency, _)| currency.is_some())
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        .and_then(|(currency, _)| *currency);
    // Receipts without a currency are counted in the main one: a user's receipts rarely mix.
    let same_money = |record: &SpendRecord| record.currency.is_none() || record.currency == currency;
    let in_range: Vec<&SpendRecord> = history.iter().filter(|r| r.date >= from && r.date <= to).collect();
    let other_currency_receipts = in_range.iter().filter(|r| !same_money(r)).count();
    let counted: Vec<&SpendRecord> = in_range.into_iter().filter(|r| same_money(r)).collect();

    let mut months: BTreeMap<String, (Amount, usize)> = BTreeMap::new();
    let mut categories: BTreeMap<String, (Amount, usize)> = BTreeMap::new();
    let mut merchants: BTreeMap<String, (Amount, usize)> = BTreeMap::new();
    for record in &counted {
        let month = format!("{:04}-{:02}", record.date.year(), record.date.month());
        let category = record.category.map_or("uncategorized", |c| c.as_str()).to_owned();
        let merchant =
            record.merchant.as_deref().map(crate::extract::text::normalize).unwrap_or_else(|| "unknown".to_owned());
        for (groups, key) in [(&mut months, month), (&mut categories, category), (&mut merchants, merchant)] {
            let entry = groups.entry(key).or_insert((Amount::ZERO, 0));
            entry.0 = entry.0 + record.total;
            entry.1 += 1;
        }
    }
    let by_month: Vec<Spend> =
        months.into_iter().map(|(key, (total, receipts))| Spend { key, total, receipts }).collect();
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
    let by_merchant = ranked(merchants);

    let mut anomalies = Vec::new();
    for (index, first) in counted.iter().enumerate() {
        for second in counted.iter().skip(index + 1) {
            let reason = if first.image_sha256 == second.image_sha256 {
                Some("same_image")
            } else if first.date == second.date
                && first.total == second.total
                && first.merchant.is_some()
                && first.merchant.as_deref().map(crate::extract::text::normalize)
                    == second.merchant.as_deref().map(crate::extract::text::normalize)
            {
                Some("same_merchant_date_total")
            } else {
                None
            };
            if let Some(reason) = reason {
                anomalies.push(Anomaly::Duplicate {
                    first: first.receipt_id,
                    second: second.receipt_id,
                    reason: reason.to_owned(),
                });
            }
        }
    }
    let usual: Vec<Amount> = history.iter().filter(|r| same_money(r)).map(|r| r.total).collect();
    if usual.len() >= MIN_HISTORY
        && let Some(median) = median(usual)
        && median.value() > Decimal::ZERO
    {
        for record in &counted {
            if record.total.value() > median.value() * Decimal::from(UNUSUAL_FACTOR) {
                anomalies.push(Anomaly::UnusualAmount { receipt: record.receipt_id, total: record.total, median });
            }
        }
    }

    Insights {
        currency,
        top_merchants: by_merchant.iter().take(top).cloned().collect(),
        by_month,
        by_category: ranked(categories),
        by_merchant,
        month_over_month,
        anomalies,
        other_currency_receipts,
    }
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
