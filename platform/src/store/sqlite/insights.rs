//! Spending insights: the aggregates behind `/api/insights`, computed in SQL over the covering index.

use chrono::{Datelike, NaiveDate};
use finagent_core::ReceiptId;
use finagent_core::insights::{
    GroupSums, MEDIAN_WINDOW, SpendAggregates, main_currency, median_of_recent, unusual_threshold,
};
use finagent_core::money::{Amount, Currency};
use rusqlite::{Connection, params};

use super::failed;
use crate::store::StoreError;

/// The whole months within `from..=to` (their first and last day), if any.
pub(super) fn whole_months(from: NaiveDate, to: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let first = if from.day() == 1 { from } else { from.checked_add_months(chrono::Months::new(1))?.with_day(1)? };
    let after_last = to.succ_opt()?;
    let last = if after_last.day() == 1 { to } else { to.with_day(1)?.pred_opt()? };
    (first <= last).then_some((first, last))
}

/// Adds a group row (month, currency, category, merchant key, units, receipts) to the sums, or
/// to the receipts in another currency.
pub(super) fn add_group(
    aggregates: &mut SpendAggregates,
    sums: &mut GroupSums,
    code: Option<&str>,
    row: (String, Option<String>, Option<String>, Option<String>, i64, i64),
) {
    let (month, currency, category, merchant, units, count) = row;
    let count = count.max(0) as usize;
    // Receipts without a currency count in the main one.
    if currency.as_deref().is_some_and(|currency| Some(currency) != code) {
        aggregates.other_currency_receipts += count;
        return;
    }
    sums.add(month, category.as_deref(), merchant.as_deref(), units, count);
}

/// Empty text (how the monthly sums store "none") as `None`.
pub(super) fn some_text(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

/// The insights of an owner over `from..=to`: whole months from the running monthly sums, the
/// partial months at the ends from the range index, duplicates from the rows flagged as they were
/// written, the median from the most recent purchases, and unusual totals from the totals index.
/// None of it reads more than the range's partial months, however long the history.
pub(super) fn spend_aggregates(
    db: &Connection,
    owner: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<SpendAggregates, StoreError> {
    let counts: Vec<(Option<Currency>, usize)> = {
        let mut statement = db
            .prepare_cached("SELECT currency, SUM(receipts) FROM spend_months WHERE owner_id = ?1 GROUP BY currency")
            .map_err(failed("spend_aggregates"))?;
        let rows = statement
            .query_map(params![owner], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))
            .map_err(failed("spend_aggregates"))?;
        let mut counts = Vec::new();
        for row in rows {
            let (code, count) = row.map_err(failed("spend_aggregates"))?;
            counts.push((some_text(code).and_then(|code| code.parse().ok()), count.max(0) as usize));
        }
        counts
    };
    let currency = main_currency(&counts);
    let code = currency.map(|currency| currency.to_string());
    let mut aggregates = SpendAggregates { currency, ..Default::default() };
    let mut sums = GroupSums::default();

    let whole = whole_months(from, to);
    if let Some((first, last)) = whole {
        let mut statement = db
            .prepare_cached(
                "SELECT month, currency, category, merchant_key, units, receipts FROM spend_months
                 WHERE owner_id = ?1 AND month >= ?2 AND month <= ?3",
            )
            .map_err(failed("spend_aggregates"))?;
        let mut rows = statement
            .query(params![owner, first.to_string()[..7].to_owned(), last.to_string()[..7].to_owned()])
            .map_err(failed("spend_aggregates"))?;
        while let Some(row) = rows.next().map_err(failed("spend_aggregates"))? {
            let group = (
                row.get::<_, String>(0).map_err(failed("spend_aggregates"))?,
                some_text(row.get(1).map_err(failed("spend_aggregates"))?),
                some_text(row.get(2).map_err(failed("spend_aggregates"))?),
                some_text(row.get(3).map_err(failed("spend_aggregates"))?),
                row.get(4).map_err(failed("spend_aggregates"))?,
                row.get(5).map_err(failed("spend_aggregates"))?,
            );
            add_group(&mut aggregates, &mut sums, code.as_deref(), group);
        }
    }
    let partial: Vec<(NaiveDate, NaiveDate)> = match whole {
        None => vec![(from, to)],
        Some((first, last)) => {
            let mut ends = Vec::new();
            if let Some(before) = first.pred_opt().filter(|before| from <= *before) {
                ends.push((from, before));
            }
            if let Some(after) = last.succ_opt().filter(|after| *after <= to) {
                ends.push((after, to));
            }
            ends
        }
    };
    for (start, end) in partial {
        let mut statement = db
            .prepare_cached(
                "SELECT substr(date, 1, 7), currency, category, merchant_key, SUM(total_units), COUNT(*)
                 FROM receipts INDEXED BY receipts_spend
                 WHERE owner_id = ?1 AND date >= ?2 AND date <= ?3 AND total_units IS NOT NULL
                 GROUP BY 1, 2, 3, 4",
            )
            .map_err(failed("spend_aggregates"))?;
        let mut rows =
            statement.query(params![owner, start.to_string(), end.to_string()]).map_err(failed("spend_aggregates"))?;
        while let Some(row) = rows.next().map_err(failed("spend_aggregates"))? {
            let group = (
                row.get(0).map_err(failed("spend_aggregates"))?,
                row.get(1).map_err(failed("spend_aggregates"))?,
                row.get(2).map_err(failed("spend_aggregates"))?,
                row.get(3).map_err(failed("spend_aggregates"))?,
                row.get(4).map_err(failed("spend_aggregates"))?,
                row.get(5).map_err(failed("spend_aggregates"))?,
            );
            add_group(&mut aggregates, &mut sums, code.as_deref(), group);
        }
    }
    let [by_month, by_category, by_merchant] = sums.into_spends();
    (aggregates.by_month, aggregates.by_category, aggregates.by_merchant) = (by_month, by_category, by_merchant);

    // Same money: no currency, or the main one.
    let same_money = "(currency IS NULL OR currency = ?2)";
    {
        let mut statement = db
            .prepare_cached(&format!(
                "SELECT id, image_sha256, merchant_key, date, total_units FROM receipts INDEXED BY receipts_duplicates
                 WHERE owner_id = ?1 AND duplicate = 1 AND date >= ?3 AND date <= ?4 AND total_units IS NOT NULL
                   AND {same_money}"
            ))
            .map_err(failed("spend_aggregates"))?;
        let rows = statement
            .query_map(params![owner, code, from.to_string(), to.to_string()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            })
            .map_err(failed("spend_aggregates"))?;
        let mut images: std::collections::BTreeMap<String, Vec<ReceiptId>> = Default::default();
        let mut sales: std::collections::BTreeMap<(String, String, i64), Vec<ReceiptId>> = Default::default();
        for row in rows {
            let (id, image, merchant, date, units) = row.map_err(failed("spend_aggregates"))?;
            let id: ReceiptId =
                id.parse().map_err(|_| StoreError::corrupt("receipt id")(format!("{id:?} is not one")))?;
            images.entry(image).or_default().push(id);
            if let Some(merchant) = merchant {
                sales.entry((merchant, date, units)).or_default().push(id);
            }
        }
        aggregates.same_image = images.into_values().filter(|group| group.len() > 1).collect();
        aggregates.same_sale = sales.into_values().filter(|group| group.len() > 1).collect();
    }
    let recent: Vec<i64> = {
        let mut statement = db
            .prepare_cached(&format!(
                "SELECT total_units FROM receipts INDEXED BY receipts_purchased
                 WHERE owner_id = ?1 AND date IS NOT NULL AND total_units IS NOT NULL AND {same_money}
                 ORDER BY sort_purchased, recency, id LIMIT ?3"
            ))
            .map_err(failed("spend_aggregates"))?;
        let rows = statement
            .query_map(params![owner, code, MEDIAN_WINDOW as i64], |row| row.get(0))
            .map_err(failed("spend_aggregates"))?;
        rows.collect::<Result<_, _>>().map_err(failed("spend_aggregates"))?
    };
    aggregates.median = median_of_recent(recent);
    if let Some(threshold) = aggregates.median.and_then(unusual_threshold) {
        let mut statement = db
            .prepare_cached(&format!(
                "SELECT id, total_units FROM receipts INDEXED BY receipts_totals
                 WHERE owner_id = ?1 AND total_units > ?5 AND date >= ?3 AND date <= ?4 AND {same_money}"
            ))
            .map_err(failed("spend_aggregates"))?;
        let rows = statement
            .query_map(params![owner, code, from.to_string(), to.to_string(), threshold.to_units()], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .map_err(failed("spend_aggregates"))?;
        for row in rows {
            let (id, units) = row.map_err(failed("spend_aggregates"))?;
            let id = id.parse().map_err(|_| StoreError::corrupt("receipt id")(format!("{id:?} is not one")))?;
            aggregates.unusual.push((id, Amount::from_units(units)));
        }
    }
    Ok(aggregates.normalized())
}
