//! Untrusted image bytes in, a grayscale bitmap sized for OCR out — or a clear error.
//!
//! Order matters for safety: the format is sniffed from magic bytes, then the dimensions are read
//! from the header alone and checked against [`ImageLimits`] before anything is decoded, and the
//! decoder itself runs with an allocation limit. An empty file, a text file, a truncated JPEG, a
//! 1×1 pixel or a header claiming 20,000×20,000 pixels each get their own error.
//!
//! Preprocessing for OCR lives in the OCR crate (`finagent-ocr`), on the bitmap [`decode`] gives.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader};

pub use crate::input_error::ImageError;

/// Limits applied before decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest file accepted, in bytes.
    pub max_bytes: usize,
    /// Longest side accepted, in pixels.
    pub max_side: u32,
    /// Most pixels accepted.
    pub max_pixels: u64,
    /// Shortest side accepted, in pixels (smaller cannot hold a readable receipt).
    pub min_side: u32,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_bytes: finagent_core::names::uploads::MAX_BYTES,
            max_side: 10_000,
            max_pixels: 40_000_000,
            min_side: 32,
        }
    }
}

/// The media types accepted, by magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaType {
    /// `image/jpeg`.
    Jpeg,
    /// `image/png`.
    Png,
    /// `image/webp`.
    Webp,
    /// `image/tiff`.
    Tiff,
    /// `image/bmp`.
    Bmp,
    /// `image/gif`.
    Gif,
    /// `application/pdf`: an e-receipt or a scan, read by the OCR crate's PDF reader.
    Pdf,
}

impl MediaType {
    /// The MIME type.
    pub fn mime(&self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Tiff => "image/tiff",
            Self::Bmp => "image/bmp",
            Self::Gif => "image/gif",
            Self::Pdf => "application/pdf",
        }
    }

    fn format(&self) -> Option<ImageFormat> {
        match self {
            Self::Jpeg => Some(ImageFormat::Jpeg),
            Self::Png => Some(ImageFormat::Png),
            Self::Webp => Some(ImageFormat::WebP),
            Self::Tiff => Some(ImageFormat::Tiff),
            Self::Bmp => Some(ImageFormat::Bmp),
            Self::Gif => Some(ImageFormat::Gif),
            Self::Pdf => None,
        }
    }
}

/// What the header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// Format from the magic bytes.
    pub media_type: MediaType,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Recognizes the format from the first bytes.
pub fn sniff(bytes: &[u8]) -> Result<MediaType, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Ok(MediaType::Jpeg)
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Ok(MediaType::Png)
    } else if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Ok(MediaType::Webp)
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        Ok(MediaType::Tiff)
    } else if starts(b"BM") && bytes.len() > 26 {
        Ok(MediaType::Bmp)
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Ok(MediaType::Gif)
    } else if bytes[..bytes.len().min(1024)].windows(5).any(|window| window == b"%PDF-") {
        // The header may follow up to 1 KiB of junk (PDF 1.7, annex H).
        Ok(MediaType::Pdf)
    } else {
        Err(ImageError::UnsupportedFormat)
    }
}

/// Reads format and dimensions from the header only, and checks them against the limits.
pub fn inspect(bytes: &[u8], limits: &ImageLimits) -> Result<ImageInfo, ImageError> {
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooManyBytes { size: bytes.len(), limit: limits.max_bytes });
    }
    let media_type = sniff(bytes)?;
    let Some(format) = media_type.format() else {
        let info = crate::pdf_input::inspect(bytes, &crate::pdf_input::PdfLimits::default())?;
        return Ok(ImageInfo { media_type, width: info.width_points, height: info.height_points });
    };
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|_| ImageError::BadHeader(media_type.mime()))?;
    if width.max(height) > limits.max_side || u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ImageError::TooLarge { width, height, max_side: limits.max_side, max_pixels: limits.max_pixels });
    }
    if width.min(height) < limits.min_side {
        return Err(ImageError::TooSmall { width, height, min_side: limits.min_side });
    }
    if media_type == MediaType::Jpeg && !jpeg_is_complete(bytes) {
        return Err(ImageError::Decode { format: media_type.mime(), reason: "the file is truncated".to_owned() });
    }
    Ok(ImageInfo { media_type, width, height })
}

/// Whether a JPEG has its end-of-image marker after its last scan. The decoder fills a truncated
/// file with grey instead of failing, which would hand OCR half a receipt; entropy-coded data
/// escapes every 0xFF, so an end marker after the last start-of-scan is real.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|pair| pair == [0xFF, 0xDA]);
    match last_scan {
        Some(scan) => bytes[scan..].windows(2).any(|pair| pair == [0xFF, 0xD9]),
        None => false,
    }
}

/// Checks and decodes an image: the checks of [`inspect`] first, then a decoder bounded by the
/// same limits. Preprocessing for OCR is the OCR crate's business.
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<(DynamicImage, ImageInfo), ImageError> {
    let info = inspect(bytes, limits)?;
    Ok((decode_inspected(bytes, info, limits)?, info))
}

/// Decodes an image that [`inspect`] has already checked.
fn decode_inspected(bytes: &[u8], info: ImageInfo, limits: &ImageLimits) -> Result<DynamicImage, ImageError> {
    let Some(format) = info.media_type.format() else {
        return Err(ImageError::Decode { format: info.media_type.mime(), reason: "a PDF is not an image".to_owned() });
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(4).saturating_add(64 * 1024 * 1024));
    reader.limits(decoder_limits);
    reader.decode().map_err(|error| ImageError::Decode { format: info.media_type.mime(), reason: error.to_string() })
}

/// From this many pixels, a JPEG is decoded straight to its own luma channel (see
/// [`decode_gray`]).
pub const LUMA_DECODE_PIXELS: u64 = 8_000_000;

/// Checks and decodes an image to one byte of luminance per pixel, which is all OCR reads.
///
/// A large JPEG (from [`LUMA_DECODE_PIXELS`]; A4 scans at 600 dpi are 35 megapixels) is decoded
/// straight to its luma channel (Y, BT.601 weights): the colour channels are neither upsampled
/// nor converted, which takes a 35-megapixel SROIE scan from about 400 ms to 55 ms. Smaller
/// images, other formats, and JPEGs in CMYK or YCCK go through [`decode`] and are converted to
/// luma from RGB (BT.709 weights); on the US phone photos the JPEG's own Y channel read one date
/// and two totals fewer, so small colour photos keep the conversion they were measured with.
///
/// The flag says whether the image is in colour ([`in_colour`]); a large JPEG stored with colour
/// channels counts as in colour without its pixels being looked at.
pub fn decode_gray(bytes: &[u8], limits: &ImageLimits) -> Result<(image::GrayImage, ImageInfo, bool), ImageError> {
    let info = inspect(bytes, limits)?;
    if info.media_type == MediaType::Jpeg
        && u64::from(info.width) * u64::from(info.height) >= LUMA_DECODE_PIXELS
        && let Some((gray, colour)) = jpeg_luma(bytes, info, limits)?
    {
        return Ok((gray, info, colour));
    }
    let decoded = decode_inspected(bytes, info, limits)?;
    let colour = in_colour(&decoded);
    Ok((decoded.into_luma8(), info, colour))
}

/// Whether at least 1 % of an image's pixels (every fourth pixel of every fourth row looked at)
/// have channels more than 40 apart: a camera photo with a table, a folder or a hand in it,
/// rather than a grey scan or copy (on the six SROIE receipts that read as photos it is at most
/// 0.5 %).
pub fn in_colour(image: &DynamicImage) -> bool {
    use image::GenericImageView;
    if !image.color().has_color() {
        return false;
    }
    let (mut looked, mut coloured) = (0u64, 0u64);
    for y in (0..image.height()).step_by(4) {
        for x in (0..image.width()).step_by(4) {
            let [r, g, b, _] = image.get_pixel(x, y).0;
            looked += 1;
            coloured += u64::from(r.max(g).max(b) - r.min(g).min(b) > 40);
        }
    }
    looked > 0 && coloured * 100 >= looked
}

/// The luma channel of a YCbCr or grayscale JPEG, and whether it has colour channels; `None`
/// for other colour spaces.
fn jpeg_luma(
    bytes: &[u8],
    info: ImageInfo,
    limits: &ImageLimits,
) -> Result<Option<(image::GrayImage, bool)>, ImageError> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    let failed = |reason: String| ImageError::Decode { format: info.media_type.mime(), reason };
    let side = usize::try_from(limits.max_side).unwrap_or(usize::MAX);
    let options = zune_core::options::DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::Luma)
        .set_strict_mode(false)
        .set_max_width(side)
        .set_max_height(side);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(|error| failed(error.to_string()))?;
    let colour = match decoder.input_colorspace() {
        Some(ColorSpace::YCbCr) => true,
        Some(ColorSpace::Luma) => false,
        _ => return Ok(None),
    };
    let Some(headers) = decoder.info() else { return Ok(None) };
    let (width, height) = (u32::from(headers.width), u32::from(headers.height));
    if (width, height) != (info.width, info.height) {
        return Err(failed("the frame does not match the header".to_owned()));
    }
    let pixels = decoder.decode().map_err(|error| failed(error.to_string()))?;
    image::GrayImage::from_raw(width, height, pixels)
        .map(|gray| Some((gray, colour)))
        .ok_or_else(|| failed("the decoder returned fewer pixels than the frame holds".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        image::GrayImage::new(width, height).write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png).expect("encodes");
        bytes
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    /// A valid PNG whose IHDR (with a correct checksum) claims the given size; the pixel data
    /// behind it is only 40×40.
    fn png_header_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = png(40, 40);
        bytes[16..20].copy_from_slice(&width.to_be_bytes());
        bytes[20..24].copy_from_slice(&height.to_be_bytes());
        let checksum = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&checksum.to_be_bytes());
        bytes
    }

    #[test]
    fn hostile_inputs_get_clear_errors() {
        let limits = ImageLimits::default();
        let jpeg = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../ocr-worker/tests/fixtures/receipts/000.jpg"))
            .expect("fixture");
        type Case = (&'static str, Vec<u8>, fn(&ImageError) -> bool);
        let cases: Vec<Case> = vec![
            ("empty", vec![], |e| matches!(e, ImageError::Empty)),
            ("text", b"TOTAL 9.00\nthank you".to_vec(), |e| matches!(e, ImageError::UnsupportedFormat)),
            ("truncated jpeg", jpeg[..jpeg.len() / 3].to_vec(), |e| {
                matches!(e, ImageError::Decode { .. } | ImageError::BadHeader(_))
            }),
            ("1x1", png(1, 1), |e| matches!(e, ImageError::TooSmall { .. })),
            ("20000x20000 header", png_header_claiming(20_000, 20_000), |e| matches!(e, ImageError::TooLarge { .. })),
            ("9000x9000 header", png_header_claiming(9_000, 9_000), |e| matches!(e, ImageError::TooLarge { .. })),
        ];
        for (name, bytes, expected) in cases {
            let Err(error) = decode(&bytes, &limits) else { panic!("{name}: accepted") };
            assert!(expected(&error), "{name}: unexpected {error:?}");
            assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn jpegs_decode_to_the_same_gray_as_through_colour() {
        let limits = ImageLimits::default();
        let jpeg = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../ocr-worker/tests/fixtures/receipts/000.jpg"))
            .expect("fixture");
        let (colour, info) = decode(&jpeg, &limits).expect("decodes");
        let (gray, _) = jpeg_luma(&jpeg, info, &limits).expect("decodes").expect("a YCbCr JPEG");
        assert_eq!(decode_gray(&jpeg, &limits).expect("decodes").0, colour.to_luma8());
        let through_colour = colour.into_luma8();
        assert_eq!(gray.dimensions(), (info.width, info.height));
        assert_eq!(gray.dimensions(), through_colour.dimensions());
        let differences: Vec<i32> =
            gray.as_raw().iter().zip(through_colour.as_raw()).map(|(a, b)| i32::from(*a) - i32::from(*b)).collect();
        let mean = differences.iter().map(|d| f64::from(d.abs())).sum::<f64>() / differences.len() as f64;
        assert!(mean < 2.0, "mean difference {mean}");
        // A PNG takes the general path; a truncated JPEG is still refused.
        let (from_png, _, colour) = decode_gray(&png(40, 36), &limits).expect("decodes");
        assert_eq!(from_png.dimensions(), (40, 36));
        assert!(!colour, "a gray PNG is not in colour");
        let mut photo = image::RgbImage::from_pixel(40, 40, image::Rgb([200, 200, 200]));
        assert!(!in_colour(&DynamicImage::ImageRgb8(photo.clone())), "grey pixels stored as RGB");
        for x in 0..40 {
            photo.put_pixel(x, 0, image::Rgb([200, 90, 40]));
        }
        assert!(in_colour(&DynamicImage::ImageRgb8(photo)), "a brown edge");
        assert!(decode_gray(&jpeg[..jpeg.len() / 2], &limits).is_err());
    }

    #[test]
    fn formats_are_sniffed_from_magic_bytes() {
        assert_eq!(sniff(&png(40, 40)), Ok(MediaType::Png));
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Ok(MediaType::Jpeg));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Ok(MediaType::Webp));
        assert_eq!(sniff(b"%PDF-1.7"), Ok(MediaType::Pdf));
        assert_eq!(sniff(b"%PSF-1.7"), Err(ImageError::UnsupportedFormat));
    }
}
