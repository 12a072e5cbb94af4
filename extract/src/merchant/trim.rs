//! What a name's row carries besides the name: a branch's town, a point-of-sale field.

use super::address::town_row;
use super::words::{BUSINESS_WORDS, KIND_WORDS, SHORT_NAME_WORDS, has_legal_suffix, kind_only};
use crate::text::{similarity, squash};

/// The words a branch adds to a chain's name: its town, printed again as the town of the town
/// line below (`KALAVERAS-BELLFLOWER` above `BELLFLOWER, CA 90706`, `BAR LOUIE HUNTSVILLE` above
/// `HUNTSVILLE, AL 35806`), allowing one OCR slip in five letters (none in four). A street is
/// not a branch: a place is often named after its street (`ROSEBUD ON RUSH` on Rush Street); nor
/// is a word that only resembles part of the town (`BURGER KING` in Springfield keeps `KING`).
pub(super) fn without_branch(name: &str, below: &[String]) -> String {
    // The towns' words, one by one and two by two (`MIAMI BEACH`): letters, OCR digits allowed.
    let mut towns: Vec<String> = Vec::new();
    for row in below.iter().filter(|row| town_row(row)) {
        let words: Vec<String> = row
            .split([' ', ','])
            .map(squash)
            .filter(|word| {
                word.len() >= 3 && word.chars().filter(char::is_ascii_alphabetic).count() * 10 >= word.len() * 7
            })
            .collect();
        towns.extend(words.windows(2).map(|pair| pair.concat()));
        towns.extend(words);
    }
    if has_legal_suffix(name) || towns.is_empty() {
        return name.to_owned();
    }
    let tokens: Vec<&str> = name.split([' ', '-']).filter(|token| !token.is_empty()).collect();
    // Where each token starts in `name`, to cut it as printed.
    let starts: Vec<usize> = name
        .char_indices()
        .filter(|&(at, c)| c != ' ' && c != '-' && name[..at].chars().next_back().is_none_or(|b| b == ' ' || b == '-'))
        .map(|(at, _)| at)
        .collect();
    for tail in [2, 1] {
        if tokens.len() <= tail {
            continue;
        }
        let (head, branch) = tokens.split_at(tokens.len() - tail);
        let place = squash(&branch.concat());
        // What stays must still be a name, not only what kind of place it is (`CAFE PARIS`).
        let named = head.iter().any(|word| word.chars().filter(char::is_ascii_alphabetic).count() >= 3)
            && head.last().is_some_and(|last| !SHORT_NAME_WORDS.contains(last))
            && !kind_only(&head.join(" "))
            && !head.iter().all(|word| BUSINESS_WORDS.contains(word));
        let kind = branch
            .iter()
            .any(|word| BUSINESS_WORDS.contains(word) || KIND_WORDS.contains(word) || SHORT_NAME_WORDS.contains(word));
        let slips = place.len() / 5;
        let in_town = towns.iter().any(|town| {
            let distance = (1.0 - similarity(&place, town)) * place.len().max(town.len()) as f64;
            distance <= slips as f64 + 1e-9
        });
        if named && !kind && place.len() >= 4 && in_town {
            let cut = starts.get(head.len()).copied().unwrap_or(name.len());
            return name[..cut].trim_end_matches([' ', '-']).to_owned();
        }
    }
    name.to_owned()
}

/// A point-of-sale field printed at the end of the name's row (`FINNEGAN'S WAY CHECK 822819`,
/// `TACO BELL ORDER #12`): the row without it.
pub(super) fn without_pos_field(row: &str) -> String {
    static POS_FIELD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"\s+(?:(?:CHECK|CHK|TABLE|TBL|TICKET|GUESTS?)\s*(?:NO\.?|#|:)?|(?:ORDER|STATION)\s*(?:NO\.?|#|:))\s*#?\d+$",
        )
            .unwrap_or_else(|error| panic!("invalid pattern: {error}"))
    });
    POS_FIELD.replace(row, "").into_owned()
}
