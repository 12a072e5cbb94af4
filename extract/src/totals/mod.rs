//! Totals, subtotal, tax, tip, payment method and currency, read from labelled rows.
//!
//! A total is the amount on a row labelled as one (`TOTAL`, `GRAND TOTAL`, `ROUNDED TOTAL`,
//! `AMOUNT DUE`, …), or on the row just below a label that stands alone. Labels that look like a
//! total but are not (`SUBTOTAL`, `TOTAL QTY`, `TOTAL GST`, `TOTAL DISCOUNT`) are excluded. When
//! several rows qualify, the strongest label wins, then the later row (rounded totals follow raw
//! ones). A cash/change pair, when printed, confirms or supplies the total.

use rust_decimal::Decimal;

use crate::amount::{amounts_in, rightmost_priced};
use crate::text::{fold_text, has_word};
use finagent_core::money::Amount;
use finagent_core::receipt::PaymentMethod;

/// A value read from a labelled row, with how sure we are of it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Labelled<T> {
    pub value: T,
    /// Confidence in 0–1.
    pub confidence: f64,
}

/// The money fields of a receipt.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MoneyFields {
    /// Amount paid.
    pub total: Option<Labelled<Amount>>,
    /// Before tax.
    pub subtotal: Option<Labelled<Amount>>,
    pub tax: Option<Labelled<Amount>>,
    /// Tip or service charge.
    pub tip: Option<Labelled<Amount>>,
    /// Index of the row the total was read from.
    pub total_row: Option<usize>,
}

/// Repairs OCR slips in the word TOTAL (`TOTA]`, `T0TAL`, `TOTAI`, `LOTAL`, `IOTAL`), and the
/// word glued to what precedes it (`2PTOTAL`).
fn repair_total(row: &str) -> String {
    static SLIPS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\b[TLI1][O0]T[A4][L1I\]\|]|[0-9]+[A-Z]?TOTAL\b")
            .unwrap_or_else(|error| panic!("invalid pattern: {error}"))
    });
    SLIPS
        .replace_all(row, |captures: &regex::Captures<'_>| {
            let found = &captures[0];
            if found.ends_with("TOTAL") && found.len() > 5 { " TOTAL".to_owned() } else { "TOTAL".to_owned() }
        })
        .into_owned()
}

/// How strongly a row's label says "this is the total", or `None`.
fn total_strength(row: &str) -> Option<u8> {
    let repaired = repair_total(row);
    let row = repaired.as_str();
    if row.contains("INCLUDES") || row.contains("EXCL") {
        return None;
    }
    // The amount before tax on an invoice (`RAZEM NETTO`, `NETTOBETRAG`), not `NETTO A PAGARE`
    // (net of deposits: what is due).
    if (row.contains("NETTO") || row.contains("NET AMOUNT")) && !row.contains("PAGAR") {
        return None;
    }
    const NOT_TOTAL: [&str; 47] = [
        "IMPONIBILE",
        "BASE IMPONIBLE",
        "VEROTON",
        "EXKL",
        "EKSKL",
        "EKS. MVA",
        "EKS MVA",
        "BEZ DPH",
        "MONTANT HT",
        "HIZMET TOPLAMI",
        "ZWISCHENSUMME",
        "DELSUMMA",
        "DELSUM",
        "VALISUMMA",
        "MEZISOUCET",
        "SUMA CZESCIOWA",
        "JUMLAH KECIL",
        "ARA TOPLAM",
        "TOPLAM KDV",
        "SUMA PTU",
        "SPRZEDAZ OPODATKOWANA",
        "SOUS-TOTAL",
        "SOUS TOTAL",
        "SUBTOTALE",
        "SUBTOTAAL",
        "TOTAL HT",
        "TOTAL TVA",
        "TOTALE IVA",
        "TOTAL IVA",
        "SUMME MWST",
        "MWST SUMME",
        "SUBTOTAL",
        "SUB TOTAL",
        "SUB-TOTAL",
        "TOTAL QTY",
        "TOTAL QUANTITY",
        "TOTAL ITEM",
        "TOTAL NO",
        "TOTAL GST",
        "TOTAL TAX",
        "TOTAL DISC",
        "TOTAL SAVING",
        "TOTAL EXCL",
        "TOTAL SST",
        "TOTAL PCS",
        "TOTAL UNIT",
        "TOTAL POINTS",
    ];
    // Also with the space lost to OCR (`TOTALGST`).
    let joined = row.replace(' ', "");
    if NOT_TOTAL.iter().any(|label| row.contains(label) || joined.contains(&label.replace(' ', ""))) {
        return None;
    }
    const STRONG: [&str; 51] = [
        // What an invoice says is due.
        "OFFENER BETRAG",
        "RESTE A PAYER",
        "IMPORTE A PAGAR",
        "A PAGARE",
        "OPENSTAAND BEDRAG",
        "PERLU DIBAYAR",
        "TOTAL TAGIHAN",
        "SISA TAGIHAN",
        "RESTBELOB",
        "RESTBELOP",
        "KALAN TUTAR",
        "RECHNUNGSBETRAG",
        "INVOICE TOTAL",
        "TOTALE DOCUMENTO",
        "TOTAL FACTURA",
        "CELKEM S DPH",
        "RAZEM BRUTTO",
        "VEROLLINEN YHTEENSA",
        "ZU ZAHLEN",
        "ATT BETALA",
        "AT BETALE",
        "A BETALE",
        "DO ZAPLATY",
        "GENEL TOPLAM",
        "ODENECEK",
        "K UHRADE",
        "MAKSETTAVA",
        "VALOR A PAGAR",
        "A PAYER",
        "TOTAL BELANJA",
        "GESAMTBETRAG",
        "GESAMTSUMME",
        "TOTAL TTC",
        "NET A PAYER",
        "TOTAL A PAGAR",
        "TE BETALEN",
        "JUMLAH BESAR",
        "TOTAL BAYAR",
        "JUMLAH BAYARAN",
        "TOTALE COMPLESSIVO",
        "IMPORTE TOTAL",
        "BALANCE DUE",
        "GRAND TOTAL",
        "ROUNDED TOTAL",
        "ROUND TOTAL",
        "NETT TOTAL",
        "NET TOTAL",
        "TOTAL AMOUNT",
        "TOTAL PAYABLE",
        "AMOUNT DUE",
        "TOTAL DUE",
    ];
    let total_word = has_word(row, "TOTAL");
    // Also with the spaces between its words lost to OCR (`GENELTOPLAM`, `TOTALDUE`).
    if STRONG.iter().any(|label| row.contains(label) || joined.contains(&label.replace(' ', "")))
        || (total_word && (row.contains("ROUND") || row.contains("PAYABLE") || row.contains("NETT")))
    {
        return Some(3);
    }
    const TOTAL_WORDS: [&str; 21] = [
        "TOTAL", "SUMME", "GESAMT", "TOTALE", "TOTAAL", "JUMLAH", "IMPORTE", "MONTANT", "TOTAL:", "TL", "SUMA",
        "RAZEM", "TOTALT", "SUMMA", "TOPLAM", "I ALT", "CELKEM", "YHTEENSA", "IMPORTO", "SUM", "BELOP",
    ];
    if TOTAL_WORDS.iter().any(|word| has_word(row, word)) || row.contains("TOTAL(") || row.contains("TOTAL RM") {
        return Some(2);
    }
    if ["AMOUNT PAYABLE", "NETT", "TOTAL", "AMT DUE", "BALANCE DUE", "PAYMENT DUE", "TO PAY", "BETRAG", "A PAGAR"]
        .iter()
        .any(|label| row.contains(label))
    {
        return Some(1);
    }
    None
}

fn tax_row(row: &str) -> bool {
    const TAX_WORDS: [&str; 18] = [
        "GST", "SST", "TAX", "VAT", "MWST", "UST", "TVA", "IVA", "BTW", "PPN", "PAJAK", "MOMS", "MVA", "ALV", "DPH",
        "KDV", "PTU", "HST",
    ];
    let labelled = TAX_WORDS.iter().any(|word| has_word(row, word) || row.contains(&format!("{word}(")))
        || row.contains("SERVICE TAX");
    let not_amount =
        ["GST ID", "GST REG", "GST NO", "TAX INVOICE", "REG NO", "GST SUMMARY", "TAX CODE", "EXCL", "GST:"]
            .iter()
            .any(|label| row.contains(label) && !row.contains("TOTAL"));
    labelled && !not_amount
}

/// The value of row `index`, or of the row below when the label stands alone.
fn value_at(rows: &[String], index: usize) -> Option<(Amount, bool)> {
    if let Some(amount) = rightmost_priced(&rows[index]) {
        return Some((amount, true));
    }
    let below = rows.get(index + 1)?;
    let found = amounts_in(below);
    let letters = below.chars().filter(char::is_ascii_alphabetic).count();
    match found.as_slice() {
        [only] if only.has_cents && letters <= 3 => Some((only.amount, false)),
        _ => None,
    }
}

/// Reads the money fields from upper-cased rows. `cash_rounding` is the step cash payments are
/// rounded to where the receipt's country rounds them (Malaysia's 5 sen); elsewhere a total is
/// never adjusted to a rounding step.
pub fn money_fields(rows: &[String], cash_rounding: Option<Decimal>) -> MoneyFields {
    // Labels are matched without accents, which OCR often drops (`YHTEENSÄ` read `YHTEENSA`).
    let folded: Vec<String> = rows.iter().map(|row| fold_text(row)).collect();
    let rows = folded.as_slice();
    let mut fields = MoneyFields::default();
    let mut candidates: Vec<(u8, usize, Amount, bool)> = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        let Some(strength) = total_strength(row) else { continue };
        let Some((amount, same_row)) = value_at(rows, index) else { continue };
        if !amount.is_negative() && amount != Amount::ZERO {
            candidates.push((strength, index, amount, same_row));
        }
    }
    let cash_change = cash_minus_change(rows);
    // Cash tendered minus change confirms a candidate; otherwise the strongest label wins, then
    // the larger amount (a rounded or tax-inclusive total follows the raw one).
    let confirmed = candidates.iter().filter(|candidate| Some(candidate.2) == cash_change).max_by_key(|c| (c.0, c.1));
    let mut best = confirmed.or_else(|| candidates.iter().max_by_key(|c| (c.0, c.2, c.1))).copied();
    // An invoice's total less a deposit already paid, printed between them, is what is due:
    // `GESAMTBETRAG 9.446,22` / `ABZÜGLICH ANZAHLUNG -2.360,00` / `OFFENER BETRAG 7.086,22`.
    if confirmed.is_none()
        && let Some(chosen) = best
        && let Some(due) = candidates.iter().find(|due| {
            due.1 > chosen.1
                && due.2.value() < chosen.2.value()
                && rows[chosen.1 + 1..due.1].iter().any(|row| {
                    rightmost_priced(row).is_some_and(|paid| (chosen.2.value() - paid.value().abs()) == due.2.value())
                })
        })
    {
        best = Some(*due);
    }
    // A total that lost a digit to OCR (`3.00` for `31.00`) beside a cash/change pair that has it.
    if let (Some(chosen), Some(paid)) = (best.as_mut(), cash_change)
        && lost_a_digit(&chosen.2.to_string(), &paid.to_string())
    {
        chosen.2 = paid;
    }
    // Paid in cash and off by cents only: the printed total before cash rounding, or a slip in its
    // last digits. Tendered minus change rests on two lines instead of one, so it wins.
    if let (Some(chosen), Some(paid), Some(step)) = (best.as_mut(), cash_change, cash_rounding)
        && chosen.2 != paid
        && (chosen.2.value() - paid.value()).abs() <= step
    {
        chosen.2 = paid;
    }
    // A printed rounding adjustment (Malaysian cash rounding to 5 sen) turns a total that is not a
    // multiple of the step into one that is; its sign is often lost to OCR, so the rule decides it.
    if let (Some(chosen), Some(adjustment), Some(step)) =
        (best.as_mut(), rounding_adjustment(rows, cash_rounding), cash_rounding)
    {
        let value = chosen.2.value();
        if (value % step) != Decimal::ZERO
            && let Some(rounded) = [value + adjustment, value - adjustment].into_iter().find(|v| (*v % step).is_zero())
        {
            chosen.2 = Amount::new(rounded);
        }
    }
    // Subtotal plus tax, when both are printed, is the total: it confirms a weakly labelled
    // candidate over a stronger-looking one that disagrees.
    let sum = sum_of_parts(rows);
    if let Some(sum) = sum
        && best.is_some_and(|chosen| chosen.0 < 3 && chosen.2 != sum)
        && let Some(agreeing) = candidates.iter().filter(|c| c.2 == sum).max_by_key(|c| (c.0, c.1))
    {
        best = Some(*agreeing);
    }
    if let Some((strength, index, amount, same_row)) = best {
        // The receipt's own arithmetic checks the reading: cash tendered less change, and the
        // subtotal plus tax. Agreeing raises the confidence; each check that disagrees lowers it,
        // so a doubtful total is shown for review instead of passing as certain.
        let checks = [cash_change, sum];
        let agrees = checks.contains(&Some(amount));
        let disagreeing = checks.iter().filter(|check| check.is_some_and(|check| check != amount)).count();
        let confidence = match (strength, agrees) {
            (_, true) => 0.97,
            (3, _) => 0.9,
            (2, _) => 0.85,
            _ => 0.6,
        } * if same_row { 1.0 } else { 0.9 }
            * if agrees { 1.0 } else { 0.75_f64.powi(disagreeing as i32) };
        fields.total = Some(Labelled { value: amount, confidence });
        fields.total_row = Some(index);
    } else if let Some(amount) = cash_change {
        fields.total = Some(Labelled { value: amount, confidence: 0.6 });
    } else if let Some((index, amount)) = tendered_amount(rows) {
        // No total line: the amount charged to a card or paid in cash is what was paid.
        fields.total = Some(Labelled { value: amount, confidence: 0.55 });
        fields.total_row = Some(index);
    } else if let Some(amount) = sum {
        fields.total = Some(Labelled { value: amount, confidence: 0.5 });
    }

    if fields.total.is_none()
        && let Some((index, amount)) = subtotal_row(rows)
    {
        // A card slip whose tip and total lines are blank: the amount owed is its subtotal.
        fields.total = Some(Labelled { value: amount, confidence: 0.45 });
        fields.total_row = Some(index);
    }
    for (index, row) in rows.iter().enumerate() {
        let labelled_subtotal = SUBTOTAL_LABELS.iter().any(|label| row.contains(label));
        if labelled_subtotal
            && fields.subtotal.is_none()
            && let Some((amount, _)) = value_at(rows, index)
        {
            fields.subtotal = Some(Labelled { value: amount, confidence: 0.8 });
        }
        if tax_row(row)
            && fields.tax.is_none()
            && !row.contains("INCL")
            && let Some(amount) = rightmost_priced(row)
        {
            let plausible = fields.total.is_none_or(|total| amount.value() < total.value.value());
            if plausible && !amount.is_negative() {
                fields.tax = Some(Labelled { value: amount, confidence: 0.7 });
            }
        }
        let tip_label = ["TIP", "GRATUITY", "TRINKGELD", "POURBOIRE", "PROPINA", "MANCIA", "FOOI", "GORJETA"]
            .iter()
            .any(|word| has_word(row, word))
            || row.contains("SERVICE CHARGE")
            || row.contains("SVC CHG");
        if tip_label
            && fields.tip.is_none()
            && let Some(amount) = rightmost_priced(row)
            && !amount.is_negative()
        {
            fields.tip = Some(Labelled { value: amount, confidence: 0.7 });
        }
    }
    fields
}

/// Labels of a subtotal, in the supported languages.
const SUBTOTAL_LABELS: [&str; 19] = [
    "SUBTOTAL",
    "DELSUMMA",
    "DELSUM",
    "VALISUMMA",
    "MEZISOUCET",
    "SUMA CZESCIOWA",
    "ARA TOPLAM",
    "JUMLAH KECIL",
    "SUB TOTAL",
    "SUB-TOTAL",
    "TOTAL EXCL",
    "AMOUNT EXCL",
    "TOTAL BEFORE",
    "ZWISCHENSUMME",
    "SOUS-TOTAL",
    "SOUS TOTAL",
    "TOTAL HT",
    "SUBTOTALE",
    "SUBTOTAAL",
];

/// The first subtotal row and its amount.
fn subtotal_row(rows: &[String]) -> Option<(usize, Amount)> {
    rows.iter().enumerate().find_map(|(index, row)| {
        SUBTOTAL_LABELS
            .iter()
            .any(|label| row.contains(label))
            .then(|| value_at(rows, index))
            .flatten()
            .map(|(a, _)| (index, a))
    })
}

/// Subtotal plus the one tax line, when both are printed.
fn sum_of_parts(rows: &[String]) -> Option<Amount> {
    let (index, subtotal) = subtotal_row(rows)?;
    let tax = rows[index + 1..]
        .iter()
        .take(4)
        .find(|row| tax_row(row) && !row.contains("INCL"))
        .and_then(|row| rightmost_priced(row))?;
    let sum = subtotal.value() + tax.value();
    (tax.value() > Decimal::ZERO && tax.value() < subtotal.value()).then(|| Amount::new(sum))
}

/// The amount on the last card or cash tender row (`VISA 14.37`, `MASTERCARD ##9617 $52.47`,
/// `CREDIT $21.73`), when there is no total line.
fn tendered_amount(rows: &[String]) -> Option<(usize, Amount)> {
    const TENDERS: [&str; 10] =
        ["VISA", "MASTERCARD", "AMEX", "DISCOVER", "CREDIT", "DEBIT", "CARD", "CHARGE", "MC", "CASH"];
    rows.iter().enumerate().rev().find_map(|(index, row)| {
        let tender = TENDERS.iter().any(|word| has_word(row, word)) && !row.contains("CHANGE");
        tender.then(|| rightmost_priced(row)).flatten().filter(|a| a.value() > Decimal::ZERO).map(|a| (index, a))
    })
}

/// Whether `short` is `long` with one digit left out (`3.00` and `31.00`).
fn lost_a_digit(short: &str, long: &str) -> bool {
    long.len() == short.len() + 1
        && (0..long.len()).any(|at| {
            long[at..].starts_with(|c: char| c.is_ascii_digit()) && {
                let mut without = long.to_owned();
                without.remove(at);
                without == short
            }
        })
}

/// The size of a printed rounding adjustment (less than the rounding step), if any.
fn rounding_adjustment(rows: &[String], step: Option<Decimal>) -> Option<Decimal> {
    let step = step?;
    rows.iter()
        .filter(|row| row.contains("ROUND") && !has_word(&repair_total(row), "TOTAL"))
        // Adjustments are often printed without the leading zero (`-.02`).
        .map(|row| row.replace(" .", " 0.").replace("-.", "-0.").replace("(.", "(0."))
        .filter_map(|row| amounts_in(&row).into_iter().filter(|found| found.has_cents).max_by_key(|found| found.end))
        .map(|found| found.amount.value().abs())
        .find(|size| *size > Decimal::ZERO && *size < step)
}

/// Words for cash tendered, in the supported languages.
const CASH_WORDS: [&str; 18] = [
    "CASH",
    "BAR",
    "GEGEBEN",
    "ESPECES",
    "ESPÈCES",
    "EFECTIVO",
    "CONTANTI",
    "CONTANT",
    "DINHEIRO",
    "TUNAI",
    "CONTANTE",
    "KONTANT",
    "KONTANTER",
    "GOTOWKA",
    "NAKIT",
    "KATEINEN",
    "HOTOVE",
    "HOTOVOST",
];
/// Words for change given.
const CHANGE_WORDS: [&str; 20] = [
    "CHANGE",
    "VAXEL",
    "VEKSEL",
    "RESZTA",
    "PARA USTU",
    "BYTTEPENGER",
    "BYTTEPENGE",
    "TAKAISIN",
    "VRACENO",
    "RUCKGELD",
    "WECHSELGELD",
    "RENDU",
    "CAMBIO",
    "VUELTO",
    "RESTO",
    "WISSELGELD",
    "TROCO",
    "BAKI",
    "KEMBALI",
    "KEMBALIAN",
];

/// Cash tendered minus change given, when both are printed.
fn cash_minus_change(rows: &[String]) -> Option<Amount> {
    let tendered = |row: &String| {
        (CASH_WORDS.iter().any(|word| has_word(row, word)) && !row.contains("CASH BILL") && !row.contains("CASH SALE"))
            || row.contains("PAID AMOUNT")
            || row.contains("AMOUNT PAID")
            || row.contains("TENDERED")
            || row.contains("CASH RECEIVED")
    };
    let cash = rows.iter().filter(|row| tendered(row)).find_map(|row| rightmost_priced(row))?;
    let change = rows
        .iter()
        .find(|row| CHANGE_WORDS.iter().any(|word| has_word(row, word)))
        .and_then(|row| rightmost_priced(row))?;
    let paid = cash.value() - change.value();
    (paid > Decimal::ZERO).then(|| Amount::new(paid))
}

/// How the receipt was paid, from its wording.
pub fn payment_method(rows: &[String]) -> Option<Labelled<PaymentMethod>> {
    let has = |words: &[&str]| rows.iter().any(|row| words.iter().any(|word| has_word(row, word)));
    if has(&[
        "VISA",
        "MASTERCARD",
        "MASTER",
        "AMEX",
        "CREDIT CARD",
        "DEBIT CARD",
        "CARD",
        "MEPS",
        "DEBIT",
        "CREDIT",
        "KARTE",
        "EC-KARTE",
        "GIROCARD",
        "CARTE",
        "TARJETA",
        "CARTA",
        "PINNEN",
        "CARTÃO",
        "KAD",
        "KARTU",
        "MAESTRO",
    ]) {
        return Some(Labelled { value: PaymentMethod::Card, confidence: 0.75 });
    }
    if has(&[
        "BOOST",
        "GRABPAY",
        "TOUCH N GO",
        "TNG",
        "E-WALLET",
        "EWALLET",
        "DUITNOW",
        "ALIPAY",
        "WECHAT",
        "APPLE PAY",
        "GOOGLE PAY",
    ]) {
        return Some(Labelled { value: PaymentMethod::Mobile, confidence: 0.75 });
    }
    if has(&["VOUCHER", "GIFT CARD"]) {
        return Some(Labelled { value: PaymentMethod::Voucher, confidence: 0.6 });
    }
    let cash_tendered = rows.iter().any(|row| {
        CASH_WORDS.iter().any(|word| has_word(row, word))
            && !row.contains("CASH BILL")
            && rightmost_priced(row).is_some()
    });
    if cash_tendered || has(&CHANGE_WORDS) || has(&["TENDERED"]) {
        return Some(Labelled { value: PaymentMethod::Cash, confidence: 0.8 });
    }
    None
}

#[cfg(test)]
mod tests;
