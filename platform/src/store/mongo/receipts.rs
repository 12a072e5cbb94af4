//! Receipts and their images (GridFS): one document per receipt with its query keys.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use finagent_core::insights::{
    GroupSums, MEDIAN_WINDOW, SpendAggregates, main_currency, median_of_recent, unusual_threshold,
};
use finagent_core::money::{Amount, Currency};
use finagent_core::receipt::{Receipt, ReceiptResult, ReceiptStatus};
use finagent_core::{BlobKey, ReceiptId, UserId};
use futures::{AsyncReadExt, AsyncWriteExt};
use mongodb::bson::{self, Bson, Document, doc};

use super::{MongoStore, is_duplicate, unavailable};
use super::{all, documents};
use crate::store::query::{IndexKeys, KeyValue, OrderKey, ReceiptFilter, ReceiptQuery, Usage};
use crate::store::{BlobStore, INSTANCE_USAGE_KEY, Inserted, ReceiptStore, StorageLimits, StoreError, dedup_keys};

pub(super) fn to_document(receipt: &Receipt) -> Result<Document, StoreError> {
    let mut document = bson::to_document(receipt).map_err(StoreError::corrupt("document"))?;
    document.insert("_id", receipt.id.to_string());
    let keys = IndexKeys::of(receipt);
    let mut q = result_keys(&keys);
    q.insert("created_us", keys.created_us);
    q.insert("recency", -keys.created_us);
    document.insert("q", q);
    Ok(document)
}

/// The keys of [`IndexKeys`] that follow the receipt's result (all but its upload time).
pub(super) fn result_keys(keys: &IndexKeys) -> Document {
    doc! {
        "date": keys.date_text(),
        "month": keys.month(),
        "merchant_lower": keys.merchant_lower.clone(),
        "merchant_key": keys.merchant_key.clone(),
        "category": keys.category,
        "total_units": keys.total_units,
        "currency": keys.currency.clone(),
        "sort_purchased": keys.sort_purchased,
        "sort_total": keys.sort_total,
        "sort_review": keys.sort_review,
    }
}

/// [`result_keys`] as `$set` paths under `q`.
pub(super) fn result_key_paths(result: &ReceiptResult) -> Document {
    result_keys(&IndexKeys::new(DateTime::<Utc>::UNIX_EPOCH, Some(result)))
        .into_iter()
        .map(|(name, value)| (format!("q.{name}"), value))
        .collect()
}

pub(super) fn from_document(mut document: Document) -> Result<Receipt, StoreError> {
    document.remove("_id");
    document.remove("result_writes");
    document.remove("q");
    bson::from_document(document).map_err(StoreError::corrupt("document"))
}

/// The query document of a filter, for an owner.
pub(super) fn filter_document(owner: UserId, filter: &ReceiptFilter) -> Document {
    let mut query = doc! { "owner_id": owner.to_string() };
    let mut range = |field: &str, low: Option<Bson>, high: Option<Bson>| {
        let mut bounds = Document::new();
        if let Some(low) = low {
            bounds.insert("$gte", low);
        }
        if let Some(high) = high {
            bounds.insert("$lte", high);
        }
        if !bounds.is_empty() {
            query.insert(field, bounds);
        }
    };
    range("q.date", filter.from.map(|d| Bson::from(d.to_string())), filter.to.map(|d| Bson::from(d.to_string())));
    // Dates bound the `purchased` order's key too, so that order reads only the range.
    let day_key = |date: NaiveDate| Bson::Int64(-i64::from(date.num_days_from_ce()));
    range("q.sort_purchased", filter.to.map(day_key), filter.from.map(day_key));
    range(
        "q.total_units",
        filter.min_total.map(|a| Bson::Int64(a.to_units())),
        filter.max_total.map(|a| Bson::Int64(a.to_units())),
    );
    if let Some(needle) = filter.merchant_needle() {
        query.insert("q.merchant_lower", doc! { "$regex": regex_escape(&needle) });
    }
    if let Some(category) = filter.category {
        query.insert("q.category", category.as_str());
    }
    if let Some(status) = filter.status {
        query.insert("status", status.as_str());
    }
    query
}

/// A regular expression that matches `text` literally.
pub(super) fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~ ".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The field of an order's key.
pub(super) fn field(key: OrderKey) -> &'static str {
    match key {
        OrderKey::CreatedUs => "q.created_us",
        OrderKey::Recency => "q.recency",
        OrderKey::SortPurchased => "q.sort_purchased",
        OrderKey::SortTotal => "q.sort_total",
        OrderKey::SortReview => "q.sort_review",
        OrderKey::Id => "_id",
    }
}

/// A key's value as BSON.
pub(super) fn bson_value(value: KeyValue) -> Bson {
    match value {
        KeyValue::Integer(integer) => Bson::Int64(integer),
        KeyValue::Real(real) => Bson::Double(real),
        KeyValue::Id(id) => Bson::String(id.to_string()),
    }
}

/// `fields > bounds` in lexicographic order, as a query document.
pub(super) fn after_document(fields: &[&str], bounds: &[Bson]) -> Document {
    let branches: Vec<Document> = (0..fields.len())
        .map(|last| {
            let mut branch = Document::new();
            for (field, bound) in fields.iter().zip(bounds).take(last) {
                branch.insert(*field, bound.clone());
            }
            branch.insert(fields[last], doc! { "$gt": bounds[last].clone() });
            branch
        })
        .collect();
    doc! { "$or": branches }
}

impl MongoStore {
    /// Stores a receipt's document (its usage counted by the caller).
    pub(super) async fn insert_document(&self, receipt: &Receipt) -> Result<(), StoreError> {
        match self.receipts.insert_one(to_document(receipt)?).await {
            Ok(_) => Ok(()),
            Err(error) if is_duplicate(&error) => Err(StoreError::Conflict(format!("receipt {}", receipt.id))),
            Err(error) => Err(unavailable("insert_document")(error)),
        }
    }

    /// [`ReceiptStore::insert_receipt_once`] once its room is reserved: claims the de-duplication
    /// keys, then stores the document.
    pub(super) async fn insert_reserved_once(&self, receipt: &Receipt) -> Result<Inserted, StoreError> {
        let id = receipt.id.to_string();
        let mut claimed = Vec::new();
        for key in dedup_keys(receipt) {
            match self.receipt_keys.insert_one(doc! { "_id": &key, "receipt_id": &id }).await {
                Ok(_) => claimed.push(key),
                Err(error) if is_duplicate(&error) => {
                    let mut existing = None;
                    let mut holder_id = None;
                    // The holder may be an upload between claiming its key and storing its receipt.
                    for wait in [0, 250, 1000] {
                        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                        let holder = self
                            .receipt_keys
                            .find_one(doc! { "_id": &key })
                            .await
                            .map_err(unavailable("insert_reserved_once"))?;
                        holder_id =
                            holder.as_ref().and_then(|holder| holder.get_str("receipt_id").ok()).map(str::to_owned);
                        if let Some(holder_id) = &holder_id {
                            existing = self
                                .receipts
                                .find_one(doc! { "_id": holder_id })
                                .await
                                .map_err(unavailable("insert_reserved_once"))?;
                        }
                        if existing.is_some() {
                            break;
                        }
                    }
                    if let Some(existing) = existing {
                        self.receipt_keys
                            .delete_many(doc! { "_id": { "$in": &claimed } })
                            .await
                            .map_err(unavailable("insert_reserved_once"))?;
                        return Ok(Inserted::Existing(Box::new(from_document(existing)?)));
                    }
                    // A key left behind by an upload that died before storing its receipt: take it
                    // over, only if nobody else did meanwhile.
                    let taken = self
                        .receipt_keys
                        .update_one(
                            doc! { "_id": &key, "receipt_id": holder_id.unwrap_or_default() },
                            doc! { "$set": { "receipt_id": &id } },
                        )
                        .await
                        .map_err(unavailable("insert_reserved_once"))?;
                    if taken.modified_count != 1 {
                        self.receipt_keys
                            .delete_many(doc! { "_id": { "$in": &claimed } })
                            .await
                            .map_err(unavailable("insert_reserved_once"))?;
                        return Err(StoreError::Conflict(format!("another upload holds {key}")));
                    }
                    claimed.push(key);
                }
                Err(error) => return Err(unavailable("insert_reserved_once")(error)),
            }
        }
        self.insert_document(receipt).await?;
        Ok(Inserted::New)
    }
}

impl MongoStore {
    pub(super) async fn aggregate_all(&self, pipeline: Vec<Document>) -> Result<Vec<Document>, StoreError> {
        documents("aggregate_all", self.receipts.aggregate(pipeline)).await
    }

    /// Whether the server answers (for readiness checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.receipts.estimated_document_count().await.map(|_| ()).map_err(unavailable("ping"))
    }

    pub(super) async fn find_receipts(&self, filter: Document, sort: Document) -> Result<Vec<Receipt>, StoreError> {
        let options = mongodb::options::FindOptions::builder().sort(sort).build();
        all("find_receipts", self.receipts.find(filter).with_options(options), from_document).await
    }

    pub(super) async fn blob_id(&self, key: &BlobKey) -> Result<Option<Bson>, StoreError> {
        let files: Vec<_> = documents("blob_id", self.images.find(doc! { "filename": key.as_str() })).await?;
        Ok(files.into_iter().next().map(|file| file.id))
    }
}

impl ReceiptStore for MongoStore {
    async fn insert_receipt(&self, receipt: &Receipt) -> Result<(), StoreError> {
        self.insert_document(receipt).await?;
        self.count_usage(receipt.owner_id, receipt.image_bytes, 1).await
    }

    async fn insert_receipt_once(&self, receipt: &Receipt, limits: StorageLimits) -> Result<Inserted, StoreError> {
        let (owner, bytes) = (receipt.owner_id, receipt.image_bytes);
        if let Some(exceeded) = self.reserve_within(owner, bytes, limits).await? {
            // An upload stored before is returned again even at the limit, as on SQLite.
            for key in dedup_keys(receipt) {
                let holder = self
                    .receipt_keys
                    .find_one(doc! { "_id": &key })
                    .await
                    .map_err(unavailable("insert_receipt_once"))?;
                let Some(holder) = holder.as_ref().and_then(|holder| holder.get_str("receipt_id").ok()) else {
                    continue;
                };
                if let Some(existing) =
                    self.receipts.find_one(doc! { "_id": holder }).await.map_err(unavailable("insert_receipt_once"))?
                {
                    return Ok(Inserted::Existing(Box::new(from_document(existing)?)));
                }
            }
            return Ok(Inserted::OverLimit(exceeded));
        }
        let inserted = self.insert_reserved_once(receipt).await;
        if !matches!(inserted, Ok(Inserted::New)) {
            // Nothing was stored: the room reserved is given back.
            self.release_within(owner, bytes).await?;
        }
        inserted
    }

    async fn unfinished_receipts(&self) -> Result<Vec<Receipt>, StoreError> {
        self.find_receipts(doc! { "status": { "$in": ["queued", "processing"] } }, doc! { "created_at": 1, "_id": 1 })
            .await
    }

    async fn delete_receipt(&self, owner: UserId, id: ReceiptId) -> Result<Option<Receipt>, StoreError> {
        let found = self
            .receipts
            .find_one_and_delete(doc! { "_id": id.to_string(), "owner_id": owner.to_string() })
            .await
            .map_err(unavailable("delete_receipt"))?;
        let Some(found) = found.map(from_document).transpose()? else { return Ok(None) };
        self.receipt_keys
            .delete_many(doc! { "receipt_id": id.to_string() })
            .await
            .map_err(unavailable("delete_receipt"))?;
        self.count_usage(owner, found.image_bytes, -1).await?;
        Ok(Some(found))
    }

    async fn save_corrections(
        &self,
        owner: UserId,
        id: ReceiptId,
        corrected: &ReceiptResult,
    ) -> Result<bool, StoreError> {
        let mut set = result_key_paths(corrected);
        set.insert("corrected", bson::to_bson(corrected).map_err(StoreError::corrupt("document"))?);
        set.insert("updated_at", Utc::now().to_rfc3339());
        let updated = self
            .receipts
            .update_one(doc! { "_id": id.to_string(), "owner_id": owner.to_string() }, doc! { "$set": set })
            .await
            .map_err(unavailable("save_corrections"))?;
        Ok(updated.matched_count == 1)
    }

    async fn receipt(&self, id: ReceiptId, owner: Option<UserId>) -> Result<Option<Receipt>, StoreError> {
        let mut filter = doc! { "_id": id.to_string() };
        if let Some(owner) = owner {
            filter.insert("owner_id", owner.to_string());
        }
        self.receipts.find_one(filter).await.map_err(unavailable("receipt"))?.map(from_document).transpose()
    }

    async fn set_status(&self, id: ReceiptId, next: ReceiptStatus, failure: Option<&str>) -> Result<bool, StoreError> {
        let allowed: Vec<&str> =
            [ReceiptStatus::Queued, ReceiptStatus::Processing, ReceiptStatus::Done, ReceiptStatus::Failed]
                .into_iter()
                .filter(|current| current.can_become(next))
                .map(|current| current.as_str())
                .collect();
        let mut set = doc! { "status": next.as_str(), "updated_at": Utc::now().to_rfc3339() };
        if let Some(reason) = failure {
            set.insert("failure", reason);
        }
        let updated = self
            .receipts
            .update_one(doc! { "_id": id.to_string(), "status": { "$in": allowed } }, doc! { "$set": set })
            .await
            .map_err(unavailable("set_status"))?;
        Ok(updated.modified_count == 1)
    }

    async fn store_result(&self, id: ReceiptId, result: &ReceiptResult) -> Result<(), StoreError> {
        let keys = result_key_paths(result);
        let result = bson::to_bson(result).map_err(StoreError::corrupt("document"))?;
        let set =
            doc! { "status": "done", "result": result, "failure": Bson::Null, "updated_at": Utc::now().to_rfc3339() };
        // Counts overwrites by redelivered jobs, for operations; the result itself stays single.
        let count = doc! { "result_writes": 1 };
        let unfinished = doc! { "_id": id.to_string(), "status": { "$in": ["queued", "processing", "done"] } };
        // The keys follow the result unless the owner's corrections take precedence.
        let mut uncorrected = unfinished.clone();
        uncorrected.insert("corrected", Bson::Null);
        let mut with_keys = set.clone();
        with_keys.extend(keys);
        let updated = self
            .receipts
            .update_one(uncorrected, doc! { "$set": with_keys, "$inc": count.clone() })
            .await
            .map_err(unavailable("store_result"))?;
        if updated.matched_count == 0 {
            self.receipts
                .update_one(unfinished, doc! { "$set": set, "$inc": count })
                .await
                .map_err(unavailable("store_result"))?;
        }
        Ok(())
    }

    async fn receipt_page(&self, owner: UserId, query: &ReceiptQuery) -> Result<Vec<Receipt>, StoreError> {
        let fields: Vec<&str> = query.sort.keys().iter().copied().map(field).collect();
        let mut filter = filter_document(owner, &query.filter);
        if let Some(after) = &query.after {
            let bounds: Vec<Bson> = after.bounds(query.sort).into_iter().map(bson_value).collect();
            filter = doc! { "$and": [filter, after_document(&fields, &bounds)] };
        }
        let sort: Document = fields.iter().map(|field| (field.to_string(), Bson::Int32(1))).collect();
        all("receipt_page", self.receipts.find(filter).sort(sort).limit(i64::from(query.limit)), from_document).await
    }

    async fn count_receipts(&self, owner: UserId, filter: &ReceiptFilter) -> Result<u64, StoreError> {
        self.receipts.count_documents(filter_document(owner, filter)).await.map_err(unavailable("count_receipts"))
    }

    async fn usage(&self, owner: UserId) -> Result<Usage, StoreError> {
        self.usage_of(&owner.to_string()).await
    }

    async fn instance_usage(&self) -> Result<Usage, StoreError> {
        self.usage_of(INSTANCE_USAGE_KEY).await
    }

    async fn spend_aggregates(
        &self,
        owner: UserId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<SpendAggregates, StoreError> {
        let number = |document: &Document, name: &str| {
            document.get(name).and_then(|value| value.as_i64().or_else(|| value.as_i32().map(i64::from))).unwrap_or(0)
        };
        let text = |value: Option<&Bson>| value.and_then(Bson::as_str).map(str::to_owned);
        let spent = doc! { "owner_id": owner.to_string(), "q.date": { "$ne": Bson::Null }, "q.total_units": { "$ne": Bson::Null } };
        let counts: Vec<(Option<Currency>, usize)> = self
            .aggregate_all(vec![
                doc! { "$match": spent.clone() },
                doc! { "$group": { "_id": "$q.currency", "n": { "$sum": 1 } } },
            ])
            .await?
            .iter()
            .map(|group| {
                (text(group.get("_id")).and_then(|code| code.parse().ok()), number(group, "n").max(0) as usize)
            })
            .collect();
        let currency = main_currency(&counts);
        let code = currency.map(|currency| currency.to_string());
        let same_money = doc! { "$or": [{ "q.currency": Bson::Null }, { "q.currency": code.clone() }] };
        let dates = doc! { "$gte": from.to_string(), "$lte": to.to_string() };
        let in_range = doc! { "$and": [spent.clone(), { "q.date": dates.clone() }, same_money.clone()] };
        let mut aggregates = SpendAggregates { currency, ..Default::default() };

        let groups = self
            .aggregate_all(vec![
                doc! { "$match": in_range.clone() },
                doc! { "$group": {
                    "_id": { "m": "$q.month", "c": "$q.category", "k": "$q.merchant_key" },
                    "units": { "$sum": "$q.total_units" }, "n": { "$sum": 1 },
                } },
            ])
            .await?;
        let mut sums = GroupSums::default();
        for group in &groups {
            let key = group.get_document("_id").map_err(StoreError::corrupt("document"))?;
            let (category, merchant) = (text(key.get("c")), text(key.get("k")));
            let units = number(group, "units");
            let count = number(group, "n").max(0) as usize;
            sums.add(text(key.get("m")).unwrap_or_default(), category.as_deref(), merchant.as_deref(), units, count);
        }
        let [by_month, by_category, by_merchant] = sums.into_spends();
        (aggregates.by_month, aggregates.by_category, aggregates.by_merchant) = (by_month, by_category, by_merchant);
        let other = doc! { "$and": [spent.clone(), { "q.date": dates }, { "$nor": [same_money.clone()] }] };
        aggregates.other_currency_receipts =
            self.receipts.count_documents(other).await.map_err(unavailable("spend_aggregates"))? as usize;
        let mut named = in_range.clone();
        named.insert("q.merchant_key", doc! { "$ne": Bson::Null });
        // Repeated keys are found by counting, and their receipts read by key: `$push` is not an
        // accumulator every MongoDB-wire server has (FerretDB has `$sum` and `$count` only).
        const SAME_IMAGE: &[(&str, &str)] = &[("i", "image_sha256")];
        const SAME_SALE: &[(&str, &str)] = &[("k", "q.merchant_key"), ("d", "q.date"), ("t", "q.total_units")];
        for (matching, fields, target) in
            [(in_range.clone(), SAME_IMAGE, &mut aggregates.same_image), (named, SAME_SALE, &mut aggregates.same_sale)]
        {
            let key: Document =
                fields.iter().map(|(alias, path)| (alias.to_string(), Bson::from(format!("${path}")))).collect();
            let groups = self
                .aggregate_all(vec![
                    doc! { "$match": matching.clone() },
                    doc! { "$group": { "_id": key, "n": { "$sum": 1 } } },
                    doc! { "$match": { "n": { "$gt": 1 } } },
                ])
                .await?;
            for group in groups {
                let values = group.get_document("_id").map_err(StoreError::corrupt("document"))?;
                let mut members = matching.clone();
                for (alias, path) in fields {
                    members.insert(*path, values.get(*alias).cloned().unwrap_or(Bson::Null));
                }
                let members: Vec<Document> =
                    documents("spend_aggregates", self.receipts.find(members).projection(doc! { "_id": 1 })).await?;
                let ids: Result<Vec<ReceiptId>, StoreError> = members
                    .iter()
                    .map(|member| {
                        member
                            .get_str("_id")
                            .ok()
                            .and_then(|id| id.parse().ok())
                            .ok_or_else(|| StoreError::corrupt("receipt id")(format!("{member} is not one")))
                    })
                    .collect();
                target.push(ids?);
            }
        }
        let recent: Vec<Document> = documents(
            "spend_aggregates",
            self.receipts
                .find(doc! { "$and": [spent, same_money] })
                .sort(doc! { "q.sort_purchased": 1, "q.recency": 1, "_id": 1 })
                .limit(MEDIAN_WINDOW as i64)
                .projection(doc! { "q.total_units": 1 }),
        )
        .await?;
        aggregates.median = median_of_recent(
            recent
                .iter()
                .filter_map(|document| document.get_document("q").ok().map(|q| number(q, "total_units")))
                .collect(),
        );
        if let Some(threshold) = aggregates.median.and_then(unusual_threshold) {
            let mut above = in_range;
            above.insert("q.total_units", doc! { "$gt": threshold.to_units() });
            let found: Vec<Document> =
                documents("spend_aggregates", self.receipts.find(above).projection(doc! { "q.total_units": 1 }))
                    .await?;
            for document in found {
                let id = document.get_str("_id").ok().and_then(|id| id.parse().ok());
                let units = document.get_document("q").ok().map(|q| number(q, "total_units"));
                if let (Some(id), Some(units)) = (id, units) {
                    aggregates.unusual.push((id, Amount::from_units(units)));
                }
            }
        }
        Ok(aggregates.normalized())
    }
}

impl BlobStore for MongoStore {
    async fn put_blob(&self, key: &BlobKey, bytes: &[u8]) -> Result<(), StoreError> {
        if let Some(existing) = self.blob_id(key).await? {
            self.images.delete(existing).await.map_err(unavailable("put_blob"))?;
        }
        let mut upload = self.images.open_upload_stream(key.as_str()).await.map_err(unavailable("put_blob"))?;
        upload.write_all(bytes).await.map_err(unavailable("put_blob"))?;
        upload.close().await.map_err(unavailable("put_blob"))?;
        Ok(())
    }

    async fn blob(&self, key: &BlobKey) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(id) = self.blob_id(key).await? else { return Ok(None) };
        let mut download = self.images.open_download_stream(id).await.map_err(unavailable("blob"))?;
        let mut bytes = Vec::new();
        download.read_to_end(&mut bytes).await.map_err(unavailable("blob"))?;
        Ok(Some(bytes))
    }

    async fn delete_blob(&self, key: &BlobKey) -> Result<(), StoreError> {
        if let Some(id) = self.blob_id(key).await? {
            self.images.delete(id).await.map_err(unavailable("delete_blob"))?;
        }
        Ok(())
    }
}
