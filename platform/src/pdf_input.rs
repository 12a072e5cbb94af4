//! Untrusted PDF bytes: structure and limits checked before anything renders them.
//!
//! A PDF can be small on disk and enormous once read: a 10 KB file can hold a stream that
//! inflates to gigabytes, tens of thousands of pages, or millions of objects. The checks, in
//! order: encrypted files are refused (nothing to read without the password); object streams
//! are counted in the raw bytes before parsing (they are decoded while loading); the document
//! is loaded by `lopdf` with each stream's decompression bounded by
//! [`PdfLimits::max_stream_bytes`]; then the object count, the page count and the page size are
//! checked, and every page's content streams are decompressed against one shared budget
//! ([`PdfLimits::max_content_bytes`]). Each failure is an [`ImageError::PdfLimit`] naming the limit.

use lopdf::{Document, LoadOptions, Object};

use crate::input_error::ImageError;

/// What a PDF may hold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PdfLimits {
    /// Pages (a receipt is one or two; an invoice a few).
    pub max_pages: usize,
    /// Objects in the document.
    pub max_objects: usize,
    /// Object streams (compressed groups of objects), counted before parsing. Loading inflates
    /// each of them, so this times [`max_stream_bytes`](Self::max_stream_bytes) bounds the
    /// inflation a load can cost: 32 × 16 MiB = 512 MiB at most with the defaults.
    pub max_object_streams: usize,
    /// Decompressed size of any single stream.
    pub max_stream_bytes: usize,
    /// Decompressed size of all pages' content streams together.
    pub max_content_bytes: usize,
    /// Longest page side, in points (1/72 inch).
    pub max_page_points: f32,
}

impl Default for PdfLimits {
    fn default() -> Self {
        Self {
            max_pages: 20,
            max_objects: 50_000,
            max_object_streams: 32,
            max_stream_bytes: 16 * 1024 * 1024,
            max_content_bytes: 32 * 1024 * 1024,
            max_page_points: 200.0 * 72.0,
        }
    }
}

/// What the checks found.
#[derive(Clone, Debug, PartialEq)]
pub struct PdfInfo {
    pub pages: usize,
    /// Each page's width and height, in points.
    pub page_points: Vec<(f32, f32)>,
    /// Width of the first page in points.
    pub width_points: u32,
    /// Height of the first page in points.
    pub height_points: u32,
}

fn limit(what: String) -> ImageError {
    ImageError::PdfLimit(what)
}

/// The page's `MediaBox` (inherited from its parents), as width and height in points.
fn page_size(document: &Document, page: lopdf::ObjectId) -> Option<(f32, f32)> {
    let mut current = document.get_dictionary(page).ok()?;
    for _ in 0..32 {
        let media_box =
            current.get(b"MediaBox").ok().and_then(|o| document.dereference(o).ok()).map(|(_, o)| o.clone());
        if let Some(Object::Array(values)) = media_box {
            // Each number may itself be a reference (`[0 0 5 0 R 6 0 R]`).
            let numbers: Vec<f32> = values
                .iter()
                .filter_map(|value| document.dereference(value).ok().and_then(|(_, value)| value.as_float().ok()))
                .collect();
            if numbers.len() == 4 {
                return Some(((numbers[2] - numbers[0]).abs(), (numbers[3] - numbers[1]).abs()));
            }
        }
        let parent = current.get(b"Parent").ok()?.as_reference().ok()?;
        current = document.get_dictionary(parent).ok()?;
    }
    None
}

/// Every name in the raw bytes (`/Type`, `/ObjStm`, …), with `#xx` escapes decoded as a PDF
/// reader decodes them, so `/Obj#53tm` is `ObjStm` here too. Names inside strings and streams
/// are counted as well, which can only overcount.
fn names(bytes: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    const DELIMITERS: &[u8] = b"()<>[]{}/%";
    let ends = |byte: u8| byte.is_ascii_whitespace() || byte == 0 || DELIMITERS.contains(&byte);
    let hex = |byte: u8| (byte as char).to_digit(16).and_then(|digit| u8::try_from(digit).ok());
    bytes.iter().enumerate().filter(|(_, byte)| **byte == b'/').map(move |(start, _)| {
        let mut name = Vec::new();
        let mut index = start + 1;
        while let Some(&byte) = bytes.get(index) {
            if ends(byte) {
                break;
            }
            match (byte, bytes.get(index + 1).copied().and_then(hex), bytes.get(index + 2).copied().and_then(hex)) {
                (b'#', Some(high), Some(low)) => {
                    name.push(high * 16 + low);
                    index += 3;
                }
                _ => {
                    name.push(byte);
                    index += 1;
                }
            }
        }
        name
    })
}

/// Checks a PDF against the limits.
pub fn inspect(bytes: &[u8], limits: &PdfLimits) -> Result<PdfInfo, ImageError> {
    let object_streams = names(bytes).filter(|name| name.as_slice() == b"ObjStm").count();
    if object_streams > limits.max_object_streams {
        return Err(limit(format!(
            "it holds {object_streams} object streams, above the limit of {}",
            limits.max_object_streams
        )));
    }
    let options = LoadOptions { max_decompressed_size: Some(limits.max_stream_bytes), ..LoadOptions::default() };
    let document = Document::load_mem_with_options(bytes, options).map_err(|error| match error {
        lopdf::Error::Decompress(_) => {
            limit(format!("a stream decompresses to more than {} bytes (a PDF bomb?)", limits.max_stream_bytes))
        }
        other => ImageError::Pdf(other.to_string()),
    })?;
    if document.is_encrypted() {
        return Err(ImageError::Pdf("it is encrypted; upload a copy without a password".to_owned()));
    }
    if document.objects.len() > limits.max_objects {
        return Err(limit(format!(
            "it holds {} objects, above the limit of {}",
            document.objects.len(),
            limits.max_objects
        )));
    }
    let pages = document.get_pages();
    if pages.is_empty() {
        return Err(ImageError::Pdf("it has no pages".to_owned()));
    }
    if pages.len() > limits.max_pages {
        return Err(limit(format!("it has {} pages, above the limit of {}", pages.len(), limits.max_pages)));
    }
    let mut sizes = Vec::with_capacity(pages.len());
    let mut budget = limits.max_content_bytes;
    for page in pages.values() {
        let (width, height) = page_size(&document, *page).unwrap_or((612.0, 792.0));
        if width.max(height) > limits.max_page_points || width < 1.0 || height < 1.0 {
            return Err(limit(format!(
                "a page is {width:.0}×{height:.0} points, beyond {:.0} points a side",
                limits.max_page_points
            )));
        }
        sizes.push((width, height));
        let content = document.get_page_content_with_limit(*page, budget).map_err(|_| {
            limit(format!("its pages decompress to more than {} bytes (a PDF bomb?)", limits.max_content_bytes))
        })?;
        budget = budget.saturating_sub(content.len());
    }
    let (width, height) = sizes.first().copied().unwrap_or((612.0, 792.0));
    Ok(PdfInfo {
        pages: pages.len(),
        page_points: sizes,
        width_points: width.round() as u32,
        height_points: height.round() as u32,
    })
}

/// Test PDFs written with `lopdf`: a text receipt, an image-only scan, and bombs.
#[cfg(any(test, feature = "testkit"))]
pub mod samples {
    use lopdf::content::{Content, Operation};
    use lopdf::{Document, Object, Stream, dictionary};

    fn finish(mut document: Document, pages: Vec<Object>, pages_id: lopdf::ObjectId, compress: bool) -> Vec<u8> {
        let count = i64::try_from(pages.len()).unwrap_or(i64::MAX);
        document
            .objects
            .insert(pages_id, Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => pages, "Count" => count }));
        let catalog = document.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        document.trailer.set("Root", catalog);
        if compress {
            document.compress();
        }
        let mut bytes = Vec::new();
        document.save_to(&mut bytes).unwrap_or_else(|error| panic!("failed to write the PDF: {error}"));
        bytes
    }

    /// A one-page text PDF, 226×600 points (an 80 mm receipt), one line per entry of `lines`,
    /// in Helvetica 9 pt from the top.
    pub fn text_pdf(lines: &[&str]) -> Vec<u8> {
        let mut document = Document::with_version("1.5");
        let pages_id = document.new_object_id();
        let font = document.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding",
        });
        let mut operations = vec![Operation::new("BT", vec![]), Operation::new("Tf", vec!["F1".into(), 9.into()])];
        operations.push(Operation::new("Td", vec![12.into(), 570.into()]));
        for (index, line) in lines.iter().enumerate() {
            if index > 0 {
                operations.push(Operation::new("Td", vec![0.into(), (-13).into()]));
            }
            // WinAnsi is Latin-1 for the letters receipts print (`£`, `ü`, `é`).
            let encoded: Vec<u8> = line.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect();
            operations.push(Operation::new("Tj", vec![Object::string_literal(encoded)]));
        }
        operations.push(Operation::new("ET", vec![]));
        let content = Content { operations }.encode().unwrap_or_default();
        let content_id = document.add_object(Stream::new(dictionary! {}, content));
        let page = document.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "MediaBox" => vec![0.into(), 0.into(), 226.into(), 600.into()],
            "Contents" => content_id, "Resources" => dictionary! { "Font" => dictionary! { "F1" => font } },
        });
        finish(document, vec![page.into()], pages_id, true)
    }

    /// A one-page PDF holding only a JPEG (a scan at 300 dpi), drawn over the whole page.
    pub fn scanned_pdf(jpeg: &[u8], width: u32, height: u32, components: u8) -> Vec<u8> {
        let mut document = Document::with_version("1.5");
        let pages_id = document.new_object_id();
        let color_space = if components == 1 { "DeviceGray" } else { "DeviceRGB" };
        let image = Stream::new(
            dictionary! {
                "Type" => "XObject", "Subtype" => "Image", "Width" => i64::from(width), "Height" => i64::from(height),
                "ColorSpace" => color_space, "BitsPerComponent" => 8, "Filter" => "DCTDecode",
            },
            jpeg.to_vec(),
        );
        let image_id = document.add_object(image);
        // Scanned at 300 dpi: width px → width × 72 / 300 points, so rendering at 300 dpi gives
        // back the scan's own pixels.
        let (page_width, page_height) = (f64::from(width) * 72.0 / 300.0, f64::from(height) * 72.0 / 300.0);
        let operations = vec![
            Operation::new("q", vec![]),
            Operation::new("cm", vec![page_width.into(), 0.into(), 0.into(), page_height.into(), 0.into(), 0.into()]),
            Operation::new("Do", vec!["Im0".into()]),
            Operation::new("Q", vec![]),
        ];
        let content = Content { operations }.encode().unwrap_or_default();
        let content_id = document.add_object(Stream::new(dictionary! {}, content));
        let page = document.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id,
            "MediaBox" => vec![0.into(), 0.into(), page_width.into(), page_height.into()],
            "Contents" => content_id,
            "Resources" => dictionary! { "XObject" => dictionary! { "Im0" => image_id } },
        });
        finish(document, vec![page.into()], pages_id, false)
    }

    /// A small file whose one page's content stream inflates to `inflated` bytes of zeros.
    pub fn deflate_bomb(inflated: usize) -> Vec<u8> {
        let mut document = Document::with_version("1.5");
        let pages_id = document.new_object_id();
        let mut stream = Stream::new(dictionary! {}, vec![b' '; inflated]);
        let _ = stream.compress();
        let content_id = document.add_object(stream);
        let page = document.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "MediaBox" => vec![0.into(), 0.into(), 200.into(), 200.into()],
            "Contents" => content_id,
        });
        finish(document, vec![page.into()], pages_id, false)
    }

    /// A PDF of `count` empty pages.
    pub fn many_pages(count: usize) -> Vec<u8> {
        let mut document = Document::with_version("1.5");
        let pages_id = document.new_object_id();
        let pages: Vec<Object> = (0..count)
            .map(|_| {
                document
                    .add_object(dictionary! {
                        "Type" => "Page", "Parent" => pages_id,
                        "MediaBox" => vec![0.into(), 0.into(), 200.into(), 200.into()],
                    })
                    .into()
            })
            .collect();
        finish(document, pages, pages_id, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_pdf_passes_and_bombs_are_refused_by_name() {
        let info = inspect(&samples::text_pdf(&["SHOP", "TOTAL 9.00"]), &PdfLimits::default()).expect("valid");
        assert_eq!((info.pages, info.width_points, info.height_points), (1, 226, 600));

        let bomb = samples::deflate_bomb(64 * 1024 * 1024);
        assert!(bomb.len() < 200 * 1024, "the bomb is small on disk: {} bytes", bomb.len());
        let Err(ImageError::PdfLimit(reason)) = inspect(&bomb, &PdfLimits::default()) else {
            panic!("a 64 MiB content stream was accepted")
        };
        assert!(reason.contains("decompress"), "{reason}");

        let Err(ImageError::PdfLimit(reason)) = inspect(&samples::many_pages(21), &PdfLimits::default()) else {
            panic!("21 pages were accepted")
        };
        assert!(reason.contains("21 pages"), "{reason}");
        assert!(matches!(inspect(b"%PDF-1.4\ngarbage", &PdfLimits::default()), Err(ImageError::Pdf(_))));
    }

    #[test]
    fn object_streams_are_counted_however_their_names_are_spelled() {
        let limits = PdfLimits::default();
        for spelling in ["/ObjStm", "/Obj#53tm", "/#4fbj#53#74m", "/#4F#62#6A#53#74#6D"] {
            let mut bytes = b"%PDF-1.7\n".to_vec();
            for number in 1..=limits.max_object_streams + 1 {
                bytes.extend(format!("{number} 0 obj <</Type {spelling} /N 1 /First 4>> endobj\n").as_bytes());
            }
            let Err(ImageError::PdfLimit(reason)) = inspect(&bytes, &limits) else {
                panic!("{} object streams spelled {spelling} were not counted", limits.max_object_streams + 1)
            };
            assert!(reason.contains("object streams"), "{spelling}: {reason}");
        }
        let names: Vec<Vec<u8>> = names(b"<</Type/Obj#53tm/A#20B (x) /C#zz>>").collect();
        assert_eq!(names, [b"Type".to_vec(), b"ObjStm".to_vec(), b"A B".to_vec(), b"C#zz".to_vec()]);
    }
}
