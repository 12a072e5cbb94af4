//! Small text helpers shared by the extractors: normalisation and edit-distance similarity.

/// Upper case, whitespace collapsed to single spaces, trimmed.
pub fn normalize(text: &str) -> String {
    text.to_uppercase().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Upper-case letters and digits only, accents folded, for fuzzy comparisons that ignore
/// spacing, punctuation and diacritics (`Getränke` and an OCR reading `GETRANKE` agree).
pub fn squash(text: &str) -> String {
    text.chars().flat_map(char::to_uppercase).map(fold).filter(char::is_ascii_alphanumeric).collect()
}

/// An upper-case Latin letter without its accent (`Ä` → `A`, `Ř` → `R`, `ß` → `S`), as OCR
/// often reads it and as names are compared; other characters unchanged.
pub fn fold(c: char) -> char {
    match c {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ą' | 'Æ' | 'Ā' => 'A',
        'Ç' | 'Ć' | 'Č' => 'C',
        'Ď' | 'Đ' => 'D',
        'È' | 'É' | 'Ê' | 'Ë' | 'Ę' | 'Ě' | 'Ē' => 'E',
        'Ğ' => 'G',
        'Ì' | 'Í' | 'Î' | 'Ï' | 'İ' | 'Ī' => 'I',
        'Ł' | 'Ľ' | 'Ĺ' => 'L',
        'Ñ' | 'Ń' | 'Ň' => 'N',
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ő' | 'Œ' | 'Ō' => 'O',
        'Ř' | 'Ŕ' => 'R',
        'ß' | 'ẞ' | 'Ś' | 'Š' | 'Ş' => 'S',
        'Ť' | 'Ţ' => 'T',
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ů' | 'Ű' | 'Ū' => 'U',
        'Ý' | 'Ÿ' => 'Y',
        'Ż' | 'Ź' | 'Ž' => 'Z',
        other => other,
    }
}

/// Levenshtein distance over bytes (inputs are ASCII after [`squash`]).
pub fn levenshtein(a: &[u8], b: &[u8]) -> usize {
    if a.is_empty() {
        return b.len();
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, &left) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, &right) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(left != right);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The smallest edit distance between `needle` and any substring of `haystack` (semi-global
/// alignment), and where that substring ends.
pub fn best_substring_distance(needle: &[u8], haystack: &[u8]) -> (usize, usize) {
    // previous[j]: distance between the needle prefix so far and the best substring ending at j.
    let mut previous = vec![0usize; haystack.len() + 1];
    let mut current = vec![0usize; haystack.len() + 1];
    for (i, &left) in needle.iter().enumerate() {
        current[0] = i + 1;
        for (j, &right) in haystack.iter().enumerate() {
            let substitution = previous[j] + usize::from(left != right);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous.iter().enumerate().map(|(end, &distance)| (distance, end)).min().unwrap_or((needle.len(), 0))
}

/// How well `needle` occurs somewhere in `haystack`, in 0–1: one minus the best substring edit
/// distance over the needle's length.
pub fn containment(needle: &str, haystack: &str) -> f64 {
    if needle.is_empty() {
        return 0.0;
    }
    let (distance, _) = best_substring_distance(needle.as_bytes(), haystack.as_bytes());
    1.0 - distance as f64 / needle.len() as f64
}

/// Similarity in 0–1: one minus the edit distance over the longer length.
pub fn similarity(a: &str, b: &str) -> f64 {
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    1.0 - levenshtein(a.as_bytes(), b.as_bytes()) as f64 / longest as f64
}

/// Share of a string's characters that are ASCII letters.
pub fn letter_share(text: &str) -> f64 {
    let total = text.chars().filter(|c| !c.is_whitespace()).count();
    if total == 0 {
        return 0.0;
    }
    text.chars().filter(char::is_ascii_alphabetic).count() as f64 / total as f64
}

/// `text` with every letter's accent folded ([`fold`]): `RÜCKGELD` → `RUCKGELD`.
pub fn fold_text(text: &str) -> String {
    text.chars().map(fold).collect()
}

/// Whether `text` contains `word` as a whole word (ASCII word boundaries), case-sensitively, with
/// accents folded on both sides: OCR often drops them (`RÜCKGELD` read `RUCKGELD`).
pub fn has_word(text: &str, word: &str) -> bool {
    if text.is_ascii() && word.is_ascii() {
        return has_ascii_word(text, word);
    }
    has_ascii_word(&fold_text(text), &fold_text(word))
}

fn has_ascii_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(start, _)| {
        let before = text[..start].chars().next_back();
        let after = text[start + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric()) && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squash_folds_accents_case_spacing_and_punctuation() {
        assert_eq!(squash("Fischer Getränke"), "FISCHERGETRANKE");
        assert_eq!(squash("PEKAŘSTVÍ Dvořák s.r.o."), "PEKARSTVIDVORAKSRO");
        assert_eq!(squash("Żabka, ul. Długa"), "ZABKAULDLUGA");
        assert_eq!(squash("Fırın Yılmaz A.Ş."), "FIRINYILMAZAS");
        assert_eq!(squash("7-Eleven"), "7ELEVEN");
    }

    #[test]
    fn words_match_with_or_without_their_accents() {
        assert!(has_word("RUCKGELD 2,19", "RÜCKGELD"));
        assert!(has_word("RÜCKGELD 2,19", "RUCKGELD"));
        assert!(has_word("K ÚHRADĚ 617,46", "K UHRADE"));
        assert!(!has_word("ZURUCKGELD", "RÜCKGELD"));
        assert!(!has_word("TOTALE", "TOTAL"));
    }

    #[test]
    fn edit_distance_table() {
        assert_eq!(levenshtein(b"", b"abc"), 3);
        assert_eq!(levenshtein(b"kitten", b"sitting"), 3);
        assert_eq!(levenshtein(b"SDNBHD", b"SDNBND"), 1);
        assert!((similarity("ABCD", "ABCE") - 0.75).abs() < 1e-9);
        assert_eq!(best_substring_distance(b"SDNBHD", b"XXBOOKSDNBNDYY"), (1, 12));
        assert!((containment("JALANSAGU", "NO53JALANSACU18TAMAN") - (1.0 - 1.0 / 9.0)).abs() < 1e-9);
    }

    #[test]
    fn words_respect_boundaries() {
        assert!(has_word("TOTAL: 9.00", "TOTAL"));
        assert!(!has_word("SUBTOTAL 9.00", "TOTAL"));
        assert_eq!(normalize("  Sdn  bhd "), "SDN BHD");
        assert_eq!(squash("No.53, Jalan"), "NO53JALAN");
    }
}
