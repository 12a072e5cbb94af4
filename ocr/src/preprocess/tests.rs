use finagent_platform::image_input::MediaType;

use super::light::{sauvola, stretch_contrast, unevenly_lit};
use super::*;

#[test]
fn large_reductions_keep_the_requested_size_and_the_ink() {
    let page = paper(4000, 2000, 40);
    for scale in [0.45f32, 0.3, 0.1, 0.05] {
        let small = resize(&page, scale);
        let expected = ((4000.0 * scale).round() as u32, (2000.0 * scale).round() as u32);
        assert_eq!(small.dimensions(), expected, "scale {scale}");
        let direct = image::imageops::resize(&page, expected.0, expected.1, FilterType::Triangle);
        let mean = |image: &GrayImage| image.pixels().map(|p| f64::from(p.0[0])).sum::<f64>() / image.len() as f64;
        assert!((mean(&small) - mean(&direct)).abs() < 2.0, "scale {scale}: {} vs {}", mean(&small), mean(&direct));
    }
}

/// A synthetic receipt: bars of "text" on white paper, `lines` rows of `line` px each.
fn paper(width: u32, height: u32, line: u32) -> GrayImage {
    let mut image = GrayImage::from_pixel(width, height, Luma([235]));
    let mut y = line;
    while y + line < height - line {
        // Words start at a different place on each line, as in real text.
        let shift = (y / line) * 7 % 13;
        for row in y..y + line {
            for x in width / 10..width * 9 / 10 {
                if !((x + shift * line / 4) / (line / 2).max(1)).is_multiple_of(3) {
                    image.put_pixel(x, row, Luma([30]));
                }
            }
        }
        y += line * 2;
    }
    image
}

fn info(image: &GrayImage) -> ImageInfo {
    ImageInfo { media_type: MediaType::Png, width: image.width(), height: image.height() }
}

#[test]
fn a_receipt_on_a_dark_table_is_cropped_and_a_scan_is_not() {
    let receipt = paper(300, 600, 10);
    let mut photo = GrayImage::from_pixel(800, 1000, Luma([60]));
    image::imageops::overlay(&mut photo, &receipt, 250, 200);
    let (left, top, width, height) = find_paper(&photo).expect("paper found");
    assert!(left <= 250 && left + 40 >= 250, "left {left}");
    assert!(top <= 200 && top + 40 >= 200, "top {top}");
    assert!((300..=360).contains(&width) && (600..=680).contains(&height), "{width}×{height}");
    assert_eq!(find_paper(&paper(600, 900, 10)), None);
}

#[test]
fn skew_is_measured_and_corrected() {
    let straight = paper(600, 800, 8);
    for angle in [-3.0f32, 2.0, 4.5] {
        let tilted = rotate(&straight, angle, 235);
        let measured = estimate_skew(&sauvola(&tilted, 31, 0.3));
        assert!((measured - angle).abs() <= 0.3, "rotated {angle}°, measured {measured}°");
    }
    assert!(estimate_skew(&sauvola(&straight, 31, 0.3)).abs() <= 0.2);
}

#[test]
fn small_print_is_enlarged_to_the_line_height_tesseract_reads_best() {
    let small = paper(400, 700, 8);
    assert!((line_height(&small).expect("lines") - 8.0).abs() <= 1.0);
    let prepared = preprocess_with(DynamicImage::ImageLuma8(small.clone()), info(&small), Steps::ALL);
    assert!(prepared.scale > 2.0, "scale {}", prepared.scale);
    let large = paper(2000, 2400, 80);
    let prepared = preprocess_with(DynamicImage::ImageLuma8(large.clone()), info(&large), Steps::ALL);
    assert!(prepared.scale < 1.0 && prepared.gray.width() <= MAX_WIDTH, "scale {}", prepared.scale);
}

#[test]
fn a_sideways_photo_is_noticed() {
    let upright = paper(500, 700, 8);
    assert!(!looks_sideways(&sauvola(&upright, 31, 0.3)));
    assert!(looks_sideways(&sauvola(&image::imageops::rotate90(&upright), 31, 0.3)));
}

#[test]
fn uneven_light_is_binarised_locally() {
    let mut shaded = paper(600, 800, 10);
    for (x, _, pixel) in shaded.enumerate_pixels_mut() {
        // Paper from 235 on the left to 120 on the right; ink stays darker than the paper.
        let light = 1.0 - 0.5 * x as f32 / 600.0;
        pixel.0[0] = (f32::from(pixel.0[0]) * light) as u8;
    }
    assert!(unevenly_lit(&shaded));
    assert!(!unevenly_lit(&paper(600, 800, 10)));
    let binary = sauvola(&shaded, 41, 0.25);
    // Paper is white on both sides, ink black on both sides.
    assert_eq!(binary.get_pixel(30, 2).0[0], 255);
    assert_eq!(binary.get_pixel(570, 2).0[0], 255);
    assert_eq!(binary.get_pixel(70, 12).0[0], 0);
    assert_eq!(binary.get_pixel(530, 12).0[0], 0);
}

#[test]
fn faint_print_is_stretched_to_full_contrast() {
    let mut faint = GrayImage::from_pixel(100, 100, Luma([245]));
    for x in 10..90 {
        faint.put_pixel(x, 50, Luma([200]));
    }
    faint.put_pixel(0, 0, Luma([0]));
    let stretched = stretch_contrast(&faint, 0.005, 0.5);
    assert_eq!(stretched.get_pixel(50, 50).0[0], 0, "faint ink becomes black");
    assert_eq!(stretched.get_pixel(50, 20).0[0], 255, "paper becomes white");
}
