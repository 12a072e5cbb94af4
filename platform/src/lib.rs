//! FinancialAgent's shared IO adapters, used by every binary and never copied between them.
//!
//! - [`telemetry`]: tracing set-up (`RUST_LOG`, `--log-format plain|json`), done once per process;
//! - [`metrics`]: the one Prometheus registry of a process;
//! - [`admin`]: the admin router serving `/metrics`, `/healthz` and `/readyz`;
//! - [`image_input`]: untrusted image bytes checked from magic bytes and header, then decoded;
//! - [`pdf_input`]: untrusted PDF bytes checked against page, object and size limits;
//! - [`input_error`]: why an uploaded file cannot be read, for images and PDFs alike;
//! - [`store`]: the receipt and account stores, SQLite embedded or MongoDB;
//! - [`shutdown`]: the signal that stops a process's servers and workers together;
//! - [`queue`]: the OCR job queue, on Redis Streams or in process;
//! - [`testkit`] (feature `testkit`): the servers that the test harness started for this run.

pub mod admin;
pub mod image_input;
pub mod input_error;
pub mod metrics;
pub mod pdf_input;
pub mod queue;
pub mod shutdown;
pub mod store;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
