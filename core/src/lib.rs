//! FinancialAgent's pure domain.
//!
//! Everything the services and the operator must agree on lives here, free of IO and of any async
//! runtime: the receipt model ([`receipt`]), money and currency ([`money`]), identifiers ([`ids`]),
//! the versioned OCR job protocol ([`job`]) and the names shared between the operator and the
//! services ([`names`]). Wire formats are locked by golden JSON tests in `tests/golden.rs`.

pub mod account;
pub mod correction;
pub mod ids;
pub mod insights;
pub mod job;
pub mod money;
pub mod names;
pub mod receipt;
pub mod webhook;

pub use ids::{BlobKey, JobId, ReceiptId, UserId};
pub use money::{Amount, Currency};
