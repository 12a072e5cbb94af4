//! The spending category, from the merchant's name and the items bought.
//!
//! A keyword taxonomy, documented here so users can predict it:
//!
//! | category | evidence (whole words in the merchant name, or in item descriptions) |
//! |---|---|
//! | `hardware` | HARDWARE, PAPAN, BUILDING, MATERIAL, PAINT, ELECTRICAL, TOOLS, BESI, BAUMARKT, QUINCAILLERIE, FERRETERIA |
//! | `office` | BOOK, BOOKS, STATIONERY, PRINTING, OFFICE, POPULAR, PAPER, BUCHHANDLUNG, LIBRAIRIE, PAPETERIE |
//! | `dining` | RESTAURANT(E), RESTORAN, RISTORANTE, CAFE, CAFÉ, COFFEE, KOPITIAM, BAKERY, BÄCKEREI, BOULANGERIE, FOOD, BISTRO, BRASSERIE, TRATTORIA, OSTERIA, PIZZA, PIZZERIA, SUSHI, RAMEN, NOODLE, GRILL(E), BAR, PUB, TAVERN, DINER, STEAKHOUSE, STEAK, BBQ, BURGER(S), TACO(S), TAQUERIA, CANTINA, KITCHEN, LOUNGE, WINGS, DELI, IMBISS, GASTHAUS, NASI, MEE, TEH, KOPI, CHICKEN |
//! | `groceries` | MART, MARKET, MARKT, SUPERMARKET, SUPERMARCHÉ, SUPERMERCADO, SUPERMERCATO, GROCER(Y), MINIMARKET, PASARAYA, AEON, TESCO, GIANT, REWE, EDEKA, LIDL, ALDI, CARREFOUR, SAFEWAY, KROGER |
//! | `health` | PHARMACY, PHARMACIE, FARMACIA, FARMASI, APOTHEKE, APOTHEEK, DROGERIE, CLINIC, KLINIK, MEDICAL, DENTAL, OPTICAL |
//! | `transport` | PETROL, FUEL, GAS, GASOLINE, TANKSTELLE, STATION-SERVICE, GASOLINERA, PETRONAS, SHELL, PETRON, CALTEX, ESSO, ARAL, CHEVRON, PARKING, PARKHAUS, TOLL, TAXI, GRAB, UBER |
//! | `lodging` | HOTEL, HÔTEL, INN, RESORT, HOSTEL, HOSTAL, MOTEL, ALBERGO, PENSION |
//! | `electronics` | ELECTRONICS, COMPUTER, MOBILE, PHONE, DIGITAL, ELEKTRONIK |
//! | `shopping` | FASHION, BOUTIQUE, DEPARTMENT, GIFT, TOYS, MR DIY |
//! | `utilities` | TNB, ELECTRICITY, WATER, TELEKOM, INTERNET |
//!
//! The merchant name is checked first; items only break a tie. No evidence gives no category.

use crate::text::has_word;
use finagent_core::receipt::Category;

const RULES: [(Category, &[&str]); 10] = [
    (
        Category::Hardware,
        &[
            "HARDWARE",
            "PAPAN",
            "BUILDING",
            "MATERIAL",
            "MATERIALS",
            "PAINT",
            "ELECTRICAL",
            "TOOLS",
            "BESI",
            "BAUMARKT",
            "QUINCAILLERIE",
            "FERRETERIA",
        ],
    ),
    (
        Category::Office,
        &[
            "BOOK",
            "BOOKS",
            "STATIONERY",
            "PRINTING",
            "OFFICE",
            "POPULAR",
            "PAPER",
            "BUCHHANDLUNG",
            "LIBRAIRIE",
            "PAPETERIE",
        ],
    ),
    (
        Category::Dining,
        &[
            "RESTAURANT",
            "RESTAURANTE",
            "RESTORAN",
            "RISTORANTE",
            "CAFE",
            "CAFÉ",
            "COFFEE",
            "KOPITIAM",
            "BAKERY",
            "BÄCKEREI",
            "BOULANGERIE",
            "FOOD",
            "BISTRO",
            "BRASSERIE",
            "TRATTORIA",
            "OSTERIA",
            "PIZZA",
            "PIZZERIA",
            "SUSHI",
            "RAMEN",
            "NOODLE",
            "NOODLES",
            "GRILL",
            "GRILLE",
            "BAR",
            "PUB",
            "TAVERN",
            "DINER",
            "STEAKHOUSE",
            "STEAK",
            "BBQ",
            "BURGER",
            "BURGERS",
            "TACO",
            "TACOS",
            "TAQUERIA",
            "CANTINA",
            "KITCHEN",
            "LOUNGE",
            "WINGS",
            "DELI",
            "IMBISS",
            "GASTHAUS",
            "NASI",
            "MEE",
            "TEH",
            "KOPI",
            "CHICKEN",
        ],
    ),
    (
        Category::Groceries,
        &[
            "MART",
            "MARKET",
            "MARKT",
            "SUPERMARKET",
            "SUPERMARCHÉ",
            "SUPERMERCADO",
            "SUPERMERCATO",
            "GROCER",
            "GROCERY",
            "MINIMARKET",
            "PASARAYA",
            "AEON",
            "TESCO",
            "GIANT",
            "REWE",
            "EDEKA",
            "LIDL",
            "ALDI",
            "CARREFOUR",
            "SAFEWAY",
            "KROGER",
        ],
    ),
    (
        Category::Health,
        &[
            "PHARMACY",
            "PHARMACIE",
            "FARMACIA",
            "FARMASI",
            "APOTHEKE",
            "APOTHEEK",
            "DROGERIE",
            "CLINIC",
            "KLINIK",
            "MEDICAL",
            "DENTAL",
            "OPTICAL",
        ],
    ),
    (
        Category::Transport,
        &[
            "PETROL",
            "FUEL",
            "GAS",
            "GASOLINE",
            "TANKSTELLE",
            "STATION-SERVICE",
            "GASOLINERA",
            "PETRONAS",
            "SHELL",
            "PETRON",
            "CALTEX",
            "ESSO",
            "ARAL",
            "CHEVRON",
            "PARKING",
            "PARKHAUS",
            "TOLL",
            "TAXI",
            "GRAB",
            "UBER",
        ],
    ),
    (Category::Lodging, &["HOTEL", "HÔTEL", "INN", "RESORT", "HOSTEL", "HOSTAL", "MOTEL", "ALBERGO", "PENSION"]),
    (Category::Electronics, &["ELECTRONICS", "COMPUTER", "MOBILE", "PHONE", "DIGITAL", "ELEKTRONIK"]),
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
            (Some("Sushi Man"), vec![], Some(Category::Dining)),
            (Some("ESQUIRE GRILLE"), vec![], Some(Category::Dining)),
            (Some("Stadt-Apotheke am Markt"), vec![], Some(Category::Health)),
            (Some("Aral Tankstelle"), vec![], Some(Category::Transport)),
            (Some("Pizzeria da Mario"), vec![], Some(Category::Dining)),
            (None, vec![], None),
        ];
        for (merchant, items, expected) in cases {
            assert_eq!(categorize(merchant, &items).map(|(c, _)| c), expected, "{merchant:?}");
        }
    }
}
