//! The spending category, from the merchant's name and the items bought.
//!
//! A keyword taxonomy, documented here so users can predict it:
//!
//! | category | evidence (whole words in the merchant name, or in item descriptions) |
//! |---|---|
//! | `hardware` | HARDWARE, PAPAN, BUILDING, MATERIAL, PAINT, ELECTRICAL, TOOLS, BESI |
//! | `office` | BOOK, BOOKS, STATIONERY, PRINTING, OFFICE, POPULAR, PAPER |
//! | `dining` | RESTAURANT, RESTORAN, CAFE, KOPITIAM, BAKERY, FOOD, BISTRO, DELI, NASI, MEE, TEH, KOPI, CHICKEN |
//! | `groceries` | MART, MARKET, SUPERMARKET, GROCER, SPEED MART, MINI MARKET, PASARAYA, AEON, TESCO, GIANT |
//! | `health` | PHARMACY, FARMASI, CLINIC, KLINIK, MEDICAL, DENTAL, OPTICAL |
//! | `transport` | PETROL, PETRONAS, SHELL, PETRON, CALTEX, PARKING, TOLL, TAXI, GRAB |
//! | `lodging` | HOTEL, INN, RESORT, HOSTEL, MOTEL |
//! | `electronics` | ELECTRONICS, COMPUTER, MOBILE, PHONE, DIGITAL |
//! | `shopping` | FASHION, BOUTIQUE, DEPARTMENT, GIFT, TOYS, MR DIY |
//! | `utilities` | TNB, ELECTRICITY, WATER, TELEKOM, INTERNET |
//!
//! The merchant name is checked first; items only break a tie. No evidence gives no category.

use super::text::has_word;
use crate::receipt::Category;

const RULES: [(Category, &[&str]); 10] = [
    (
        Category::Hardware,
        &["HARDWARE", "PAPAN", "BUILDING", "MATERIAL", "MATERIALS", "PAINT", "ELECTRICAL", "TOOLS", "BESI"],
    ),
    (Category::Office, &["BOOK", "BOOKS", "STATIONERY", "PRINTING", "OFFICE", "POPULAR", "PAPER"]),
    (
        Category::Dining,
        &[
            "RESTAURANT",
            "RESTORAN",
            "CAFE",
            "KOPITIAM",
            "BAKERY",
            "FOOD",
            "BISTRO",
            "DELI",
            "NASI",
            "MEE",
            "TEH",
            "KOPI",
            "CHICKEN",
        ],
    ),
    (
        Category::Groceries,
        &["MART", "MARKET", "SUPERMARKET", "GROCER", "GROCERY", "MINIMARKET", "PASARAYA", "AEON", "TESCO", "GIANT"],
    ),
    (Category::Health, &["PHARMACY", "FARMASI", "CLINIC", "KLINIK", "MEDICAL", "DENTAL", "OPTICAL"]),
    (Category::Transport, &["PETROL", "PETRONAS", "SHELL", "PETRON", "CALTEX", "PARKING", "TOLL", "TAXI", "GRAB"]),
    (Category::Lodging, &["HOTEL", "INN", "RESORT", "HOSTEL", "MOTEL"]),
    (Category::Electronics, &["ELECTRONICS", "COMPUTER", "MOBILE", "PHONE", "DIGITAL"]),
    (Category::Shopping, &["FASHION", "BOUTIQUE", "DEPARTMENT", "GIFT", "TOYS", "DIY"]),
    (Category::Utilities, &["TNB", "ELECTRICITY", "WATER", "TELEKOM", "INTERNET"]),
];

fn votes(text: &str) -> Vec<(Category, usize)> {
    RULES
        .iter()
        .map(|(category, words)| (*category, words.iter().filter(|word| has_word(text, word)).count()))
        .filter(|(_, count)| *count > 0)
        .collect()
}

/// The category and a confidence, or `None` without evidence.
pub fn categorize(merchant: Option<&str>, items: &[&str]) -> Option<(Category, f64)> {
    if let Some(name) = merchant
        && let Some((category, _)) = votes(&name.to_uppercase()).into_iter().max_by_key(|(_, count)| *count)
    {
        return Some((category, 0.8));
    }
    let joined = items.join("\n").to_uppercase();
    votes(&joined).into_iter().max_by_key(|(_, count)| *count).map(|(category, _)| (category, 0.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_table() {
        let cases = [
            (Some("KEDAI PAPAN YEW CHUAN"), vec![], Some(Category::Hardware)),
            (Some("BOOK TA .K (TAMAN DAYA) SDN BHD"), vec![], Some(Category::Office)),
            (Some("99 SPEED MART S/B"), vec![], Some(Category::Groceries)),
            (Some("RESTORAN WAN SHENG"), vec![], Some(Category::Dining)),
            (Some("SYARIKAT PERNIAGAAN GIN KEE"), vec!["NASI LEMAK", "TEH TARIK"], Some(Category::Dining)),
            (Some("UNIHAKKA INTERNATIONAL SDN BHD"), vec![], None),
            (None, vec![], None),
        ];
        for (merchant, items, expected) in cases {
            assert_eq!(categorize(merchant, &items).map(|(c, _)| c), expected, "{merchant:?}");
        }
    }
}
