//! The one error of untrusted receipt input, image or PDF: each case says what is wrong with the
//! file, in words a user can act on.

/// Why an image cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// Zero bytes.
    #[error("the file is empty")]
    Empty,
    /// Larger than the byte limit.
    #[error("the file is {size} bytes, above the limit of {limit} bytes")]
    TooManyBytes { size: usize, limit: usize },
    /// Not an accepted image format.
    #[error("not a supported receipt file: expected a PDF or a JPEG, PNG, WebP, TIFF, BMP or GIF image")]
    UnsupportedFormat,
    /// A PDF that cannot be read (damaged, encrypted, or without pages).
    #[error("failed to read the PDF: {0}")]
    Pdf(String),
    /// A PDF beyond the limits (pages, objects, decompressed size): possibly a PDF bomb.
    #[error("the PDF is refused: {0}")]
    PdfLimit(String),
    /// The header could not be read.
    #[error("failed to read the {0} header: the file is truncated or corrupt")]
    BadHeader(&'static str),
    /// Too large to process.
    #[error("the image is {width}×{height} pixels, above the limit of {max_side} pixels a side or {max_pixels} pixels")]
    TooLarge { width: u32, height: u32, max_side: u32, max_pixels: u64 },
    /// Too small to hold a receipt.
    #[error("the image is {width}×{height} pixels, too small to read (at least {min_side} pixels a side)")]
    TooSmall { width: u32, height: u32, min_side: u32 },
    /// The pixel data could not be decoded.
    #[error("failed to decode the {format} image: {reason}")]
    Decode { format: &'static str, reason: String },
}
