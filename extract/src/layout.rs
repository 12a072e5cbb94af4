//! The OCR page as extraction sees it: text lines with boxes and confidences, grouped into rows.
//!
//! Both Tesseract output and ground-truth line boxes (`x1,y1,…,TEXT` files) become a [`Page`], so
//! extraction can be developed and tested on either. Receipts print a label on the left and its
//! amount on the right; OCR often returns them as separate lines, so [`Page::rows`] merges lines
//! that share a baseline band into one row, left to right.

/// An axis-aligned box in image pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BoundingBox {
    /// Left edge.
    pub left: i32,
    /// Top edge.
    pub top: i32,
    /// Right edge.
    pub right: i32,
    /// Bottom edge.
    pub bottom: i32,
}

impl BoundingBox {
    /// Height in pixels (at least 1).
    pub fn height(&self) -> i32 {
        (self.bottom - self.top).max(1)
    }

    /// Vertical centre.
    pub fn center_y(&self) -> i32 {
        (self.top + self.bottom) / 2
    }

    /// The smallest box holding both.
    pub fn union(&self, other: &BoundingBox) -> BoundingBox {
        BoundingBox {
            left: self.left.min(other.left),
            top: self.top.min(other.top),
            right: self.right.max(other.right),
            bottom: self.bottom.max(other.bottom),
        }
    }
}

/// One line of text as OCR returned it.
#[derive(Clone, Debug, PartialEq)]
pub struct TextLine {
    /// The text, words separated by single spaces.
    pub text: String,
    /// Where it is.
    pub bbox: BoundingBox,
    /// Mean word confidence in 0–1 (1 for ground truth).
    pub confidence: f64,
}

/// A page of OCR output.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    /// Lines in reading order.
    pub lines: Vec<TextLine>,
    /// Page width in pixels (0 when unknown).
    pub width: i32,
    /// Page height in pixels (0 when unknown).
    pub height: i32,
}

/// Lines that sit side by side on the page, joined left to right.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The row's text, its lines joined by single spaces.
    pub text: String,
    /// The union of its lines' boxes.
    pub bbox: BoundingBox,
    /// The lowest confidence of its lines.
    pub confidence: f64,
}

impl Page {
    /// Moves every box by `offset` (a crop's origin), so that boxes read on a crop are in the
    /// original image's pixels.
    pub fn shift(&mut self, offset: (u32, u32)) {
        let (dx, dy) = (i32::try_from(offset.0).unwrap_or(0), i32::try_from(offset.1).unwrap_or(0));
        if (dx, dy) == (0, 0) {
            return;
        }
        for line in &mut self.lines {
            line.bbox = BoundingBox {
                left: line.bbox.left + dx,
                top: line.bbox.top + dy,
                right: line.bbox.right + dx,
                bottom: line.bbox.bottom + dy,
            };
        }
    }

    /// A page from plain text, one line per text line, with synthetic boxes (for tests and for
    /// OCR engines that give no layout).
    pub fn from_text(text: &str) -> Page {
        let lines: Vec<TextLine> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .enumerate()
            .map(|(index, line)| {
                let top = i32::try_from(index).unwrap_or(i32::MAX / 40) * 30;
                TextLine {
                    text: line.split_whitespace().collect::<Vec<_>>().join(" "),
                    bbox: BoundingBox { left: 0, top, right: 600, bottom: top + 20 },
                    confidence: 1.0,
                }
            })
            .collect();
        let height = lines.last().map_or(0, |line| line.bbox.bottom);
        Page { lines, width: 600, height }
    }

    /// A page from ground-truth box lines: `x1,y1,x2,y2,x3,y3,x4,y4,TEXT` (TEXT may hold commas).
    pub fn from_box_csv(csv: &str) -> Page {
        let mut lines = Vec::new();
        for raw in csv.lines() {
            let fields: Vec<&str> = raw.splitn(9, ',').collect();
            if fields.len() < 9 {
                continue;
            }
            let coordinates: Vec<i32> = fields[..8].iter().filter_map(|field| field.trim().parse().ok()).collect();
            if coordinates.len() != 8 {
                continue;
            }
            let xs = [coordinates[0], coordinates[2], coordinates[4], coordinates[6]];
            let ys = [coordinates[1], coordinates[3], coordinates[5], coordinates[7]];
            let text = fields[8].split_whitespace().collect::<Vec<_>>().join(" ");
            if text.is_empty() {
                continue;
            }
            lines.push(TextLine {
                text,
                bbox: BoundingBox {
                    left: xs.iter().copied().min().unwrap_or(0),
                    top: ys.iter().copied().min().unwrap_or(0),
                    right: xs.iter().copied().max().unwrap_or(0),
                    bottom: ys.iter().copied().max().unwrap_or(0),
                },
                confidence: 1.0,
            });
        }
        let width = lines.iter().map(|line| line.bbox.right).max().unwrap_or(0);
        let height = lines.iter().map(|line| line.bbox.bottom).max().unwrap_or(0);
        Page { lines, width, height }
    }

    /// The whole text, one line per line.
    pub fn text(&self) -> String {
        self.lines.iter().map(|line| line.text.as_str()).collect::<Vec<_>>().join("\n")
    }

    /// Lines merged into rows: a line joins a row when their vertical extents overlap by more than
    /// half of the smaller height, measured along the page's slant ([`slant`]) so that a label and
    /// its amount on a skewed photo still share a row. Rows are ordered top to bottom, lines within
    /// a row left to right.
    pub fn rows(&self) -> Vec<Row> {
        self.row_groups()
            .into_iter()
            .map(|group| Row {
                text: group.iter().map(|line| line.text.as_str()).collect::<Vec<_>>().join(" "),
                bbox: group.iter().skip(1).fold(group[0].bbox, |acc, line| acc.union(&line.bbox)),
                confidence: group.iter().map(|line| line.confidence).fold(1.0, f64::min),
            })
            .collect()
    }

    /// The lines of each row of [`Page::rows`], left to right.
    pub fn row_groups(&self) -> Vec<Vec<&TextLine>> {
        let slope = slant(&self.lines);
        // Each line's box as it would sit on a straight page (only the vertical position moves).
        let level = |line: &TextLine| {
            let centre_x = f64::from(line.bbox.left + line.bbox.right) / 2.0;
            let shift = (slope * centre_x).round() as i32;
            BoundingBox { top: line.bbox.top - shift, bottom: line.bbox.bottom - shift, ..line.bbox }
        };
        let mut order: Vec<(&TextLine, BoundingBox)> = self.lines.iter().map(|line| (line, level(line))).collect();
        order.sort_by_key(|(_, bbox)| (bbox.center_y(), bbox.left));
        let mut groups: Vec<Vec<(&TextLine, BoundingBox)>> = Vec::new();
        for (line, levelled) in order {
            // A line joins the row above when it sits beside one of its lines, overlapping it by
            // more than half the smaller height, and under none of them (a column holds one line
            // a row).
            let joined = groups.last_mut().filter(|group| {
                group.iter().all(|(_, member)| !stacked(member, &levelled))
                    && group.iter().any(|(_, member)| overlap_share(member, &levelled) > 0.5)
            });
            match joined {
                Some(group) => group.push((line, levelled)),
                None => groups.push(vec![(line, levelled)]),
            }
        }
        // A line taken into a row before its own partner came: a label whose amount sits lower
        // (a tall `TOTAL` beside the tax's amount and its own) moves to the next row when its
        // centre is less than half as far from a line there as from the nearest line beside it
        // in its row, and it sits under no line there.
        let centre = |bbox: &BoundingBox| f64::from(bbox.top + bbox.bottom) / 2.0;
        for index in 1..groups.len() {
            let (above, below) = groups.split_at_mut(index);
            let (above, below) = (&mut above[index - 1], &mut below[0]);
            let mut position = 0;
            while position < above.len() && above.len() > 1 {
                let levelled = above[position].1;
                let distance = |member: &BoundingBox| (centre(member) - centre(&levelled)).abs();
                let own = above
                    .iter()
                    .enumerate()
                    .filter(|(other, _)| *other != position)
                    .map(|(_, (_, member))| distance(member))
                    .fold(f64::INFINITY, f64::min);
                let next = below
                    .iter()
                    .filter(|(_, member)| overlap_share(member, &levelled) > 0.5)
                    .map(|(_, member)| distance(member))
                    .fold(f64::INFINITY, f64::min);
                if next * 2.0 < own && below.iter().all(|(_, member)| !stacked(member, &levelled)) {
                    below.push(above.remove(position));
                } else {
                    position += 1;
                }
            }
        }
        groups
            .into_iter()
            .map(|group| {
                let mut group: Vec<&TextLine> = group.into_iter().map(|(line, _)| line).collect();
                group.sort_by_key(|line| line.bbox.left);
                group
            })
            .collect()
    }
}

/// How much two boxes overlap vertically, as a share of the smaller height.
fn overlap_share(a: &BoundingBox, b: &BoundingBox) -> f64 {
    let overlap = a.bottom.min(b.bottom) - a.top.max(b.top);
    f64::from(overlap.max(0)) / f64::from(a.height().min(b.height()).max(1))
}

/// Whether two boxes share a column: they overlap horizontally by more than a third of the
/// narrower one (boxes side by side may touch or overlap a little, as detectors grow them).
fn stacked(a: &BoundingBox, b: &BoundingBox) -> bool {
    let shared = a.right.min(b.right) - a.left.max(b.left);
    let narrower = (a.right - a.left).min(b.right - b.left);
    shared * 3 > narrower
}

/// The page's slant, in pixels down per pixel right: the slope along which the lines side by
/// side (a label and its amount) line up best. Photos taken at an angle print each row as a
/// slanted band, so a label's own amount can sit nearer the next row's label than its own.
///
/// Each candidate slope between −0.15 and 0.15 (about ±8.5°) is scored by how far every line sits
/// from its nearest partner beside it (a line it does not overlap horizontally), in line heights
/// and capped at half a line. A straight page keeps 0 unless a slope fits clearly better.
pub fn slant(lines: &[TextLine]) -> f64 {
    if lines.len() < 4 {
        return 0.0;
    }
    let centres: Vec<(f64, f64, f64)> = lines
        .iter()
        .map(|line| {
            let b = &line.bbox;
            (f64::from(b.left + b.right) / 2.0, f64::from(b.top + b.bottom) / 2.0, f64::from(b.height()))
        })
        .collect();
    // Each line's possible partners (the lines it does not overlap horizontally), found once.
    let beside = |a: &TextLine, b: &TextLine| a.bbox.right <= b.bbox.left || b.bbox.right <= a.bbox.left;
    let partners: Vec<Vec<usize>> =
        lines.iter().map(|line| (0..lines.len()).filter(|&j| beside(line, &lines[j])).collect()).collect();
    let cost = |slope: f64| -> f64 {
        let mut total = 0.0;
        for ((x, y, height), partners) in centres.iter().zip(&partners) {
            let own = y - slope * x;
            let nearest = partners
                .iter()
                .map(|&j| (own - (centres[j].1 - slope * centres[j].0)).abs())
                .fold(f64::INFINITY, f64::min);
            total += (nearest / height).min(0.5);
        }
        total
    };
    let straight = cost(0.0);
    let (best, best_cost) = (-60..=60)
        .map(|step| f64::from(step) * 0.0025)
        .map(|slope| (slope, cost(slope)))
        .fold((0.0, straight), |best, candidate| if candidate.1 < best.1 { candidate } else { best });
    // Only a clear improvement moves a page off straight.
    if best_cost < straight * 0.7 { best } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_csv_lines_become_rows_left_to_right() {
        let page = Page::from_box_csv(
            "245,639,293,639,293,658,245,658,TOTAL:\n401,640,443,640,443,657,401,657,9.00\n\
             205,744,243,744,243,765,205,765,CASH\n402,748,441,748,441,763,402,763,10.00\n\
             10,800,50,800,50,820,50,810,NO.53 55,57 & 59",
        );
        let rows: Vec<String> = page.rows().into_iter().map(|row| row.text).collect();
        assert_eq!(rows, ["TOTAL: 9.00", "CASH 10.00", "NO.53 55,57 & 59"]);
    }

    /// A photo taken at an angle: each amount sits 0.09 px lower per px to the right, so the
    /// amount of `SUMME` overlaps the next label more than its own.
    #[test]
    fn a_slanted_page_pairs_each_label_with_its_own_amount() {
        let rows =
            [("KASE", "4,92"), ("MWST 20%", "13,85"), ("SUMME", "83,08"), ("BAR", "90,00"), ("RUCKGELD", "6,92")];
        let line = |text: &str, left: i32, top: i32| TextLine {
            text: text.to_owned(),
            bbox: BoundingBox { left, top, right: left + 60, bottom: top + 30 },
            confidence: 1.0,
        };
        let page = |drop: i32| {
            let mut lines = Vec::new();
            for (index, (label, amount)) in rows.iter().enumerate() {
                let top = 100 + 36 * index as i32;
                lines.push(line(label, 80, top));
                lines.push(line(amount, 480, top + drop));
            }
            Page { lines, width: 600, height: 400 }
        };
        let slanted = page((0.09 * 400.0) as i32);
        let slope = slant(&slanted.lines);
        assert!((slope - 0.09).abs() < 0.01, "{slope}");
        let found: Vec<String> = slanted.rows().into_iter().map(|row| row.text).collect();
        assert_eq!(found, ["KASE 4,92", "MWST 20% 13,85", "SUMME 83,08", "BAR 90,00", "RUCKGELD 6,92"]);
        // The same page held straight keeps a slope of 0, and the same rows.
        let straight = page(0);
        assert_eq!(slant(&straight.lines), 0.0);
        let found: Vec<String> = straight.rows().into_iter().map(|row| row.text).collect();
        assert_eq!(found, ["KASE 4,92", "MWST 20% 13,85", "SUMME 83,08", "BAR 90,00", "RUCKGELD 6,92"]);
    }

    /// A phone photo read region by region: `TOTAL` is printed large, and its box reaches up
    /// beside the tax's amount before its own amount comes.
    #[test]
    fn a_tall_label_goes_to_the_row_of_the_amount_it_overlaps_most() {
        let line = |text: &str, left: i32, top: i32, right: i32, bottom: i32| TextLine {
            text: text.to_owned(),
            bbox: BoundingBox { left, top, right, bottom },
            confidence: 1.0,
        };
        let page = Page {
            lines: vec![
                line("SUB TOTAL", 226, 762, 357, 816),
                line("81.00", 550, 772, 639, 819),
                line("PHILLY PA SALES TAX", 290, 841, 582, 903),
                line("1.84", 560, 883, 640, 930),
                line("TOTAL", 213, 895, 318, 991),
                line("83.44", 544, 916, 646, 996),
            ],
            width: 747,
            height: 1000,
        };
        let rows: Vec<String> = page.rows().into_iter().map(|row| row.text).collect();
        assert_eq!(rows, ["SUB TOTAL 81.00", "PHILLY PA SALES TAX", "1.84", "TOTAL 83.44"]);
    }

    #[test]
    fn stacked_lines_stay_apart() {
        let page = Page::from_text("FIRST LINE\nSECOND LINE");
        assert_eq!(page.rows().len(), 2);
    }
}
