use finagent_platform::image_input::{ImageInfo, MediaType};
use image::GrayImage;

use super::*;

fn looks(photo: bool, colour: bool, long_side: f32) -> Looks {
    Looks { photo, colour, long_side }
}

#[test]
fn scans_go_to_tesseract_and_photos_to_pp_ocr_unless_grey_and_large() {
    use PpOcrImages::{All, Photos};
    use Reader::{PpOcr, Tesseract, TesseractThenPpOcr};
    let table = [
        // (photo, colour, long side, which images PP-OCR reads, reader)
        (false, false, 2000.0, None, Tesseract),
        (true, true, 900.0, None, Tesseract),
        (true, false, 3000.0, None, Tesseract),
        (false, false, 2000.0, Some(Photos), Tesseract),
        (false, true, 800.0, Some(Photos), Tesseract),
        (true, true, 900.0, Some(Photos), PpOcr),
        (true, true, 4000.0, Some(Photos), PpOcr),
        (true, false, 1000.0, Some(Photos), PpOcr),
        (true, false, LARGE_PHOTO_SIDE - 1.0, Some(Photos), PpOcr),
        (true, false, LARGE_PHOTO_SIDE, Some(Photos), TesseractThenPpOcr),
        (true, false, 2260.0, Some(Photos), TesseractThenPpOcr),
        (false, false, 2000.0, Some(All), PpOcr),
        (true, false, 2260.0, Some(All), PpOcr),
    ];
    for (photo, colour, side, ppocr, reader) in table {
        assert_eq!(
            route(looks(photo, colour, side), ppocr),
            reader,
            "photo {photo}, colour {colour}, {side} px, {ppocr:?}"
        );
    }
}

#[test]
fn the_long_side_is_measured_in_the_uploads_pixels() {
    let prepared = |width, height, scale| PreparedImage {
        gray: GrayImage::new(width, height),
        scale,
        offset: (0, 0),
        ppi: 300,
        info: ImageInfo { media_type: MediaType::Jpeg, width: 4000, height: 3000 },
        steps: Vec::new(),
        sideways: false,
        uneven: false,
        photo: true,
        colour: false,
    };
    // Shrunk to half for OCR: the paper was 1,600 px long in the upload.
    assert_eq!(Looks::of(&prepared(600, 800, 0.5)), looks(true, false, 1600.0));
    assert_eq!(route(Looks::of(&prepared(600, 800, 0.5)), Some(PpOcrImages::Photos)), Reader::TesseractThenPpOcr);
    // Enlarged twice: 650 px in the upload, read by PP-OCR.
    assert_eq!(Looks::of(&prepared(1300, 900, 2.0)), looks(true, false, 650.0));
    // A degenerate scale does not divide by zero.
    assert!(Looks::of(&prepared(10, 10, 0.0)).long_side.is_finite());
}
