//! Letters and invoices: pages set in columns, whose header is read column by column.
//!
//! A receipt prints one column: each row is one thing, or a label and its amount. An invoice
//! prints the seller's block at the left and the invoice's number and dates at the right on the
//! same lines, or the seller and the buyer side by side. Read row by row, the seller's name runs
//! into the document's title (`SCHNEIDER SOFTWARE GMBH RECHNUNG`) and its street into the invoice
//! number. [`header_reading`] gives the merchant reading the header as a reader sees it: each
//! column's block top to bottom, the left column first, with a sender line above a window address
//! (`Firma GmbH · Hauptstraße 1 · 12345 Stadt`) broken into its parts.

use crate::layout::{BoundingBox, Page, TextLine};

/// A page is a document (a letter, an invoice) rather than a receipt when its text spans at least
/// this many line heights across. A4 set in 10 pt spans about 48, an 80 mm till roll about 25, a
/// phone photo of a receipt rarely more than 32.
const DOCUMENT_SPAN: f64 = 38.0;
/// Lines of one row further apart than this many line heights are separate cells.
pub const CELL_GAP: f64 = 1.5;
/// A row of this many cells is a table's head or one of its rows: the header's blocks end there.
const TABLE_CELLS: usize = 4;
/// What separates the parts of a sender line.
const SENDER_SEPARATORS: [&str; 3] = [" · ", " | ", " • "];
/// What OCR makes of a `·` in small print.
const READ_SEPARATORS: [&str; 3] = [" - ", " « ", " * "];
/// Print below this share of the page's usual line height is small (a sender line's 7 pt beside
/// 10 pt text).
const SMALL_PRINT: f64 = 0.85;

/// One row of the header as read: a cell of the page's row `row`, or a part of one.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadingRow {
    /// The text.
    pub text: String,
    /// Its height in pixels.
    pub height: i32,
    /// The index of the row of [`Page::rows`] it comes from.
    pub row: usize,
    /// Above the document's table (its head, or its first row of four cells or more): the
    /// header, where the parties are.
    pub header: bool,
    /// A part of a sender line (`Firma GmbH · Hauptstraße 1 · 12345 Stadt`): the sender's name,
    /// street or town.
    pub sender: bool,
}

/// A run of lines of one row with no wide gap between them.
struct Cell {
    text: String,
    bbox: BoundingBox,
}

fn cells(group: &[&TextLine]) -> Vec<Cell> {
    let mut cells: Vec<Cell> = Vec::new();
    for line in group {
        match cells.last_mut() {
            Some(cell)
                if f64::from(line.bbox.left - cell.bbox.right)
                    <= CELL_GAP * f64::from(line.bbox.height().max(cell.bbox.height())) =>
            {
                cell.text.push(' ');
                cell.text.push_str(&line.text);
                cell.bbox = cell.bbox.union(&line.bbox);
            }
            _ => cells.push(Cell { text: line.text.clone(), bbox: line.bbox }),
        }
    }
    cells
}

/// The horizontal extent of a page's text and its median line height.
fn extent(page: &Page) -> Option<(i32, i32, i32)> {
    if page.lines.len() < 6 {
        return None;
    }
    let mut heights: Vec<i32> = page.lines.iter().map(|line| line.bbox.height()).collect();
    heights.sort_unstable();
    let left = page.lines.iter().map(|line| line.bbox.left).min().unwrap_or(0);
    let right = page.lines.iter().map(|line| line.bbox.right).max().unwrap_or(0);
    Some((left, right, heights[heights.len() / 2]))
}

/// Whether `page` is set as a document, wide in line heights (see [`DOCUMENT_SPAN`]).
pub fn is_document(page: &Page) -> bool {
    extent(page).is_some_and(|(left, right, median)| f64::from(right - left) >= DOCUMENT_SPAN * f64::from(median))
}

/// Cells joined into one: their texts in order, the union of their boxes.
fn joined<'a>(cells: impl IntoIterator<Item = &'a Cell>) -> Option<Cell> {
    cells.into_iter().fold(None, |joined: Option<Cell>, cell| {
        Some(match joined {
            Some(joined) => {
                Cell { text: format!("{} {}", joined.text, cell.text), bbox: joined.bbox.union(&cell.bbox) }
            }
            None => Cell { text: cell.text.clone(), bbox: cell.bbox },
        })
    })
}

/// The rows of a document's page as its reader takes them (see the module's documentation), or
/// `None` when the page is not a document: receipts are read row by row.
pub fn header_reading(page: &Page) -> Option<Vec<ReadingRow>> {
    if !is_document(page) {
        return None;
    }
    let (left, right, median) = extent(page)?;
    let middle = (left + right) / 2;
    let rows: Vec<Vec<Cell>> = page.row_groups().iter().map(|group| cells(group)).collect();
    let zone = rows.iter().position(|cells| cells.len() >= TABLE_CELLS).unwrap_or(rows.len());
    let mut reading = Vec::new();
    let push = |reading: &mut Vec<ReadingRow>, cell: &Cell, row: usize| {
        // In small print, OCR reads a sender line's `·` as `-`, `«` or `*` too.
        let small = f64::from(cell.bbox.height()) < SMALL_PRINT * f64::from(median);
        let separator = SENDER_SEPARATORS
            .iter()
            .chain(if small { &READ_SEPARATORS[..] } else { &[] })
            .find(|separator| cell.text.matches(**separator).count() >= 2);
        let parts: Vec<&str> = match separator {
            Some(separator) => cell.text.split(separator).collect(),
            None => vec![cell.text.as_str()],
        };
        for part in parts.into_iter().map(str::trim).filter(|part| !part.is_empty()) {
            let sender = separator.is_some();
            reading.push(ReadingRow { text: part.to_owned(), height: cell.bbox.height(), row, header: true, sender });
        }
    };
    // Bands of rows between rows of one cell across the middle (a centred title); in each band
    // the left column's cells, then the right column's, a cell's column being where it starts.
    let mut band: Vec<usize> = Vec::new();
    let flush = |reading: &mut Vec<ReadingRow>, band: &mut Vec<usize>| {
        for right_column in [false, true] {
            for &row in band.iter() {
                if let Some(side) = joined(rows[row].iter().filter(|cell| (cell.bbox.left >= middle) == right_column)) {
                    push(reading, &side, row);
                }
            }
        }
        band.clear();
    };
    for (index, cells) in rows.iter().enumerate().take(zone) {
        if let [only] = cells.as_slice()
            && only.bbox.left < middle
            && only.bbox.right > middle
        {
            flush(&mut reading, &mut band);
            push(&mut reading, only, index);
        } else {
            band.push(index);
        }
    }
    flush(&mut reading, &mut band);
    for (index, cells) in rows.iter().enumerate().skip(zone) {
        if let Some(Cell { text, bbox }) = joined(cells) {
            reading.push(ReadingRow { text, height: bbox.height(), row: index, header: false, sender: false });
        }
    }
    Some(reading)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, left: i32, top: i32) -> TextLine {
        let width = i32::try_from(text.chars().count()).unwrap_or(0) * 16;
        TextLine {
            text: text.to_owned(),
            bbox: BoundingBox { left, top, right: left + width, bottom: top + 28 },
            confidence: 1.0,
        }
    }

    /// An A4 invoice at 200 dpi: the seller's block beside the title and the invoice's dates,
    /// then the buyer's block, then the table.
    fn invoice() -> Page {
        let lines = vec![
            line("Schneider Software GmbH", 160, 140),
            line("Rechnung", 1300, 140),
            line("Hauptstraße 132", 160, 200),
            line("10115 Berlin", 160, 240),
            line("Rechnungsnummer:", 1000, 240),
            line("2026-1244", 1320, 240),
            line("Rechnungsdatum:", 1000, 280),
            line("02.04.2026", 1320, 280),
            line("Rechnungsempfänger", 160, 400),
            line("Wagner Logistik e.K.", 160, 440),
            line("Beschreibung", 160, 600),
            line("Menge", 800, 600),
            line("Einzelpreis", 1000, 600),
            line("Betrag", 1400, 600),
            line("Beratung", 160, 650),
            line("2", 800, 650),
            line("192,00", 1000, 650),
            line("384,00", 1400, 650),
        ];
        Page { lines, width: 1654, height: 2339 }
    }

    #[test]
    fn an_invoice_header_is_read_column_by_column() {
        let reading = header_reading(&invoice()).expect("a document");
        let texts: Vec<&str> = reading.iter().map(|row| row.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Schneider Software GmbH",
                "Hauptstraße 132",
                "10115 Berlin",
                "Rechnungsempfänger",
                "Wagner Logistik e.K.",
                "Rechnung",
                "Rechnungsnummer: 2026-1244",
                "Rechnungsdatum: 02.04.2026",
                "Beschreibung Menge Einzelpreis Betrag",
                "Beratung 2 192,00 384,00",
            ]
        );
        // Each part keeps the page row it came from.
        assert_eq!(reading[0].row, 0);
        assert_eq!(reading[5].row, 0);
        assert_eq!(reading[6].row, 2);
    }

    #[test]
    fn a_sender_line_is_broken_into_its_parts() {
        let mut page = invoice();
        page.lines.insert(0, line("Schneider Software GmbH · Hauptstraße 132 · 10115 Berlin", 160, 60));
        let reading = header_reading(&page).expect("a document");
        let texts: Vec<&str> = reading.iter().take(3).map(|row| row.text.as_str()).collect();
        assert_eq!(texts, ["Schneider Software GmbH", "Hauptstraße 132", "10115 Berlin"]);
    }

    #[test]
    fn a_seller_name_wider_than_half_the_page_still_leaves_the_title_to_its_column() {
        let mut page = invoice();
        page.lines[0] = line("Impianti Elettrici Colombo S.p.A. Roma", 160, 140);
        let reading = header_reading(&page).expect("a document");
        assert_eq!(reading[0].text, "Impianti Elettrici Colombo S.p.A. Roma");
        assert_eq!(reading[5].text, "Rechnung");
    }

    #[test]
    fn a_sender_line_in_small_print_read_with_dashes_is_broken_too() {
        let mut page = invoice();
        let mut sender = line("Schneider Software GmbH - Hauptstraße 132 - 10115 Berlin", 160, 60);
        sender.bbox.bottom = sender.bbox.top + 18;
        page.lines.insert(0, sender);
        let reading = header_reading(&page).expect("a document");
        assert!(reading[..3].iter().all(|row| row.sender), "{reading:?}");
        assert_eq!(reading[2].text, "10115 Berlin");
        // In the body's own size, dashes are part of the text (`São Paulo - SP`).
        let mut page = invoice();
        page.lines.insert(0, line("Rua Augusta, 194 - São Paulo - SP", 160, 60));
        let reading = header_reading(&page).expect("a document");
        assert_eq!(reading[0].text, "Rua Augusta, 194 - São Paulo - SP");
        assert!(!reading[0].sender);
    }

    #[test]
    fn a_receipt_is_not_a_document() {
        let text = "ALDI SÜD\nHauptstraße 1\n45127 Essen\nMilch 1,09\nBrot 2,49\nSUMME 3,58\nBAR 5,00";
        assert_eq!(header_reading(&Page::from_text(text)), None);
    }
}
