//! Storage accounting: each owner's and the instance's usage rows, kept in the same transaction as the
//! receipt rows they count, so a limit holds however many uploads arrive at once.

use finagent_core::receipt::Receipt;
use rusqlite::{Connection, OptionalExtension, params};

use super::{failed, to_json};
use crate::store::query::{IndexKeys, Usage};
use crate::store::{Exceeded, INSTANCE_USAGE_KEY, StorageLimits, StoreError};

/// What a receipt counts for in insights: it is processed, with a date and a total.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Spent {
    owner: String,
    date: String,
    currency: Option<String>,
    category: Option<String>,
    merchant_key: Option<String>,
    units: i64,
    image: String,
}

impl Spent {
    /// The spend of the row `id` as stored now.
    pub(super) fn of_row(db: &Connection, id: &str) -> Result<Option<Self>, StoreError> {
        db.query_row(
            "SELECT owner_id, date, currency, category, merchant_key, total_units, image_sha256 FROM receipts
             WHERE id = ?1 AND date IS NOT NULL AND total_units IS NOT NULL",
            params![id],
            |row| {
                Ok(Self {
                    owner: row.get(0)?,
                    date: row.get(1)?,
                    currency: row.get(2)?,
                    category: row.get(3)?,
                    merchant_key: row.get(4)?,
                    units: row.get(5)?,
                    image: row.get(6)?,
                })
            },
        )
        .optional()
        .map_err(failed("of_row"))
    }

    /// Adds (`sign` 1) or removes (-1) this spend in the owner's monthly sums.
    pub(super) fn roll(&self, db: &Connection, sign: i64) -> Result<(), StoreError> {
        let key = params![
            self.owner,
            &self.date[..7],
            self.currency.as_deref().unwrap_or(""),
            self.category.as_deref().unwrap_or(""),
            self.merchant_key.as_deref().unwrap_or(""),
            sign * self.units,
            sign
        ];
        db.execute(
            "INSERT INTO spend_months (owner_id, month, currency, category, merchant_key, units, receipts)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT DO UPDATE SET units = units + excluded.units, receipts = receipts + excluded.receipts",
            key,
        )
        .map_err(failed("roll"))?;
        db.execute(
            "DELETE FROM spend_months WHERE owner_id = ?1 AND month = ?2 AND currency = ?3 AND category = ?4
                      AND merchant_key = ?5 AND receipts <= 0",
            params![
                self.owner,
                &self.date[..7],
                self.currency.as_deref().unwrap_or(""),
                self.category.as_deref().unwrap_or(""),
                self.merchant_key.as_deref().unwrap_or("")
            ],
        )
        .map_err(failed("roll"))?;
        Ok(())
    }

    /// Recomputes the duplicate flag of every receipt sharing this spend's image or sale.
    pub(super) fn refresh_duplicates(&self, db: &Connection) -> Result<(), StoreError> {
        const FLAG: &str = "duplicate = (receipts.date IS NOT NULL AND receipts.total_units IS NOT NULL AND (
            EXISTS (SELECT 1 FROM receipts other INDEXED BY receipts_owner_image WHERE other.owner_id = receipts.owner_id
                      AND other.image_sha256 = receipts.image_sha256 AND other.id != receipts.id
                      AND other.date IS NOT NULL AND other.total_units IS NOT NULL)
            OR (receipts.merchant_key IS NOT NULL AND EXISTS (SELECT 1 FROM receipts other INDEXED BY receipts_sale
                      WHERE other.owner_id = receipts.owner_id AND other.merchant_key = receipts.merchant_key
                      AND other.date = receipts.date AND other.total_units = receipts.total_units
                      AND other.id != receipts.id))))";
        db.execute(
            &format!(
                "UPDATE receipts INDEXED BY receipts_owner_image SET {FLAG} WHERE owner_id = ?1 AND image_sha256 = ?2"
            ),
            params![self.owner, self.image],
        )
        .map_err(failed("refresh_duplicates"))?;
        if let Some(merchant) = &self.merchant_key {
            db.execute(
                &format!(
                    "UPDATE receipts INDEXED BY receipts_sale SET {FLAG}
                     WHERE owner_id = ?1 AND merchant_key = ?2 AND date = ?3 AND total_units = ?4"
                ),
                params![self.owner, merchant, self.date, self.units],
            )
            .map_err(failed("refresh_duplicates"))?;
        }
        Ok(())
    }
}

/// Takes a receipt out of its owner's insights before its row is deleted.
pub(super) fn unspend(db: &Connection, id: &str) -> Result<Option<Spent>, StoreError> {
    let spent = Spent::of_row(db, id)?;
    if let Some(spent) = &spent {
        spent.roll(db, -1)?;
    }
    Ok(spent)
}

/// Writes a receipt's document, status and key columns to its row, and moves its spend in the
/// owner's monthly sums and duplicate flags when it changed.
pub(super) fn write_keys(db: &Connection, receipt: &Receipt) -> Result<(), StoreError> {
    let id = receipt.id.to_string();
    let before = Spent::of_row(db, &id)?;
    let keys = IndexKeys::of(receipt);
    db.execute(
        "UPDATE receipts SET status = ?2, document = ?3, created_us = ?4, recency = ?5, date = ?6,
           merchant_lower = ?7, merchant_key = ?8, category = ?9, total_units = ?10, currency = ?11,
           sort_purchased = ?12, sort_total = ?13, sort_review = ?14, image_bytes = ?15
         WHERE id = ?1",
        params![
            id,
            receipt.status.as_str(),
            to_json(receipt)?,
            keys.created_us,
            -keys.created_us,
            keys.date_text(),
            keys.merchant_lower,
            keys.merchant_key,
            keys.category,
            keys.total_units,
            keys.currency,
            keys.sort_purchased,
            keys.sort_total,
            keys.sort_review,
            i64::try_from(receipt.image_bytes).unwrap_or(i64::MAX),
        ],
    )
    .map_err(failed("write_keys"))?;
    let after = Spent::of_row(db, &id)?;
    if before != after {
        for (spent, sign) in [(&before, -1), (&after, 1)] {
            if let Some(spent) = spent {
                spent.roll(db, sign)?;
                spent.refresh_duplicates(db)?;
            }
        }
    }
    Ok(())
}

/// Moves an owner's usage counts, and the instance's, by one receipt of `bytes`, up (`sign` 1) or
/// down (-1).
pub(super) fn count_usage(db: &Connection, owner: &str, bytes: u64, sign: i64) -> Result<(), StoreError> {
    let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
    for row in [owner, INSTANCE_USAGE_KEY] {
        db.execute(
            "INSERT INTO usage (owner_id, receipts, image_bytes) VALUES (?1, MAX(?2, 0), MAX(?3, 0))
             ON CONFLICT (owner_id) DO UPDATE SET receipts = MAX(receipts + ?2, 0), image_bytes = MAX(image_bytes + ?3, 0)",
            params![row, sign, sign * bytes],
        )
        .map_err(failed("count_usage"))?;
    }
    Ok(())
}

/// The usage row of an owner, or of the instance ([`INSTANCE_USAGE_KEY`]).
pub(super) fn usage_of(db: &Connection, key: &str) -> Result<Usage, StoreError> {
    db.query_row("SELECT receipts, image_bytes FROM usage WHERE owner_id = ?1", params![key], |row| {
        Ok(Usage { receipts: row.get::<_, i64>(0)?.max(0) as u64, image_bytes: row.get::<_, i64>(1)?.max(0) as u64 })
    })
    .optional()
    .map(Option::unwrap_or_default)
    .map_err(failed("usage_of"))
}

/// The limit one more receipt of `bytes` would pass, if any.
pub(super) fn exceeded(
    db: &Connection,
    owner: &str,
    bytes: u64,
    limits: StorageLimits,
) -> Result<Option<Exceeded>, StoreError> {
    let mine = usage_of(db, owner)?;
    if !limits.owner_admits(mine, bytes) {
        return Ok(Some(Exceeded::Owner(mine)));
    }
    let all = usage_of(db, INSTANCE_USAGE_KEY)?;
    if !limits.instance_admits(all, bytes) {
        return Ok(Some(Exceeded::Instance(all)));
    }
    Ok(None)
}
