//! A user's corrections to a receipt's fields ([`crate::receipt::ReceiptFields`]): which fields
//! they set, and how a corrected result is made from the read one.

use chrono::NaiveDate;
use serde::Deserialize;

use crate::money::{Amount, Currency};
use crate::receipt::{Category, PaymentMethod, ReceiptResult};

/// Fields corrected by hand; absent fields are left as they are.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    pub merchant_name: Option<String>,
    pub merchant_address: Option<String>,
    /// Date of purchase.
    pub date: Option<NaiveDate>,
    /// ISO 4217 currency.
    pub currency: Option<Currency>,
    pub subtotal: Option<Amount>,
    pub tax: Option<Amount>,
    pub tip: Option<Amount>,
    /// Total paid.
    pub total: Option<Amount>,
    /// How it was paid.
    pub payment_method: Option<PaymentMethod>,
    /// Spending category.
    pub category: Option<Category>,
}

/// A corrected text that is empty, too long or holds control characters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: 1 to {MAX_TEXT_CHARS} printable characters")]
pub struct CorrectionError {
    /// The field (`merchant_name` or `merchant_address`).
    pub field: &'static str,
}

/// The longest corrected name or address.
pub const MAX_TEXT_CHARS: usize = 200;

fn text(field: &'static str, value: Option<String>) -> Result<Option<String>, CorrectionError> {
    match value.map(|value| value.trim().to_owned()) {
        Some(value)
            if value.is_empty() || value.chars().count() > MAX_TEXT_CHARS || value.chars().any(char::is_control) =>
        {
            Err(CorrectionError { field })
        }
        other => Ok(other),
    }
}

impl Correction {
    /// Sets the corrected fields of `result`, each with confidence 1; the others stay as read.
    /// Nothing changes when a text is invalid.
    pub fn apply(self, result: &mut ReceiptResult) -> Result<(), CorrectionError> {
        let name = text("merchant_name", self.merchant_name)?;
        let address = text("merchant_address", self.merchant_address)?;
        let (fields, confidence) = (&mut result.fields, &mut result.confidence);
        let sure = Some(1.0);
        if let Some(name) = name {
            (fields.merchant.name, confidence.merchant_name) = (Some(name), sure);
        }
        if let Some(address) = address {
            (fields.merchant.address, confidence.merchant_address) = (Some(address), sure);
        }
        if let Some(date) = self.date {
            (fields.date, confidence.date) = (Some(date), sure);
        }
        if let Some(currency) = self.currency {
            (fields.currency, confidence.currency) = (Some(currency), sure);
        }
        for (value, field, confidence) in [
            (self.subtotal, &mut fields.subtotal, &mut confidence.subtotal),
            (self.tax, &mut fields.tax, &mut confidence.tax),
            (self.tip, &mut fields.tip, &mut confidence.tip),
            (self.total, &mut fields.total, &mut confidence.total),
        ] {
            if let Some(value) = value {
                (*field, *confidence) = (Some(value), sure);
            }
        }
        if let Some(method) = self.payment_method {
            (fields.payment_method, confidence.payment_method) = (Some(method), sure);
        }
        if let Some(category) = self.category {
            (fields.category, confidence.category) = (Some(category), sure);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{FieldConfidence, Merchant, ReceiptFields};

    fn read() -> ReceiptResult {
        ReceiptResult {
            fields: ReceiptFields {
                merchant: Merchant { name: Some("SU5HI MAN".into()), address: Some("2710 Colby Ave".into()) },
                total: "24.55".parse().ok(),
                tax: "1.55".parse().ok(),
                ..ReceiptFields::default()
            },
            confidence: FieldConfidence {
                merchant_name: Some(0.4),
                total: Some(0.9),
                tax: Some(0.8),
                ..Default::default()
            },
            ..ReceiptResult::default()
        }
    }

    #[test]
    fn corrected_fields_are_sure_and_the_others_stay_as_read() {
        let mut result = read();
        let correction: Correction =
            serde_json::from_str(r#"{"merchant_name": "  Sushi Man ", "total": "25.55", "category": "dining"}"#)
                .expect("correction");
        correction.apply(&mut result).expect("valid");
        assert_eq!(result.fields.merchant.name.as_deref(), Some("Sushi Man"));
        assert_eq!(result.confidence.merchant_name, Some(1.0));
        assert_eq!(result.fields.total, "25.55".parse().ok());
        assert_eq!(result.confidence.total, Some(1.0));
        assert_eq!(result.fields.category, Some(Category::Dining));
        assert_eq!(result.confidence.category, Some(1.0));
        // Untouched: as read, with the reader's confidence.
        assert_eq!(result.fields.merchant.address.as_deref(), Some("2710 Colby Ave"));
        assert_eq!(result.fields.tax, "1.55".parse().ok());
        assert_eq!(result.confidence.tax, Some(0.8));
        assert_eq!(result.fields.date, None);
    }

    #[test]
    fn an_invalid_text_changes_nothing_and_names_its_field() {
        for (body, field) in [
            (r#"{"total": "1.00", "merchant_address": "   "}"#, "merchant_address"),
            (r#"{"merchant_name": "a\u0007b"}"#, "merchant_name"),
        ] {
            let mut result = read();
            let correction: Correction = serde_json::from_str(body).expect("correction");
            assert_eq!(correction.apply(&mut result), Err(CorrectionError { field }));
            assert_eq!(result, read(), "{body}");
        }
        let long = Correction { merchant_name: Some("x".repeat(MAX_TEXT_CHARS + 1)), ..Correction::default() };
        assert_eq!(
            long.apply(&mut read()).expect_err("too long").to_string(),
            "merchant_name: 1 to 200 printable characters"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<Correction>(r#"{"totl": "1.00"}"#).is_err());
    }
}
