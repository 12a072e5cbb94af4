//! The words that mark a merchant's name on a receipt, and the rows that cannot be it: legal forms,
//! business and kind-of-place words, and an invoice's buyer block. Shared by the header reading and
//! the brand directory.

use crate::text::has_word;

pub(crate) const LEGAL_SUFFIXES: [&str; 33] = [
    "SDN BHD",
    "SDN. BHD",
    "SDN.BHD",
    "S/B",
    "BHD",
    "ENTERPRISE",
    "TRADING",
    "PLT",
    "LTD",
    "LTD.",
    "LIMITED",
    "CO.",
    "INC",
    "INC.",
    "LLC",
    "GMBH",
    "SARL",
    "S.A.S",
    "S.A.S.",
    "S.A.",
    "S.L.",
    "S.R.L.",
    "SRL",
    "S.P.A.",
    "B.V.",
    "N.V.",
    "LDA",
    "PVT",
    "PTY",
    "PLC",
    "K.K.",
    "CORP",
    "E.K.",
];

/// Whether a row carries a company's legal form as a word of its own (`INC` in `LINCOLN`,
/// `PRINCE` or `QUINCY` is not one).
pub(crate) fn has_legal_suffix(row: &str) -> bool {
    let row = row.trim_end_matches([',', ' ']);
    LEGAL_SUFFIXES.iter().any(|suffix| has_word(row, suffix))
        || LEGAL_ENDINGS.iter().any(|form| row.strip_suffix(form).is_some_and(|rest| rest.ends_with(' ')))
        || LEGAL_PREFIXES.iter().any(|form| row.strip_prefix(form).is_some_and(|rest| rest.starts_with(' ')))
}

/// Legal forms that are also short words or letters elsewhere (`AG`, `AS`, `AB`, `CV`), so count
/// only where a company's name ends with them (`ELEKTRO MÜLLER AG`, `NORDIC DATA AS`).
const LEGAL_ENDINGS: [&str; 36] = [
    "AG",
    "KG",
    "OHG",
    "UG",
    "OY",
    "OYJ",
    "AB",
    "HB",
    "A/S",
    "APS",
    "AS",
    "ASA",
    "SP. Z O.O.",
    "SP.Z O.O.",
    "SP. Z O. O.",
    "S.R.O.",
    "A.S.",
    "LTDA",
    "LTDA.",
    "DE C.V.",
    "NV",
    "BV",
    "V.O.F.",
    "SAS",
    "SA",
    "S.N.C.",
    "SPA",
    "LDA.",
    "DAC",
    "LLP",
    "A.Ş.",
    "ŞTI.",
    "ŞTİ.",
    "CV",
    "TBK",
    "KFT.",
];

/// Legal forms printed before the name (`PT MAJU JAYA`, `CV SINAR`).
const LEGAL_PREFIXES: [&str; 4] = ["PT", "PT.", "CV", "CV."];

pub(crate) const BUSINESS_WORDS: [&str; 62] = [
    "GRILL",
    "GRILLE",
    "BAR",
    "PUB",
    "PIZZA",
    "PIZZERIA",
    "SUSHI",
    "TACO",
    "BURGER",
    "BURGERS",
    "HAMBURGER",
    "HAMBURGERS",
    "KITCHEN",
    "DINER",
    "STEAKHOUSE",
    "TAVERN",
    "BISTRO",
    "BRASSERIE",
    "TRATTORIA",
    "OSTERIA",
    "RISTORANTE",
    "CANTINA",
    "TAQUERIA",
    "COFFEE",
    "CAFÉ",
    "BÄCKEREI",
    "APOTHEKE",
    "MARKT",
    "SUPERMARCHÉ",
    "GASTHAUS",
    "BBQ",
    "HOUSE",
    "LOUNGE",
    "CANTEEN",
    "NOODLE",
    "RAMEN",
    "THAI",
    "INDIAN",
    "MEXICAN",
    "SEAFOOD",
    "RESTAURANT",
    "RESTORAN",
    "CAFE",
    "BAKERY",
    "HARDWARE",
    "STORE",
    "STATIONERY",
    "MART",
    "MARKET",
    "SUPERMARKET",
    "PHARMACY",
    "FARMASI",
    "KEDAI",
    "HOTEL",
    "BOOK",
    "TRADING",
    "MAKANAN",
    "FOOD",
    "SHOP",
    "CENTRE",
    "ELECTRICAL",
    "HOLDINGS",
];

pub(crate) const NOT_NAME: &[&str] = &[
    "SERVER",
    "WAITER",
    "WAITRESS",
    "TABLE",
    "GUEST",
    "GUESTS",
    "CHECK",
    "CHK",
    "CASHIER",
    "STATION",
    "TERMINAL",
    "COPY",
    "ORIGINAL",
    "VISIT",
    "TAX INVOICE",
    "INVOICE",
    "RECEIPT",
    "WELCOME",
    "CASH BILL",
    "TEL",
    "FAX",
    "GST",
    "REG",
    "DATE",
    "COMPANY NO",
    "CO NO",
    "CO. NO",
    "SIMPLIFIED",
    "THANK",
    "PURCHASE",
    "VISA",
    "MASTERCARD",
    "AMOUNT",
    "SEAT",
    "SEAT1",
    "ENTRY METHOD",
    "PLACE YOUR",
    "CARD HERE",
    "HOST",
    "ROC",
    "BILL",
    "ORDER",
    // Document titles: an invoice's, in the languages read.
    "RECHNUNG",
    "FACTURE",
    "FACTURA",
    "FATURA",
    "FATTURA",
    "FACTUUR",
    "FAKTURA",
    "FAKTUR",
    "LASKU",
    "INVOIS",
];

/// Words that say what kind of place a business is; a row of these alone (`RESTAURANT`,
/// `SEAFOOD KITCHEN`, `FAMILY RESTAURANT`) completes the name above it rather than being one.
pub(crate) const KIND_WORDS: [&str; 27] = [
    "FAMILY",
    "CUISINE",
    "&",
    "AND",
    "STEAK",
    "JAPANESE",
    "ITALIAN",
    "AMERICAN",
    "FRENCH",
    "CHINESE",
    "WINE",
    "BRAZILIAN",
    "GREEK",
    "KOREAN",
    "VIETNAMESE",
    "SPANISH",
    "FINE",
    "DINING",
    "SPORTS",
    "OYSTER",
    "CAFE&WINEBAR",
    "RESTAURANTE",
    "AUTHENTIC",
    "CHOPHOUSE",
    "ROADHOUSE",
    "EATERY",
    "STEAK HOUSE",
];

pub(crate) fn kind_only(row: &str) -> bool {
    let words: Vec<&str> = row.split_whitespace().collect();
    !words.is_empty()
        && !row.contains('#')
        && words.iter().all(|word| {
            let word = word.trim_matches(|c: char| !c.is_alphanumeric() && c != '&');
            word.is_empty() || KIND_WORDS.contains(&word) || BUSINESS_WORDS.contains(&word)
        })
}

/// Short words that begin or end real names (`EL MESON`, `LA SOURCE`, `RED & HOT II`).
pub(crate) const SHORT_NAME_WORDS: [&str; 22] = [
    "EL", "LA", "LE", "LOS", "LAS", "DE", "DA", "DI", "DU", "DEL", "OF", "AT", "ON", "MR", "MS", "DR", "ST", "II",
    "IV", "VI", "&", "THE",
];

/// Labels that open an invoice's seller block (`Sprzedawca:`, `Dodavatel:`, `From:`): the row
/// below names the seller.
pub(crate) const SELLER_LABELS: [&str; 28] = [
    "SELLER",
    "FROM:",
    "SUPPLIER",
    "VENDOR",
    "SPRZEDAWCA",
    "DODAVATEL",
    "ABSENDER",
    "VERKÄUFER",
    "LIEFERANT",
    "ÉMETTEUR",
    "EMETTEUR",
    "VENDEUR",
    "EMISOR",
    "EMITENTE",
    "CEDENTE",
    "PRESTATORE",
    "AFZENDER",
    "LEVERANCIER",
    "DARIPADA",
    "DARI:",
    "AVSÄNDARE",
    "SÄLJARE",
    "AFSENDER",
    "SÆLGER",
    "AVSENDER",
    "LASKUTTAJA",
    "MYYJÄ",
    "SATICI",
];

/// Whether a row is a seller's label standing alone (`SPRZEDAWCA:`, `FROM:`).
pub(crate) fn seller_label(row: &str) -> bool {
    let row = row.trim().trim_end_matches(':').trim();
    row.split_whitespace().count() <= 2 && SELLER_LABELS.iter().any(|label| row == label.trim_end_matches(':'))
}

/// Labels that open an invoice's buyer block (`Bill to:`, `Rechnung an`, `Facturé à`, …): the rows
/// it holds name the customer, whose legal name must not pass for the seller's.
pub(crate) const BUYER_LABELS: [&str; 46] = [
    "BILL TO",
    "BILLED TO",
    "SOLD TO",
    "SHIP TO",
    "DELIVER TO",
    "INVOICE TO",
    "INVOICED TO",
    "CUSTOMER:",
    "CUSTOMER NAME",
    "BUYER",
    "CLIENT:",
    "RECHNUNG AN",
    "RECHNUNGSEMPFÄNGER",
    "RECHNUNGSEMPFANGER",
    "LIEFERANSCHRIFT",
    "KUNDE:",
    "FACTURÉ À",
    "FACTURE À",
    "FACTURER À",
    "CLIENTE:",
    "FACTURAR A",
    "DESTINATARIO",
    "FACTUUR AAN",
    "KLANT:",
    "ODBĚRATEL",
    "ODBERATEL",
    "NABYWCA",
    "FAKTURERES TIL",
    "FAKTURERAS TILL",
    "KUND:",
    "KUNDE :",
    "CLIENT :",
    "LASKUTETTAVA",
    "ASIAKAS:",
    "ALICI:",
    "SAYIN",
    "TAGIHAN KEPADA",
    "KEPADA YTH",
    "BIL KEPADA",
    "PELANGGAN:",
    "DESTINATAIRE",
    "DATOS DEL CLIENTE",
    "FATURAR A",
    "SPETT.LE",
    "CUSTOMER :",
    "MUSTERI:",
];

/// The rows that belong to a buyer block: the label's row and the few rows below it, up to a blank
/// row or another labelled field.
pub(crate) fn buyer_rows(header: &[String]) -> Vec<bool> {
    let mut buyer = vec![false; header.len()];
    for (index, row) in header.iter().enumerate() {
        if !BUYER_LABELS.iter().any(|label| row.contains(label)) {
            continue;
        }
        buyer[index] = true;
        for (offset, next) in header.iter().enumerate().skip(index + 1).take(4) {
            if next.trim().is_empty() || (next.contains(':') && !BUYER_LABELS.iter().any(|label| next.contains(label)))
            {
                break;
            }
            buyer[offset] = true;
        }
    }
    buyer
}
