//! Scoring extraction against SROIE-style labels (`{"company","date","address","total"}`).
//!
//! Per receipt and field, a prediction is right when it equals the label: company and address
//! after upper-casing and collapsing whitespace, the date as the same calendar day, the total as
//! the same amount. Over all receipts, micro precision, recall and F1 count a right prediction as
//! a true positive, a wrong one as a false positive and a false negative, and a missing one as a
//! false negative.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::extract::amount::parse_amount;
use crate::extract::date::dates_in;
use crate::extract::text::normalize;
use crate::receipt::ReceiptResult;

/// A SROIE-style label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Label {
    /// Merchant name.
    pub company: Option<String>,
    /// Date as printed.
    pub date: Option<String>,
    /// Address as printed.
    pub address: Option<String>,
    /// Total as printed.
    pub total: Option<String>,
}

/// The four scored fields.
pub const FIELDS: [&str; 4] = ["company", "address", "date", "total"];

/// Per-field outcome of one receipt: `Some(true)` right, `Some(false)` wrong, `None` not predicted.
pub fn score(result: &ReceiptResult, label: &Label) -> BTreeMap<&'static str, Option<bool>> {
    let text_equal = |predicted: &Option<String>, expected: &Option<String>| {
        predicted.as_ref().map(|p| expected.as_ref().is_some_and(|e| normalize(p) == normalize(e)))
    };
    let date = result.date.map(|predicted| {
        label
            .date
            .as_ref()
            .is_some_and(|expected| dates_in(expected, false).iter().any(|found| found.date == predicted))
    });
    let total = result.total.map(|predicted| {
        label
            .total
            .as_ref()
            .and_then(|expected| parse_amount(expected))
            .is_some_and(|expected| expected.value() == predicted.value())
    });
    BTreeMap::from([
        ("company", text_equal(&result.merchant.name, &label.company)),
        ("address", text_equal(&result.merchant.address, &label.address)),
        ("date", date),
        ("total", total),
    ])
}

/// Counts over many receipts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scoreboard {
    /// Receipts scored.
    pub receipts: usize,
    /// Per field: (right, wrong, missing, labelled).
    pub fields: BTreeMap<&'static str, FieldCounts>,
}

/// Counts for one field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FieldCounts {
    /// Right predictions.
    pub right: usize,
    /// Wrong predictions.
    pub wrong: usize,
    /// Receipts with a label but no prediction.
    pub missing: usize,
    /// Receipts with a label for this field.
    pub labelled: usize,
}

impl Scoreboard {
    /// Adds one receipt.
    pub fn add(&mut self, result: &ReceiptResult, label: &Label) {
        self.receipts += 1;
        let labelled = [
            ("company", label.company.is_some()),
            ("address", label.address.is_some()),
            ("date", label.date.is_some()),
            ("total", label.total.is_some()),
        ];
        let outcomes = score(result, label);
        for (field, has_label) in labelled {
            let counts = self.fields.entry(field).or_default();
            counts.labelled += usize::from(has_label);
            match outcomes.get(field).copied().flatten() {
                Some(true) => counts.right += 1,
                Some(false) => counts.wrong += 1,
                None if has_label => counts.missing += 1,
                None => {}
            }
        }
    }

    /// Share of labelled receipts where the field is right, in percent.
    pub fn accuracy(&self, field: &str) -> f64 {
        self.fields.get(field).map_or(0.0, |c| percent(c.right, c.labelled))
    }

    /// Micro precision, recall and F1 over the four fields, in percent.
    pub fn micro(&self) -> (f64, f64, f64) {
        let right: usize = self.fields.values().map(|c| c.right).sum();
        let predicted: usize = self.fields.values().map(|c| c.right + c.wrong).sum();
        let labelled: usize = self.fields.values().map(|c| c.labelled).sum();
        let precision = percent(right, predicted);
        let recall = percent(right, labelled);
        let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
        (precision, recall, f1)
    }
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 { 0.0 } else { 100.0 * part as f64 / whole as f64 }
}
