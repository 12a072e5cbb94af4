//! Identifiers as newtypes, so a receipt id can never be passed where a user id is expected.
//!
//! Ids are UUIDs (version 7 when generated here, so they sort by creation time) and travel as their
//! canonical hyphenated lower-case string. Blob keys are opaque strings chosen by the store.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        #[cfg(feature = "utoipa")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                        utoipa::openapi::schema::KnownFormat::Uuid,
                    )))
                    .into()
            }
        }

        #[cfg(feature = "utoipa")]
        impl utoipa::ToSchema for $name {}

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(text)
                    .map(Self)
                    .map_err(|_| IdError { kind: stringify!($name), text: text.chars().take(64).collect() })
            }
        }
    };
}

uuid_id!(
    /// Identifies a receipt (and its OCR result, which is keyed by the receipt).
    ReceiptId
);
uuid_id!(
    /// Identifies a user account.
    UserId
);
uuid_id!(
    /// Identifies one OCR job; enqueueing the same job id twice is a no-op.
    JobId
);

/// A string that is not a valid id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {text:?} is not a UUID")]
pub struct IdError {
    kind: &'static str,
    text: String,
}

/// Where a receipt's image is kept in the blob store; opaque to everyone but the store.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BlobKey(String);

impl BlobKey {
    /// The blob key for a receipt's original image: `receipts/{receipt_id}`.
    pub fn for_receipt(receipt: ReceiptId) -> Self {
        Self(format!("receipts/{receipt}"))
    }

    /// Wraps a key produced by a store.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key of the preview a PDF's review page shows (its pages rendered to one PNG), beside
    /// the original: `<key>.preview.png`.
    pub fn preview(&self) -> Self {
        Self(format!("{}.preview.png", self.0))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = ReceiptId::new();
        let parsed: ReceiptId = id.to_string().parse().expect("parses");
        assert_eq!(id, parsed);
    }

    #[test]
    fn invalid_id_names_its_kind() {
        let error = "not-a-uuid".parse::<UserId>().expect_err("rejected");
        assert_eq!(error.to_string(), "invalid UserId: \"not-a-uuid\" is not a UUID");
    }

    #[test]
    fn generated_ids_sort_by_creation() {
        let first = JobId::new();
        let second = JobId::new();
        assert!(first < second);
    }

    #[test]
    fn receipt_blob_key_is_stable() {
        let id: ReceiptId = "01890a5d-ac96-774b-bcce-b302099a8057".parse().expect("parses");
        assert_eq!(BlobKey::for_receipt(id).as_str(), "receipts/01890a5d-ac96-774b-bcce-b302099a8057");
    }
}
