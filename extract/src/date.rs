//! Reading the purchase date.
//!
//! Receipts print dates in a dozen formats (`25/12/2018`, `25-12-18`, `25 DEC 2018`,
//! `2018-12-25`, `DEC 25, 2018`, `20181225`). A numeric date whose first two parts could each be
//! the day or the month is ambiguous: it is read day-first unless the receipt's currency says
//! otherwise (USD receipts are month-first), and the decision is reported as [`DateOrder`].

use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::Regex;

/// How a numeric date was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateOrder {
    /// Year first (`2018-12-25`) or a month name: no ambiguity.
    Unambiguous,
    /// Day first, forced by the numbers (`25/12/2018`).
    DayFirst,
    /// Month first, forced by the numbers (`12/25/2018`).
    MonthFirst,
    /// Both readings valid; read day-first by convention.
    AssumedDayFirst,
    /// Both readings valid; read month-first because the receipt is in US dollars.
    AssumedMonthFirst,
}

impl DateOrder {
    /// The decision as reported in the result (`None` when there was nothing to decide).
    pub fn label(&self) -> Option<&'static str> {
        match self {
            Self::Unambiguous => None,
            Self::DayFirst => Some("day_first"),
            Self::MonthFirst => Some("month_first"),
            Self::AssumedDayFirst => Some("day_first_assumed"),
            Self::AssumedMonthFirst => Some("month_first_assumed"),
        }
    }
}

/// A date found in a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoundDate {
    /// The calendar date.
    pub date: NaiveDate,
    /// How its order was decided.
    pub order: DateOrder,
}

// One pattern per separator: the regex crate has no back-references, and a single pattern with
// mixed separators would swallow the start of a real date (`#19- 10/03/2018`).
static NUMERIC: LazyLock<[Regex; 3]> = LazyLock::new(|| {
    [r"/", r"\-", r"\."].map(|separator| {
        Regex::new(&format!(
            r"(?:^|[^\d]){{1}}(\d{{1,4}})\s?({separator})\s?(\d{{1,2}})\s?({separator})\s?(\d{{2,4}})(?:[^\d]|$)"
        ))
        .unwrap_or_else(|error| panic!("invalid date pattern: {error}"))
    })
});
static DAY_MONTH_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:^|[^\d])(\d{1,2})(?:ST|ND|RD|TH|ER)?[\s\-/.]*([A-ZÄÉÈÛÇ]{3,9})[\s\-/.,']*(\d{4}|\d{2})(?:[^\d]|$)",
    )
    .unwrap_or_else(|error| panic!("invalid date pattern: {error}"))
});
static MONTH_NAME_DAY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:^|[^A-Z])([A-Z]{3}[A-ZÄÉÈÛÇ]*)\.?\s*(\d{1,2})(?:(?:[,.]\s*|\s+)(\d{4})|\s*'\s*(\d{2}))(?:[^\d]|$)",
    )
    .unwrap_or_else(|error| panic!("invalid date pattern: {error}"))
});
// A time printed against the year, with no space (`12/29/20178:38PM`, `09/10/173:28PM`,
// `Jan 28,20185:48`): a space goes back between them before dates are read.
static YEAR_THEN_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(^|[^\d])(20[0-2]\d)(\d{1,2}:[0-5]\d)").unwrap_or_else(|error| panic!("invalid date pattern: {error}"))
});
static SHORT_YEAR_THEN_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\d{1,2}[/.\-]\d{1,2}[/.\-])(\d{2})(\d{1,2}:[0-5]\d)")
        .unwrap_or_else(|error| panic!("invalid date pattern: {error}"))
});
// A slashed date run into the number before it (`Order986206/08/19`): read only when the line
// holds no other date.
static SLASHED_ANYWHERE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?:[^\d]|$)")
        .unwrap_or_else(|error| panic!("invalid date pattern: {error}"))
});
// Point-of-sale systems print `Oct011701:44PM`, `APR04'166:09PM`, `Nov12'1605:41PM`: the month's
// name, the day, the year's last two digits (glued or after an apostrophe), then the time.
static MONTH_DAY_SHORT_YEAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:^|[^A-Z])([A-Z0][A-Z]{2})\.?\s?(\d{2})(?:'\s?)?(\d{2})(?:\s?\d{1,2}:[0-5]\d|[^\d]|$)")
        .unwrap_or_else(|error| panic!("invalid date pattern: {error}"))
});
// The same with the apostrophe lost to a space, which only the time after it tells apart from a
// day and a count (`Jun22 18 07:59PM`, `Sep30 1707:36PM`).
static MONTH_DAY_SPACE_YEAR_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:^|[^A-Z])([A-Z0][A-Z]{2})\.?\s?(\d{1,2})\s(\d{2})\s?\d{1,2}:[0-5]\d")
        .unwrap_or_else(|error| panic!("invalid date pattern: {error}"))
});
// `16Feb1921:31`: a two-digit year run into a two-digit hour after a month's name.
static NAME_YEAR_THEN_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([A-Za-z]{3}'?)(\d{2})(\d{2}:[0-5]\d)").unwrap_or_else(|error| panic!("invalid date pattern: {error}"))
});
static COMPACT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^\d])(20\d{2})(\d{2})(\d{2})(?:[^\d]|$)")
        .unwrap_or_else(|error| panic!("invalid date pattern: {error}"))
});

/// The earliest year a receipt is read with: older prints are misreadings.
pub const EARLIEST_YEAR: i32 = 1990;
/// The latest year a printed year is read as (dates after today are refused later, by the caller
/// that knows today).
const LATEST_YEAR: i32 = 2099;

fn year(text: &str) -> Option<i32> {
    // OCR misreads the 0 of 20YY (`2618`, `2918`).
    let repaired;
    let text = if text.len() == 4 && text.starts_with('2') && !text[1..].starts_with('0') {
        repaired = format!("20{}", &text[2..]);
        repaired.as_str()
    } else {
        text
    };
    let value: i32 = text.parse().ok()?;
    let full = match text.len() {
        // Two digits are this century's: a `95` is far more often a misread or a code than 1995.
        2 => 2000 + value,
        4 => value,
        _ => return None,
    };
    (EARLIEST_YEAR..=LATEST_YEAR).contains(&full).then_some(full)
}

/// Month names in English, German, French, Spanish, Italian, Dutch, Portuguese and Malay, accents
/// removed. A printed word is a month when it is one of these or starts one (`DEC`, `DEZ.`,
/// `JUIL`, `SETT`), or one of the abbreviations that are not prefixes (`MRZ`, `MRT`).
const MONTH_NAMES: [&[&str]; 12] = [
    &["JANUARY", "JANUAR", "JANVIER", "ENERO", "GENNAIO", "JANUARI", "JANEIRO"],
    &["FEBRUARY", "FEBRUAR", "FEVRIER", "FEBRERO", "FEBBRAIO", "FEBRUARI", "FEVEREIRO"],
    &["MARCH", "MARZ", "MARS", "MARZO", "MAART", "MARCO", "MAC", "MRZ", "MRT"],
    &["APRIL", "AVRIL", "ABRIL", "APRILE"],
    &["MAY", "MAI", "MAYO", "MAGGIO", "MEI", "MAIO"],
    &["JUNE", "JUNI", "JUIN", "JUNIO", "GIUGNO", "JUNHO", "JUN"],
    &["JULY", "JULI", "JUILLET", "JULIO", "LUGLIO", "JULHO", "JULAI"],
    &["AUGUST", "AOUT", "AGOSTO", "AUGUSTUS", "OGOS"],
    &["SEPTEMBER", "SEPTEMBRE", "SEPTIEMBRE", "SETTEMBRE", "SETEMBRO"],
    &["OCTOBER", "OKTOBER", "OCTOBRE", "OCTUBRE", "OTTOBRE", "OUTUBRO"],
    &["NOVEMBER", "NOVEMBRE", "NOVIEMBRE", "NOVEMBRO"],
    &["DECEMBER", "DEZEMBER", "DECEMBRE", "DICIEMBRE", "DICEMBRE", "DEZEMBRO", "DISEMBER"],
];

fn month_from_name(name: &str) -> Option<u32> {
    let word: String = name
        .to_uppercase()
        .chars()
        .map(|c| match c {
            'É' | 'È' => 'E',
            'Û' => 'U',
            'Ä' => 'A',
            'Ç' => 'C',
            '0' => 'O',
            other => other,
        })
        .collect();
    if word.len() < 3 {
        return None;
    }
    // `JU` alone is June or July: three letters settle it except in French (`JUI…`), which
    // needs the fourth (`JUIN`, `JUIL`).
    if word == "JUI" {
        return None;
    }
    MONTH_NAMES
        .iter()
        .position(|names| names.iter().any(|full| full.starts_with(word.as_str())))
        .and_then(|index| u32::try_from(index + 1).ok())
}

/// A three-letter English month abbreviation with one letter misread (`MBY` for MAY), when only
/// one abbreviation is that close (`JUX` could be June or July, and is not read).
fn month_with_one_slip(name: &str) -> Option<u32> {
    const ABBREVIATIONS: [&str; 12] =
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
    // Words and currency codes one letter away from a month (`PAY`, `BAR`, `MYR`, `AUD`).
    const WORDS: [&str; 24] = [
        "PAY", "DAY", "BAY", "WAY", "SAY", "BAR", "CAR", "FAR", "WAR", "FEE", "DEL", "NOT", "NOW", "ACT", "CAN", "VAN",
        "MAN", "SUN", "FUN", "RUN", "MYR", "AUD", "SEK", "NOK",
    ];
    let word = name.to_uppercase();
    if word.len() != 3 || !word.chars().all(|c| c.is_ascii_alphabetic()) || WORDS.contains(&word.as_str()) {
        return None;
    }
    let close: Vec<usize> = ABBREVIATIONS
        .iter()
        .enumerate()
        .filter(|(_, abbreviation)| abbreviation.chars().zip(word.chars()).filter(|(a, b)| a != b).count() <= 1)
        .map(|(index, _)| index)
        .collect();
    match close.as_slice() {
        [index] => u32::try_from(index + 1).ok(),
        _ => None,
    }
}

/// A slashed date with a four-digit year whose day or month holds a `B`: a bold `8` (`0B/22/2015`).
static BOLD_EIGHT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([0-9B]{1,2})/([0-9B]{1,2})/((?:19|20)\d{2})\b")
        .unwrap_or_else(|error| panic!("invalid date pattern: {error}"))
});

/// Undo the usual OCR confusions inside digit runs (`2O18` → `2018`, `l2` → `12`), and a bold `8`
/// read as `B` inside a slashed date.
fn fix_digit_confusions(text: &str) -> String {
    let text = BOLD_EIGHT.replace_all(text, |captures: &regex::Captures<'_>| {
        format!("{}/{}/{}", captures[1].replace('B', "8"), captures[2].replace('B', "8"), &captures[3])
    });
    let chars: Vec<char> = text.chars().collect();
    let digitish = |c: char| c.is_ascii_digit() || matches!(c, 'O' | 'o' | 'I' | 'l' | '|');
    chars
        .iter()
        .enumerate()
        .map(|(index, &c)| {
            let neighbour_digit = (index > 0 && chars[index - 1].is_ascii_digit())
                || chars.get(index + 1).is_some_and(char::is_ascii_digit);
            let within_run =
                (index > 0 && digitish(chars[index - 1])) || chars.get(index + 1).is_some_and(|n| digitish(*n));
            match c {
                'O' | 'o' if neighbour_digit && within_run => '0',
                'I' | 'l' | '|' | 'J' if neighbour_digit && within_run => '1',
                other => other,
            }
        })
        .collect()
}

/// Digits Tesseract confuses in receipt fonts: a `1` read as `4` or `7`, a `0` read as `6` or `8`.
const CONFUSED: [(u8, u8); 4] = [(b'4', b'1'), (b'7', b'1'), (b'6', b'0'), (b'8', b'0')];

/// The numbers `text` becomes with one confused digit put right.
fn confusions(text: &str) -> impl Iterator<Item = u32> + '_ {
    let bytes = text.as_bytes();
    (0..bytes.len()).flat_map(move |position| {
        CONFUSED.iter().filter(move |(seen, _)| bytes[position] == *seen).filter_map(move |(_, meant)| {
            let mut fixed = bytes.to_vec();
            fixed[position] = *meant;
            std::str::from_utf8(&fixed).ok()?.parse().ok()
        })
    })
}

/// A numeric date whose day or month is impossible (`04/42/2017`, `46/06/2018`): when putting one
/// confused digit right gives exactly one valid date in the receipt's order, that is the date.
fn repaired(first: &str, second: &str, year: i32, month_first: bool) -> Option<FoundDate> {
    let (first_value, second_value) = (first.parse::<u32>().ok()?, second.parse::<u32>().ok()?);
    let candidates = confusions(first)
        .map(|fixed| (fixed, second_value))
        .chain(confusions(second).map(|fixed| (first_value, fixed)));
    let mut dates: Vec<NaiveDate> =
        candidates
            .filter_map(|(a, b)| {
                if month_first { NaiveDate::from_ymd_opt(year, a, b) } else { NaiveDate::from_ymd_opt(year, b, a) }
            })
            .collect();
    dates.dedup();
    let order = if month_first { DateOrder::MonthFirst } else { DateOrder::DayFirst };
    (dates.len() == 1).then(|| FoundDate { date: dates[0], order })
}

/// Every date in `text`, left to right. `month_first` says how to read an ambiguous numeric date.
pub fn dates_in(text: &str, month_first: bool) -> Vec<FoundDate> {
    date_spans(text, month_first).into_iter().map(|(date, _)| date).collect()
}

/// Every date in `text`, left to right, with the byte range it was printed in.
pub fn date_spans(text: &str, month_first: bool) -> Vec<(FoundDate, std::ops::Range<usize>)> {
    let text = fix_digit_confusions(text);
    let text = YEAR_THEN_TIME.replace_all(&text, "$1$2 $3");
    let text = SHORT_YEAR_THEN_TIME.replace_all(&text, "$1$2 $3");
    let text = NAME_YEAR_THEN_TIME.replace_all(&text, "$1$2 $3").into_owned();
    let mut found: Vec<(usize, usize, FoundDate)> = Vec::new();
    let slashed_anywhere = || SLASHED_ANYWHERE.captures_iter(&text).map(|captures| (captures, "/"));
    let numeric: Vec<(regex::Captures<'_>, &str)> = NUMERIC
        .iter()
        .flat_map(|pattern| pattern.captures_iter(&text))
        .map(|captures| {
            let separator = captures.get(2).map_or("", |m| m.as_str());
            (captures, separator)
        })
        .collect();
    let mut pending = vec![numeric];
    let mut tried_anywhere = false;
    while let Some(batch) = pending.pop() {
        for (captures, separator) in batch {
            let (a, b, c) = if captures.len() == 6 {
                (captures.get(1), captures.get(3), captures.get(5))
            } else {
                (captures.get(1), captures.get(2), captures.get(3))
            };
            let (Some(a), Some(b), Some(c)) = (a, b, c) else {
                continue;
            };
            if captures.len() == 6 && captures.get(4).map(|m| m.as_str()) != Some(separator) {
                continue;
            }
            let (a_text, b_text, c_text) = (a.as_str(), b.as_str(), c.as_str());
            let (Ok(first), Ok(second)) = (a_text.parse::<u32>(), b_text.parse::<u32>()) else {
                continue;
            };
            let candidate = if a_text.len() == 4 {
                let (Some(y), Ok(day)) = (year(a_text), c_text.parse::<u32>()) else {
                    continue;
                };
                NaiveDate::from_ymd_opt(y, second, day).map(|date| FoundDate { date, order: DateOrder::Unambiguous })
            } else {
                let Some(y) = year(c_text) else { continue };
                let day_first = NaiveDate::from_ymd_opt(y, second, first);
                let month_first_date = NaiveDate::from_ymd_opt(y, first, second);
                match (day_first, month_first_date) {
                    (Some(date), None) => Some(FoundDate { date, order: DateOrder::DayFirst }),
                    (None, Some(date)) => Some(FoundDate { date, order: DateOrder::MonthFirst }),
                    (Some(_), Some(date)) if first == second => Some(FoundDate { date, order: DateOrder::Unambiguous }),
                    (Some(_), Some(date)) if month_first => {
                        Some(FoundDate { date, order: DateOrder::AssumedMonthFirst })
                    }
                    (Some(date), Some(_)) => Some(FoundDate { date, order: DateOrder::AssumedDayFirst }),
                    (None, None) => repaired(a_text, b_text, y, month_first),
                }
            };
            if let Some(candidate) = candidate {
                found.push((a.start(), c.end(), candidate));
            }
        }
        if found.is_empty() && !tried_anywhere {
            tried_anywhere = true;
            pending.push(slashed_anywhere().collect());
        }
    }
    for captures in MONTH_DAY_SHORT_YEAR.captures_iter(&text) {
        let (Some(month), Ok(day), Some(y)) =
            (month_from_name(&captures[1]), captures[2].parse::<u32>(), year(&captures[3]))
        else {
            continue;
        };
        // `MAR 2019` is a month and a year (a card's expiry, `MEMBER SINCE`), not 20 March 2019;
        // the point-of-sale form glues the time to it (`Oct011701:44PM`).
        let digits = format!("{}{}", &captures[2], &captures[3]);
        let time_glued = text[captures.get(3).map_or(0, |m| m.end())..].starts_with(|c: char| c.is_ascii_digit());
        if (digits.starts_with("19") || digits.starts_with("20")) && !captures[0].contains('\'') && !time_glued {
            continue;
        }
        if let Some(date) = NaiveDate::from_ymd_opt(y, month, day) {
            let start = captures.get(1).map_or(0, |m| m.start());
            let end = captures.get(3).map_or(start, |m| m.end());
            found.push((start, end, FoundDate { date, order: DateOrder::Unambiguous }));
        }
    }
    for captures in DAY_MONTH_NAME.captures_iter(&text) {
        let (Some(day), Some(month), Some(y)) =
            (captures[1].parse::<u32>().ok(), month_from_name(&captures[2]), year(&captures[3]))
        else {
            continue;
        };
        let date = NaiveDate::from_ymd_opt(y, month, day).or_else(|| {
            let valid: Vec<NaiveDate> =
                confusions(&captures[1]).filter_map(|d| NaiveDate::from_ymd_opt(y, month, d)).collect();
            (valid.len() == 1).then(|| valid[0])
        });
        if let Some(date) = date {
            let start = captures.get(1).map_or(0, |m| m.start());
            let end = captures.get(3).map_or(start, |m| m.end());
            found.push((start, end, FoundDate { date, order: DateOrder::Unambiguous }));
        }
    }
    for captures in MONTH_DAY_SPACE_YEAR_TIME.captures_iter(&text) {
        let (Some(month), Ok(day), Some(y)) =
            (month_from_name(&captures[1]), captures[2].parse::<u32>(), year(&captures[3]))
        else {
            continue;
        };
        if let Some(date) = NaiveDate::from_ymd_opt(y, month, day) {
            let start = captures.get(1).map_or(0, |m| m.start());
            let end = captures.get(3).map_or(start, |m| m.end());
            found.push((start, end, FoundDate { date, order: DateOrder::Unambiguous }));
        }
    }
    for captures in MONTH_NAME_DAY.captures_iter(&text) {
        let Some(year_match) = captures.get(3).or_else(|| captures.get(4)) else { continue };
        // A misread month's name is trusted only before a day and a four-digit year printed in
        // full, not repaired (`Mby 21.2019`).
        let printed_year =
            captures.get(3).is_some_and(|y| y.as_str().starts_with("19") || y.as_str().starts_with("20"));
        let month =
            month_from_name(&captures[1]).or_else(|| printed_year.then(|| month_with_one_slip(&captures[1])).flatten());
        let (Some(month), Some(day), Some(y)) = (month, captures[2].parse::<u32>().ok(), year(year_match.as_str()))
        else {
            continue;
        };
        if let Some(date) = NaiveDate::from_ymd_opt(y, month, day) {
            let start = captures.get(1).map_or(0, |m| m.start());
            found.push((start, year_match.end(), FoundDate { date, order: DateOrder::Unambiguous }));
        }
    }
    for captures in COMPACT.captures_iter(&text) {
        let (Some(y), Ok(month), Ok(day)) = (year(&captures[1]), captures[2].parse(), captures[3].parse()) else {
            continue;
        };
        if let Some(date) = NaiveDate::from_ymd_opt(y, month, day) {
            let start = captures.get(1).map_or(0, |m| m.start());
            let end = captures.get(3).map_or(start, |m| m.end());
            found.push((start, end, FoundDate { date, order: DateOrder::Unambiguous }));
        }
    }
    found.sort_by_key(|(start, _, _)| *start);
    found.dedup_by_key(|(_, _, date)| date.date);
    found.into_iter().map(|(start, end, date)| (date, start..end)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    #[test]
    fn date_format_table() {
        let cases = [
            ("DATE: 25/12/2018 8:13:39 PM", ymd(2018, 12, 25), DateOrder::DayFirst),
            ("25-12-18 10:45", ymd(2018, 12, 25), DateOrder::DayFirst),
            ("Date : 02/03/2018", ymd(2018, 3, 2), DateOrder::AssumedDayFirst),
            ("2018-03-20 14:02", ymd(2018, 3, 20), DateOrder::Unambiguous),
            ("25 DEC 2018", ymd(2018, 12, 25), DateOrder::Unambiguous),
            ("09-JAN-2018", ymd(2018, 1, 9), DateOrder::Unambiguous),
            ("12 MAR 18", ymd(2018, 3, 12), DateOrder::Unambiguous),
            ("MAR 20, 2018", ymd(2018, 3, 20), DateOrder::Unambiguous),
            ("DATE 2O/O3/2O18", ymd(2018, 3, 20), DateOrder::DayFirst),
            ("20180320 TERMINAL 1", ymd(2018, 3, 20), DateOrder::Unambiguous),
            ("12/25/2018", ymd(2018, 12, 25), DateOrder::MonthFirst),
            ("(26/04/2018)", ymd(2018, 4, 26), DateOrder::DayFirst),
            ("ORD #07 -REG #19- 10/03/2018 17:24:07", ymd(2018, 3, 10), DateOrder::AssumedDayFirst),
            ("12-02-2618 11:34:45 AM", ymd(2018, 2, 12), DateOrder::AssumedDayFirst),
            ("Date: 04/42/2017", ymd(2017, 12, 4), DateOrder::DayFirst),
            ("46 Jun 2018 18:25", ymd(2018, 6, 16), DateOrder::Unambiguous),
            ("'a: J7-06-2018 14:07:29", ymd(2018, 6, 17), DateOrder::DayFirst),
            ("26.04.2018", ymd(2018, 4, 26), DateOrder::DayFirst),
            ("APR04'16 12:31PM", ymd(2016, 4, 4), DateOrder::Unambiguous),
            ("Datum: 3. Dezember 2019", ymd(2019, 12, 3), DateOrder::Unambiguous),
            ("le 14 juil. 2019", ymd(2019, 7, 14), DateOrder::Unambiguous),
            ("12 DIC 2019", ymd(2019, 12, 12), DateOrder::Unambiguous),
            ("5 OGOS 2018", ymd(2018, 8, 5), DateOrder::Unambiguous),
        ];
        for (text, date, order) in cases {
            assert_eq!(dates_in(text, false).first(), Some(&FoundDate { date, order }), "{text:?}");
        }
    }

    #[test]
    fn ambiguous_dates_follow_the_currency() {
        assert_eq!(
            dates_in("03/04/2018", true),
            [FoundDate { date: ymd(2018, 3, 4), order: DateOrder::AssumedMonthFirst }]
        );
    }

    #[test]
    fn spans_cover_the_printed_date() {
        let text = "DATE: 25/12/2018 8:13:39 PM";
        let spans = date_spans(text, false);
        assert_eq!(&text[spans[0].1.clone()], "25/12/2018");
        let text = "Dec 25, 2018 10:00";
        assert_eq!(&text[date_spans(text, false)[0].1.clone()], "Dec 25, 2018");
    }

    #[test]
    fn dates_run_into_their_neighbours_are_read() {
        for (text, want) in [
            ("12/29/20178:38:16PM GUESTS 1", ymd(2017, 12, 29)),
            ("09/10/173:28PM", ymd(2017, 9, 10)),
            ("0rder986206/08/1911:45AM", ymd(2019, 6, 8)),
            ("17-Feb-20189:41:47A", ymd(2018, 2, 17)),
            ("Date: Jan 28,20185:48:07 PM", ymd(2018, 1, 28)),
            ("6000 SvrCk:111:23a03/12/19", ymd(2019, 3, 12)),
            ("JESSICAMSvrCk:112:0503/05/17", ymd(2017, 3, 5)),
            ("Oct011701:44PM", ymd(2017, 10, 1)),
            ("DeC26'1204:41PM", ymd(2012, 12, 26)),
            ("APR04'166:09PM", ymd(2016, 4, 4)),
            ("T6155/1 0ct081412:10PM Chk4488", ymd(2014, 10, 8)),
            ("Station1 16Feb1921:31", ymd(2019, 2, 16)),
            ("103/1 1959 GST | 25AUG'17 8:03PM", ymd(2017, 8, 25)),
            // The apostrophe before the year lost to a space, the time after it.
            ("Chk 699 Jun22 18 07:59PM", ymd(2018, 6, 22)),
            ("Sep30 1707:36PH", ymd(2017, 9, 30)),
            // A month's name with one letter misread, before a day and a four-digit year.
            ("Mby 21.2019 6:58PM", ymd(2019, 5, 21)),
            // A bold 8 read as B.
            ("0B/22/2015", ymd(2015, 8, 22)),
        ] {
            assert_eq!(dates_in(text, true).first().map(|found| found.date), Some(want), "{text:?}");
        }
    }

    #[test]
    fn non_dates_are_ignored() {
        for text in [
            "TEL 03-8724 1234",
            "INVOICE 1234/56",
            "31/02/2018",
            "TOTAL 12.50",
            "GST ID 001234567890",
            // Two months are one letter away: no guess.
            "JUX 21, 2019",
            // A month, a day and a count, with no time to say the count is a year.
            "JUN 22 18 ITEMS",
            "UNIT 4B/2",
            // Words and codes one letter from a month, and a year only repaired.
            "MYR 4.2500",
            "PAY 12, 2019",
            "BAY 12 2345",
            // A `B` in an address is not an 8.
            "NO. 1B-12-20, JALAN BATU",
        ] {
            assert_eq!(dates_in(text, false), [], "{text:?}");
        }
    }
}
