//! PDF receipts, read with Poppler's command-line tools.
//!
//! The file has already passed the structure and size checks of
//! `finagent_platform::pdf_input` (pages, objects, decompressed size). Then:
//! - **the text layer**: `pdftotext -tsv` gives every word with its box; words are grouped into
//!   the lines Poppler found, and the page becomes a [`Page`] as if OCR had read it, with boxes in
//!   pixels at [`TEXT_DPI`]. No OCR runs, and the text is exact.
//! - **a scan** (fewer than [`MIN_TEXT_WORDS`] words in the text layer): each page is rendered to
//!   a grayscale PNG by `pdftoppm` at up to [`RENDER_DPI`] (less for a large page, so no page
//!   exceeds [`MAX_RENDER_PIXELS`]), and read by OCR like a photo.
//!
//! Why Poppler's tools rather than bindings: they are Debian's maintained PDF renderer, and a
//! separate process bounds what a hostile file can do — it runs in a [sandbox](crate::sandbox)
//! (memory and CPU limits, a cleared environment, no TCP and a read-only file system), it has a
//! deadline ([`TOOL_TIMEOUT`]), its output is capped, and a crash in the renderer fails one
//! receipt instead of the worker.
//! (`poppler-rs` needs the GLib and Cairo stacks; MuPDF's crate builds MuPDF from source.)

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use finagent_extract::{BoundingBox, Page, TextLine};

use crate::sandbox::{self, Spawned};

/// Below this many words the text layer is not the receipt (a scan, or a stamp on one).
pub const MIN_TEXT_WORDS: usize = 5;
/// Resolution the text layer's boxes are expressed in.
pub const TEXT_DPI: f64 = 200.0;
/// Resolution scans are rendered at.
pub const RENDER_DPI: f64 = 300.0;
/// Most pixels a rendered page may have.
pub const MAX_RENDER_PIXELS: f64 = 16_000_000.0;
/// Longest side of a rendered page, in pixels (below the image side limit).
pub const MAX_RENDER_SIDE: f64 = 9_000.0;
/// Deadline of each Poppler command.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes a Poppler command may print.
pub const MAX_TOOL_OUTPUT: usize = 64 * 1024 * 1024;
/// Most pages rendered for OCR.
pub const MAX_RENDERED_PAGES: usize = 4;

/// Why a PDF could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    /// Poppler is not installed.
    #[error("failed to run {0}: is poppler-utils installed?")]
    Missing(&'static str),
    /// Poppler took too long.
    #[error("{0} did not finish within {1:?}")]
    Timeout(&'static str, Duration),
    /// Poppler refused the file.
    #[error("{0} could not read the PDF: {1}")]
    Unreadable(&'static str, String),
    /// The sandbox could not be set up, so Poppler was not run.
    #[error("{0}")]
    NoSandbox(String),
}

impl PdfError {
    /// Whether another attempt could succeed: a missing tool can be installed; a file Poppler
    /// cannot read, or one that keeps it busy past the deadline, will not change.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Missing(_) | Self::NoSandbox(_))
    }
}

/// Runs a Poppler tool in the [sandbox](crate::sandbox) with `input` on its standard input,
/// under the deadline and output cap.
fn run_tool(program: &'static str, args: &[&str], input: &[u8]) -> Result<Vec<u8>, PdfError> {
    let Spawned { mut child, confined } =
        sandbox::spawn(program, args).map_err(|error| PdfError::NoSandbox(error.to_string()))?;
    if !confined {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            tracing::warn!("this kernel has no Landlock: Poppler runs under its limits and a cleared environment, but may write files and open connections");
        });
    }
    let mut stdin = child.stdin.take().ok_or(PdfError::Missing(program))?;
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // The tool may stop reading early (a broken file); that is its answer, not ours.
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().ok_or(PdfError::Missing(program))?;
    let reader = std::thread::spawn(move || {
        let mut output = Vec::new();
        let read = (&mut stdout).take(MAX_TOOL_OUTPUT as u64 + 1).read_to_end(&mut output);
        read.map(|_| output)
    });
    let mut stderr = child.stderr.take().ok_or(PdfError::Missing(program))?;
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = (&mut stderr).take(4096).read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > TOOL_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(PdfError::Timeout(program, TOOL_TIMEOUT));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(PdfError::Unreadable(program, error.to_string()));
            }
        }
    };
    let _ = writer.join();
    let output = reader.join().ok().and_then(Result::ok).unwrap_or_default();
    let message = errors.join().unwrap_or_default();
    if !status.success() {
        if message.contains("failed to execute") {
            return Err(PdfError::Missing(program));
        }
        let reason = message.lines().next().unwrap_or("it exited with an error").trim().to_owned();
        return Err(PdfError::Unreadable(program, reason));
    }
    if output.len() > MAX_TOOL_OUTPUT {
        return Err(PdfError::Unreadable(program, format!("its output exceeds {MAX_TOOL_OUTPUT} bytes")));
    }
    Ok(output)
}

/// The text layer as a page, when it holds the receipt; `None` for a scan.
pub fn text_layer(bytes: &[u8], max_pages: usize) -> Result<Option<Page>, PdfError> {
    let last = max_pages.max(1).to_string();
    let tsv = run_tool("pdftotext", &["-q", "-f", "1", "-l", &last, "-tsv", "-", "-"], bytes)?;
    Ok(page_from_pdftotext(&String::from_utf8_lossy(&tsv)))
}

/// Groups `pdftotext -tsv` words into lines; pages are stacked top to bottom.
pub fn page_from_pdftotext(tsv: &str) -> Option<Page> {
    let scale = TEXT_DPI / 72.0;
    let mut lines: Vec<(String, TextLine)> = Vec::new();
    let mut words = 0;
    let (mut page_top, mut page_height, mut width, mut current_page) = (0.0f64, 0.0f64, 0.0f64, String::new());
    for row in tsv.lines().skip(1) {
        let fields: Vec<&str> = row.splitn(12, '\t').collect();
        if fields.len() < 12 {
            continue;
        }
        let number = |index: usize| fields[index].trim().parse::<f64>().unwrap_or(0.0);
        match fields[0] {
            "1" => {
                if current_page != fields[1] {
                    page_top += page_height;
                    current_page = fields[1].to_owned();
                }
                page_height = number(9);
                width = width.max(number(8));
            }
            "5" => {
                let text = fields[11].trim();
                if text.is_empty() {
                    continue;
                }
                words += 1;
                let pixel = |value: f64| (value * scale).round() as i32;
                let bbox = BoundingBox {
                    left: pixel(number(6)),
                    top: pixel(page_top + number(7)),
                    right: pixel(number(6) + number(8)),
                    bottom: pixel(page_top + number(7) + number(9)),
                };
                let key = format!("{}:{}:{}:{}", fields[1], fields[2], fields[3], fields[4]);
                match lines.last_mut() {
                    Some((last, line)) if *last == key => {
                        line.text.push(' ');
                        line.text.push_str(text);
                        line.bbox = line.bbox.union(&bbox);
                    }
                    _ => lines.push((key, TextLine { text: text.to_owned(), bbox, confidence: 1.0 })),
                }
            }
            _ => {}
        }
    }
    if words < MIN_TEXT_WORDS {
        return None;
    }
    Some(Page {
        lines: lines.into_iter().map(|(_, line)| line).collect(),
        width: (width * scale).round() as i32,
        height: ((page_top + page_height) * scale).round() as i32,
    })
}

/// Resolution of the preview the review page shows of a PDF.
pub const PREVIEW_DPI: f64 = 100.0;

/// The preview of a PDF for the review page: the pages a reading covers (at most
/// [`MAX_RENDERED_PAGES`]) rendered at [`PREVIEW_DPI`] and stacked top to bottom into one
/// grayscale PNG, as the reading stacks their lines, so that a field's outline, given in the
/// reading's pixels, falls on the same place of the preview once scaled to its size. Poppler runs
/// in the [sandbox](crate::sandbox) as for the reading.
pub fn preview(bytes: &[u8]) -> Result<Vec<u8>, PdfError> {
    let info = finagent_platform::pdf_input::inspect(bytes, &finagent_platform::pdf_input::PdfLimits::default())
        .map_err(|error| PdfError::Unreadable("the structure check", error.to_string()))?;
    let pages = info.pages.clamp(1, MAX_RENDERED_PAGES);
    let mut rendered = Vec::with_capacity(pages);
    for number in 1..=pages {
        let png = pdftoppm(bytes, number, PREVIEW_DPI)?;
        let image = image::load_from_memory(&png)
            .map_err(|error| PdfError::Unreadable("pdftoppm", format!("not a PNG: {error}")))?
            .to_luma8();
        rendered.push(image);
    }
    let width = rendered.iter().map(image::GrayImage::width).max().unwrap_or(1);
    let height: u32 = rendered.iter().map(image::GrayImage::height).sum();
    let mut sheet = image::GrayImage::from_pixel(width, height.max(1), image::Luma([255]));
    let mut top = 0;
    for page in &rendered {
        image::imageops::overlay(&mut sheet, page, 0, i64::from(top));
        top += page.height();
    }
    let mut png = Vec::new();
    image::DynamicImage::ImageLuma8(sheet)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|error| PdfError::Unreadable("the preview", error.to_string()))?;
    Ok(png)
}

/// Renders page `page` (1-based) of a PDF whose pages are `width_points` × `height_points` to a
/// grayscale PNG.
pub fn render_page(bytes: &[u8], page: usize, width_points: f64, height_points: f64) -> Result<Vec<u8>, PdfError> {
    let inches = (width_points / 72.0).max(0.1) * (height_points / 72.0).max(0.1);
    let longest_inches = (width_points.max(height_points) / 72.0).max(0.1);
    // Within the pixel budget, and within the image side limit the rendering is checked against.
    let dpi =
        RENDER_DPI.min((MAX_RENDER_PIXELS / inches).sqrt()).min(MAX_RENDER_SIDE / longest_inches).max(1.0).floor();
    pdftoppm(bytes, page, dpi)
}

/// Page `page` (1-based) rendered at `dpi` to a grayscale PNG by `pdftoppm`, in the sandbox.
fn pdftoppm(bytes: &[u8], page: usize, dpi: f64) -> Result<Vec<u8>, PdfError> {
    let (page, dpi) = (page.to_string(), format!("{dpi}"));
    run_tool("pdftoppm", &["-q", "-r", &dpi, "-gray", "-png", "-f", &page, "-l", &page, "-"], bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_stacks_the_pages_at_the_preview_resolution() {
        if std::process::Command::new("pdftoppm").arg("-v").output().is_err() {
            assert!(std::env::var_os("FINAGENT_TEST_REQUIRE_SERVERS").is_none(), "pdftoppm is missing");
            return;
        }
        let pdf = finagent_platform::pdf_input::samples::text_pdf(&["CORNER SHOP", "TOTAL 9.00"]);
        let png = preview(&pdf).expect("a preview");
        let image = image::load_from_memory(&png).expect("a PNG").to_luma8();
        // The sample page is 226 × 600 points.
        let expected = |points: f64| (points * PREVIEW_DPI / 72.0).round() as u32;
        assert!(image.width().abs_diff(expected(226.0)) <= 1, "{}", image.width());
        assert!(image.height().abs_diff(expected(600.0)) <= 1, "{}", image.height());
        assert!(image.pixels().any(|pixel| pixel.0[0] < 128), "the text is drawn");
        assert!(preview(b"%PDF-1.7 garbage").is_err());
    }

    #[test]
    fn pdftotext_words_become_lines_in_pixels() {
        let tsv = "level\tpage_num\tpar_num\tblock_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
                   1\t1\t0\t0\t0\t0\t0\t0\t226\t600\t-1\t###PAGE###\n\
                   5\t1\t0\t1\t0\t0\t12\t30\t40\t9\t100\tCorner\n\
                   5\t1\t0\t1\t0\t1\t55\t30\t30\t9\t100\tShop\n\
                   5\t1\t0\t1\t1\t0\t12\t43\t30\t9\t100\tTOTAL\n\
                   5\t1\t0\t1\t1\t1\t150\t43\t25\t9\t100\t9.00\n\
                   5\t1\t0\t1\t2\t0\t12\t56\t30\t9\t100\tThanks\n";
        let page = page_from_pdftotext(tsv).expect("text layer");
        let texts: Vec<&str> = page.lines.iter().map(|line| line.text.as_str()).collect();
        assert_eq!(texts, ["Corner Shop", "TOTAL 9.00", "Thanks"]);
        let scale = TEXT_DPI / 72.0;
        assert_eq!(page.lines[0].bbox.left, (12.0 * scale).round() as i32);
        assert_eq!(page.width, (226.0 * scale).round() as i32);
        // A page without words is a scan.
        assert_eq!(page_from_pdftotext("header\n1\t1\t0\t0\t0\t0\t0\t0\t226\t600\t-1\t###PAGE###\n"), None);
    }
}
