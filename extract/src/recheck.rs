//! Which OCR lines deserve a second, closer look.
//!
//! The fields users care most about — date and total — hang on a few short lines, and a single
//! misread digit ruins them. When the date is missing, or the total is not confirmed by the cash
//! and change lines, the engine re-reads just those lines, enlarged, as single text lines, and
//! keeps a re-read that Tesseract is more confident of. This picks the lines; it is pure.

use std::sync::LazyLock;

use regex::Regex;

use crate::Extraction;
use crate::layout::Page;

/// At most this many lines are re-read per receipt, bounding the extra cost.
pub const MAX_LINES: usize = 8;

/// A total at or above this confidence was confirmed (by cash minus change) and is not re-read.
const CONFIRMED_TOTAL: f64 = 0.96;

static DATE_LIKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)DATE|TARIKH|\d{1,2}\s?[/\-.]\s?\d{1,2}\s?[/\-.]\s?\d{2,4}|\d{1,2}\s?[/\-]\s?[A-Z]{3}")
        .unwrap_or_else(|error| panic!("invalid pattern: {error}"))
});
static TOTAL_LIKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)T[O0]T[A4]|CASH|CHANGE|ROUND|AMOUNT|DUE|NETT|PAYABLE|TENDER")
        .unwrap_or_else(|error| panic!("invalid pattern: {error}"))
});

/// Indices into `page.lines` to re-read, most useful first.
pub fn lines_to_recheck(page: &Page, extraction: &Extraction) -> Vec<usize> {
    let mut picked = Vec::new();
    if extraction.fields.date.is_none() {
        picked.extend(
            page.lines.iter().enumerate().filter(|(_, line)| DATE_LIKE.is_match(&line.text)).map(|(i, _)| i).take(3),
        );
    }
    let confirmed = extraction.confidence.total.is_some_and(|confidence| confidence >= CONFIRMED_TOTAL);
    if !confirmed {
        picked.extend(
            page.lines
                .iter()
                .enumerate()
                .filter(|(_, line)| TOTAL_LIKE.is_match(&line.text) && line.text.chars().any(|c| c.is_ascii_digit()))
                .map(|(i, _)| i)
                .take(MAX_LINES),
        );
    }
    picked.dedup();
    picked.truncate(MAX_LINES);
    picked
}
