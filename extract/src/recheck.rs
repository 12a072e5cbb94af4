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

/// At most this many lines are re-read per receipt, bounding the extra cost. Each costs about
/// 13 ms; on the SROIE scans, re-reading at most 0, 1, 2, 3, 4 or 8 lines read 98, 99, 101, 103,
/// 103 and 102 totals right (and the generated corpus the same at 4 as at 8), so four lines keep
/// what the re-read gives at half its cost (see the README's "OCR throughput").
pub const MAX_LINES: usize = 4;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn picked(text: &str) -> Vec<String> {
        let page = Page::from_text(text);
        let extraction = crate::extract(&page, &crate::Gazetteer::default());
        lines_to_recheck(&page, &extraction).into_iter().map(|index| page.lines[index].text.clone()).collect()
    }

    #[test]
    fn a_missing_date_re_reads_the_date_like_lines() {
        let lines = picked("KEDAI MAJU\nDATE: 1?/O3/2O18\nTOTAL 12.50\nCASH 20.00\nCHANGE 7.50");
        assert_eq!(lines[0], "DATE: 1?/O3/2O18");
    }

    #[test]
    fn a_total_confirmed_by_cash_and_change_is_not_re_read() {
        let lines = picked("KEDAI MAJU\n12/03/2018\nTOTAL 12.50\nCASH 20.00\nCHANGE 7.50");
        assert!(lines.is_empty(), "{lines:?}");
    }

    #[test]
    fn an_unconfirmed_total_re_reads_at_most_the_bound() {
        let text = "KEDAI MAJU\n12/03/2018\nSUB TOTAL 12.50\nTOTAL 12.5O\nROUNDING 0.00\nNETT TOTAL 12.50\n\
                    AMOUNT DUE 12.50\nCASH 2O.00\nCHANGE 7.5";
        let lines = picked(text);
        assert_eq!(lines.len(), MAX_LINES, "{lines:?}");
        assert_eq!(lines[0], "SUB TOTAL 12.50");
    }
}
