//! Scoring extraction against labels: SROIE's (`{"company","date","address","total"}`) and the
//! US photo set's (the same fields plus `currency`).
//!
//! Each labelled field is scored two ways:
//! - **by value**: company and address equal after removing case, spaces and punctuation; the
//!   date the same calendar day; the total the same amount;
//! - **by string**, as the official SROIE metric does: the text the receipt printed (the merchant
//!   and address as extracted, the date and total as printed on the receipt) equals the label's
//!   own string, with whitespace collapsed and nothing else forgiven.
//!
//! Over all receipts, micro precision, recall and F1 count a right prediction as a true positive,
//! a wrong one as a false positive and a false negative, and a missing one as a false negative.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::amount::parse_amount;
use crate::date::dates_in;
use crate::text::squash;
use finagent_core::receipt::ReceiptResult;

/// A label: SROIE's four fields, and the US set's currency.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Label {
    /// Merchant name.
    pub company: Option<String>,
    /// Date as printed (SROIE) or ISO 8601 (US set).
    pub date: Option<String>,
    /// Address as printed.
    pub address: Option<String>,
    /// Total as printed.
    pub total: Option<String>,
    /// ISO 4217 currency, when labelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// ISO 3166-1 country of the receipt, when labelled (the generated corpus), for per-country
    /// figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// The four fields of the micro F1.
pub const FIELDS: [&str; 4] = ["company", "address", "date", "total"];

/// How a prediction is compared with its label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matching {
    /// Same value: names without case, spaces or punctuation, same day, same amount.
    Value,
    /// Same string as the label, whitespace collapsed.
    String,
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Per-field outcome of one receipt: `Some(true)` right, `Some(false)` wrong, `None` not
/// predicted. `currency` is included when the label has one.
pub fn score(result: &ReceiptResult, label: &Label, matching: Matching) -> BTreeMap<&'static str, Option<bool>> {
    let text_equal = |predicted: &Option<String>, expected: &Option<String>| {
        predicted.as_ref().map(|p| {
            expected.as_ref().is_some_and(|e| match matching {
                Matching::Value => !squash(e).is_empty() && squash(p) == squash(e),
                Matching::String => collapse(p) == collapse(e),
            })
        })
    };
    let debug = result.debug.as_ref();
    let date = match matching {
        Matching::Value => result.fields.date.map(|predicted| {
            label
                .date
                .as_ref()
                .is_some_and(|expected| dates_in(expected, false).iter().any(|found| found.date == predicted))
        }),
        Matching::String => {
            result.fields.date.map(|_| text_equal(&debug.and_then(|d| d.date_text.clone()), &label.date) == Some(true))
        }
    };
    let total = match matching {
        Matching::Value => result.fields.total.map(|predicted| {
            label
                .total
                .as_ref()
                .and_then(|expected| parse_amount(expected))
                .is_some_and(|expected| expected.value() == predicted.value())
        }),
        Matching::String => result
            .fields
            .total
            .map(|_| text_equal(&debug.and_then(|d| d.total_text.clone()), &label.total) == Some(true)),
    };
    let mut outcomes = BTreeMap::from([
        ("company", text_equal(&result.fields.merchant.name, &label.company)),
        ("address", text_equal(&result.fields.merchant.address, &label.address)),
        ("date", date),
        ("total", total),
    ]);
    if let Some(expected) = &label.currency {
        outcomes.insert("currency", result.fields.currency.map(|c| c.to_string().eq_ignore_ascii_case(expected)));
    }
    outcomes
}

/// Counts over many receipts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scoreboard {
    /// Receipts scored.
    pub receipts: usize,
    /// Per field: (right, wrong, missing, labelled).
    pub fields: BTreeMap<&'static str, FieldCounts>,
    /// How predictions are compared (by value when unset).
    pub matching: Option<Matching>,
    /// How often each labelled currency occurs, for the majority-class baseline.
    pub currency_labels: BTreeMap<String, usize>,
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
    /// Right predictions whose merchant came from the gazetteer.
    pub right_from_gazetteer: usize,
}

impl Scoreboard {
    /// A scoreboard comparing by `matching`.
    pub fn new(matching: Matching) -> Self {
        Self { matching: Some(matching), ..Self::default() }
    }

    /// Adds one receipt.
    pub fn add(&mut self, result: &ReceiptResult, label: &Label) {
        self.receipts += 1;
        let labelled = [
            ("company", label.company.is_some()),
            ("address", label.address.is_some()),
            ("date", label.date.is_some()),
            ("total", label.total.is_some()),
            ("currency", label.currency.is_some()),
        ];
        if let Some(currency) = &label.currency {
            *self.currency_labels.entry(currency.to_uppercase()).or_default() += 1;
        }
        let outcomes = score(result, label, self.matching.unwrap_or(Matching::Value));
        let from_gazetteer =
            result.debug.as_ref().and_then(|d| d.merchant_source.as_deref()).is_some_and(|s| s == "gazetteer");
        for (field, has_label) in labelled {
            if field == "currency" && !has_label {
                continue;
            }
            let counts = self.fields.entry(field).or_default();
            counts.labelled += usize::from(has_label);
            match outcomes.get(field).copied().flatten() {
                Some(true) => {
                    counts.right += 1;
                    if from_gazetteer && (field == "company" || field == "address") {
                        counts.right_from_gazetteer += 1;
                    }
                }
                Some(false) => counts.wrong += 1,
                None if has_label => counts.missing += 1,
                None => {}
            }
        }
    }

    /// Share of the right company and address predictions that the gazetteer supplied, in percent.
    pub fn gazetteer_share(&self) -> f64 {
        let field = |name: &str| self.fields.get(name).copied().unwrap_or_default();
        let (company, address) = (field("company"), field("address"));
        percent(company.right_from_gazetteer + address.right_from_gazetteer, company.right + address.right)
    }

    /// Share of labelled receipts where the field is right, in percent.
    pub fn accuracy(&self, field: &str) -> f64 {
        self.fields.get(field).map_or(0.0, |c| percent(c.right, c.labelled))
    }

    /// The currency accuracy of always answering the most common labelled currency, in percent:
    /// the floor any currency reading must beat to mean something.
    pub fn currency_baseline(&self) -> f64 {
        let labelled: usize = self.currency_labels.values().sum();
        percent(self.currency_labels.values().copied().max().unwrap_or(0), labelled)
    }

    /// Micro precision, recall and F1 over the four [`FIELDS`], in percent.
    pub fn micro(&self) -> (f64, f64, f64) {
        let counted = || FIELDS.iter().filter_map(|field| self.fields.get(field));
        let right: usize = counted().map(|c| c.right).sum();
        let predicted: usize = counted().map(|c| c.right + c.wrong).sum();
        let labelled: usize = counted().map(|c| c.labelled).sum();
        let precision = percent(right, predicted);
        let recall = percent(right, labelled);
        let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
        (precision, recall, f1)
    }
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 { 0.0 } else { 100.0 * part as f64 / whole as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use finagent_core::receipt::{ExtractionDebug, Merchant, ReceiptFields};

    fn result(name: &str, date: &str, total: &str, printed_date: &str, printed_total: &str) -> ReceiptResult {
        ReceiptResult {
            fields: ReceiptFields {
                merchant: Merchant { name: Some(name.to_owned()), address: None },
                date: date.parse().ok(),
                total: total.parse().ok(),
                currency: "MYR".parse().ok(),
                ..ReceiptFields::default()
            },
            debug: Some(ExtractionDebug {
                date_text: Some(printed_date.to_owned()),
                total_text: Some(printed_total.to_owned()),
                ..ExtractionDebug::default()
            }),
            ..ReceiptResult::default()
        }
    }

    fn label(company: &str, date: &str, total: &str) -> Label {
        Label {
            company: Some(company.to_owned()),
            date: Some(date.to_owned()),
            address: Some("NO. 1, JALAN SATU".to_owned()),
            total: Some(total.to_owned()),
            currency: None,
            country: None,
        }
    }

    #[test]
    fn by_value_forgives_case_spacing_and_format_by_string_does_not() {
        let predicted = result("Book Ta.K SDN BHD", "2018-12-25", "9.00", "25/12/2018", "RM9.00");
        let expected = label("BOOK TA .K SDN BHD", "25/12/2018", "9.00");
        let by_value = score(&predicted, &expected, Matching::Value);
        assert_eq!(by_value["company"], Some(true));
        assert_eq!(by_value["date"], Some(true));
        assert_eq!(by_value["total"], Some(true));
        assert_eq!(by_value["address"], None);
        let by_string = score(&predicted, &expected, Matching::String);
        assert_eq!(by_string["company"], Some(false));
        assert_eq!(by_string["date"], Some(true));
        assert_eq!(by_string["total"], Some(false), "the printed RM9.00 is not the label's 9.00");
    }

    #[test]
    fn wrong_values_are_wrong_and_absent_ones_missing() {
        let predicted = result("OTHER SHOP", "2018-12-24", "19.00", "24/12/2018", "19.00");
        let outcomes = score(&predicted, &label("BOOK TA .K SDN BHD", "25/12/2018", "9.00"), Matching::Value);
        assert_eq!(outcomes["company"], Some(false));
        assert_eq!(outcomes["date"], Some(false));
        assert_eq!(outcomes["total"], Some(false));
        // An empty label never matches, even an empty prediction.
        let empty = score(&result("", "2018-12-25", "9.00", "", ""), &label("", "25/12/2018", "9.00"), Matching::Value);
        assert_eq!(empty["company"], Some(false));
    }

    #[test]
    fn micro_f1_counts_wrong_as_false_positive_and_false_negative() {
        let mut board = Scoreboard::new(Matching::Value);
        // Receipt 1: company, date, total right; address missing.
        board.add(&result("A SHOP", "2018-12-25", "9.00", "", ""), &label("A SHOP", "25/12/2018", "9.00"));
        // Receipt 2: company wrong, date wrong, total right; address missing.
        board.add(&result("B SHOP", "2018-12-24", "5.00", "", ""), &label("C SHOP", "25/12/2018", "5.00"));
        assert_eq!(board.receipts, 2);
        assert_eq!(board.accuracy("total"), 100.0);
        assert_eq!(board.accuracy("company"), 50.0);
        assert_eq!(board.accuracy("address"), 0.0);
        // 4 right of 6 predicted (precision 66.7) and of 8 labelled (recall 50.0): F1 57.1.
        let (precision, recall, f1) = board.micro();
        assert!((precision - 400.0 / 6.0).abs() < 1e-9, "{precision}");
        assert!((recall - 50.0).abs() < 1e-9, "{recall}");
        assert!((f1 - 2.0 * precision * recall / (precision + recall)).abs() < 1e-9);
        assert!((f1 - 57.142857).abs() < 1e-4, "{f1}");
    }

    #[test]
    fn the_currency_baseline_is_the_majority_label() {
        let mut board = Scoreboard::new(Matching::Value);
        for currency in ["USD", "USD", "USD", "INR"] {
            let mut labelled = label("A", "25/12/2018", "1.00");
            labelled.currency = Some(currency.to_owned());
            board.add(&result("A", "2018-12-25", "1.00", "", ""), &labelled);
        }
        assert_eq!(board.currency_baseline(), 75.0);
        // Every prediction said MYR: none right.
        assert_eq!(board.accuracy("currency"), 0.0);
    }

    #[test]
    fn the_gazetteer_share_counts_right_names_it_supplied() {
        let mut board = Scoreboard::new(Matching::Value);
        let mut from_gazetteer = result("A SHOP", "2018-12-25", "9.00", "", "");
        if let Some(debug) = from_gazetteer.debug.as_mut() {
            debug.merchant_source = Some("gazetteer".to_owned());
        }
        board.add(&from_gazetteer, &label("A SHOP", "25/12/2018", "9.00"));
        board.add(&result("B SHOP", "2018-12-25", "9.00", "", ""), &label("B SHOP", "25/12/2018", "9.00"));
        assert_eq!(board.gazetteer_share(), 50.0);
    }
}
