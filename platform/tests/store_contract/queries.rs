//! Queries: every filter and order against the in-memory reference, and the spending aggregates.

use chrono::NaiveDate;
use chrono::{Duration, Utc};
use finagent_core::insights::{SpendAggregates, SpendRecord, aggregate};
use finagent_core::money::{Amount, Currency};
use finagent_core::receipt::Category;
use finagent_core::receipt::{Receipt, ReceiptStatus};
use finagent_core::{ReceiptId, UserId};
use finagent_platform::store::query::page_in_memory;
use finagent_platform::store::{Position, ReceiptFilter, ReceiptQuery, SortOrder};

use super::*;

/// A deterministic mix of receipts for one owner: dated and undated, priced and not, several
/// merchants (in different spellings), categories and currencies, duplicates, unusual totals,
/// corrections, failures and receipts still queued; stored through the trait like uploads.
pub(crate) async fn seed_mixed(store: &impl Store, owner: UserId, count: u32) -> Vec<Receipt> {
    let merchants = [Some("Kedai Papan"), Some("KEDAI  PAPAN"), Some("99 Speed Mart"), Some("Café Ümlaut"), None];
    let categories = [Some(Category::Groceries), Some(Category::Dining), None, Some(Category::Hardware)];
    let base = Utc::now() - Duration::days(30);
    let mut seed = 7u64;
    let mut next = move |modulus: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % modulus
    };
    for index in 0..count {
        let mut receipt = upload(owner, &format!("{:064x}", index % (count - 3)), None);
        // A few uploads share a second (equal keys are ordered by id).
        receipt.created_at = base + Duration::seconds(i64::from(index / 3));
        receipt.image_bytes = 100 + u64::from(index);
        // Bypass de-duplication for the images that repeat on purpose.
        store.insert_receipt(&receipt).await.expect("insert");
        match next(10) {
            0 => {
                store.set_status(receipt.id, ReceiptStatus::Failed, Some("unreadable")).await.expect("fail");
                continue;
            }
            1 => continue,
            _ => {}
        }
        let mut extracted = result("0");
        extracted.fields.merchant.name = merchants[next(5) as usize].map(str::to_owned);
        extracted.fields.date = (next(6) > 0)
            .then(|| NaiveDate::from_ymd_opt(2024, 1 + next(12) as u32, 1 + next(3) as u32).expect("date"));
        extracted.fields.total = (next(7) > 0).then(|| {
            let cents = if next(15) == 0 { 90_000 + next(1000) } else { 500 + next(5) * 250 };
            Amount::from_minor(cents as i64, 2)
        });
        extracted.fields.currency = match next(8) {
            0 => Some(Currency::EUR),
            1 => None,
            _ => Some(Currency::MYR),
        };
        extracted.fields.category = categories[next(4) as usize];
        extracted.confidence.total = Some(next(100) as f64 / 100.0);
        extracted.confidence.merchant_name = Some(0.9);
        extracted.confidence.date = Some(0.8);
        store.store_result(receipt.id, &extracted).await.expect("result");
        if next(6) == 0 {
            let mut corrected = extracted.clone();
            corrected.fields.merchant.name = Some("Corrected Shop".to_owned());
            corrected.fields.total = Some(Amount::from_minor(1234, 2));
            corrected.fields.date = Some(NaiveDate::from_ymd_opt(2024, 6, 15).expect("date"));
            assert!(store.save_corrections(owner, receipt.id, &corrected).await.expect("correct"));
        }
    }
    let mut stored = Vec::new();
    let mut after = None;
    loop {
        let query = ReceiptQuery { after, limit: 50, ..Default::default() };
        let page = store.receipt_page(owner, &query).await.expect("page");
        after = page.last().map(|receipt| Position::of(SortOrder::Newest, receipt));
        let done = page.len() < 50;
        stored.extend(page);
        if done {
            break;
        }
    }
    assert_eq!(stored.len(), count as usize, "every receipt is listed once");
    stored
}

pub(crate) fn filters() -> Vec<ReceiptFilter> {
    let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2024, m, d).expect("date");
    vec![
        ReceiptFilter::default(),
        ReceiptFilter { from: Some(day(3, 1)), to: Some(day(8, 31)), ..Default::default() },
        ReceiptFilter { merchant: Some("papan".into()), ..Default::default() },
        ReceiptFilter { merchant: Some("ÜMLAUT".into()), ..Default::default() },
        ReceiptFilter { merchant: Some("a.*".into()), ..Default::default() },
        ReceiptFilter { category: Some(Category::Dining), status: Some(ReceiptStatus::Done), ..Default::default() },
        ReceiptFilter {
            min_total: Some("10.00".parse().expect("amount")),
            max_total: Some("900.00".parse().expect("amount")),
            ..Default::default()
        },
        ReceiptFilter { status: Some(ReceiptStatus::Failed), ..Default::default() },
    ]
}

pub(crate) async fn pages_match_the_reference_for_every_filter_and_order(store: impl Store) {
    let owner = UserId::new();
    let stored = seed_mixed(&store, owner, 90).await;
    seed_mixed(&store, UserId::new(), 10).await;
    for filter in filters() {
        let expected_count = stored.iter().filter(|receipt| filter.matches(receipt)).count() as u64;
        assert_eq!(store.count_receipts(owner, &filter).await.expect("count"), expected_count, "{filter:?}");
        for sort in SortOrder::ALL {
            let mut after = None;
            let mut pages = 0;
            loop {
                let query = ReceiptQuery { filter: filter.clone(), sort, after, limit: 7 };
                let got: Vec<ReceiptId> =
                    store.receipt_page(owner, &query).await.expect("page").iter().map(|r| r.id).collect();
                let want: Vec<ReceiptId> = page_in_memory(&stored, &query).iter().map(|r| r.id).collect();
                assert_eq!(got, want, "{sort:?} {filter:?} page {pages}");
                let Some(last) = want.last() else { break };
                let last = stored.iter().find(|receipt| receipt.id == *last).expect("stored");
                after = Some(Position::of(sort, last));
                pages += 1;
            }
        }
    }
}

pub(crate) fn spend_records(receipts: &[Receipt]) -> Vec<SpendRecord> {
    receipts
        .iter()
        .filter(|receipt| receipt.status == ReceiptStatus::Done)
        .filter_map(|receipt| {
            let result = receipt.effective_result()?;
            Some(SpendRecord {
                receipt_id: receipt.id,
                date: result.fields.date?,
                merchant: result.fields.merchant.name.clone(),
                category: result.fields.category,
                total: result.fields.total?,
                currency: result.fields.currency,
                image_sha256: receipt.image_sha256.clone(),
            })
        })
        .collect()
}

pub(crate) async fn spend_aggregates_match_the_reference(store: impl Store) {
    let owner = UserId::new();
    let stored = seed_mixed(&store, owner, 120).await;
    let records = spend_records(&stored);
    let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2024, m, d).expect("date");
    for (from, to) in
        [(day(1, 1), day(12, 31)), (day(3, 1), day(5, 31)), (day(6, 15), day(6, 15)), (day(12, 30), day(12, 31))]
    {
        let got = store.spend_aggregates(owner, from, to).await.expect("aggregates");
        let want = aggregate(&records, from, to);
        assert_eq!(got, want, "{from}..{to}");
    }
    let year = store.spend_aggregates(owner, day(1, 1), day(12, 31)).await.expect("aggregates");
    assert!(
        year.median.is_some() && !year.unusual.is_empty() && !year.same_image.is_empty() && !year.same_sale.is_empty(),
        "the mix exercises every part: {year:?}"
    );
    assert!(year.other_currency_receipts > 0 && year.by_merchant.len() > 2);
    let nobody = store.spend_aggregates(UserId::new(), day(1, 1), day(12, 31)).await.expect("aggregates");
    assert_eq!(nobody, SpendAggregates::default());
}
