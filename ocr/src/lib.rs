//! FinancialAgent's OCR engine as a library.
//!
//! - [`preprocess`]: from a decoded photo or scan to the bitmap Tesseract reads (paper crop,
//!   deskew, scale to the text size, Sauvola binarisation of unevenly lit photos);
//! - [`engine`]: one Tesseract instance (through `leptess`) with orientation detection and the
//!   per-receipt language pass;
//! - [`pdf`]: PDF receipts — the text layer when there is one, otherwise pages rendered by Poppler
//!   and read by OCR;
//! - [`ppocr`]: PaddleOCR's PP-OCRv4 networks through ONNX Runtime, the reader for phone photos;
//! - [`sandbox`]: the limits, cleared environment and Landlock confinement Poppler runs under;
//! - [`pool`]: a fixed pool of OCR threads, each owning its engines, with a per-image time limit;
//! - [`consumer`]: the job consumer that takes jobs from the queue and stores results.
//!
//! Extraction itself is `finagent-extract`, pure and free of IO; the `ocr-worker` binary and the
//! API's all-in-one mode both build on this crate.

pub mod consumer;
pub mod engine;
pub mod pdf;
pub mod pool;
pub mod ppocr;
pub mod preprocess;
pub mod reading;
pub mod sandbox;
