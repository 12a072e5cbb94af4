use super::*;

fn rows(text: &str) -> Vec<String> {
    text.lines().map(|line| line.trim().to_uppercase()).filter(|line| !line.is_empty()).collect()
}

fn amount(text: &str) -> Amount {
    text.parse().expect("valid")
}

#[test]
fn total_table() {
    let cases = [
        (
            "SUBTOTAL 8.50\nGST 6% 0.51\nTOTAL 9.01\nROUNDING -0.01\nROUNDED TOTAL (RM): 9.00\nCASH 10.00\nCHANGE 1.00",
            "9.00",
        ),
        ("TOTAL:\n9.00\nCASH 10.00", "9.00"),
        ("TOTAL QTY 3\nTOTAL 46,98", "46.98"),
        ("Total Incl. GST: RM41 .81", "41.81"),
        ("GRAND TOTAL 1,234.50\nTOTAL GST 69.88", "1234.50"),
        ("NETT TOTAL 33.00\nTOTAL 31.13", "33.00"),
        ("TOTAL AMT INCL. GST @ 6% : 189.00\nTOTAL AMT PAYABLE 159.00", "159.00"),
        ("TAKEOUT TOTAL (INCL GST) 28.50\nTOTA] ROUNDED 28.50\nTOTAL INCLUDES 6% GST 1.61", "28.50"),
        ("ITEM A 3.00\nCASH 20.00\nCHANGE 14.50", "5.50"),
        ("TOTAL SALES (INCLUSIVE GST) RM 15.92\nCASH RM 51.00\nCHANGE RM 35.10", "15.90"),
        ("TOTAL AMT INCL GST @ 6% : 8.48\nPAID AMOUNT: 100.00\nCHANGE : 91.50", "8.50"),
        ("TOTAL SALES (INCLUSIVE GST) RM 177.22\nROUNDING ADJUSTMENT RM .02\nCARD 177.20", "177.20"),
        ("TOTAL 14.38\nROUNDING ADJ 0.02", "14.40"),
        ("TOTAL 14.37\nVISA 14.37", "14.37"),
        ("A LOTAL $13.53", "13.53"),
        ("TOTAL AMOUNT: 3.00;\nCASH RECEIVED 101.00\nCHANGE : 70.00", "31.00"),
        ("TOTAL SALES (EXCLUDING GST) . 7.00\nI TOTALGST . 0.42\nCASH : 7.42\nCHANGE : 0.00", "7.42"),
        ("O6/O2 2PTOTAL + 39.18", "39.18"),
        ("SUB-TOTAL: $27.62", "27.62"),
        ("ITEM 20.00\nMASTERCARD ##96170 $52.47", "52.47"),
        ("SUBTOTAL 74.49\nTAX 5.96\nTOTAL 8.45\nAMOUNT DUE 80.45", "80.45"),
    ];
    for (text, expected) in cases {
        let total = money_fields(&rows(text), Some(Decimal::new(5, 2))).total.map(|total| total.value);
        assert_eq!(total, Some(amount(expected)), "{text:?}");
    }
}

#[test]
fn subtotal_tax_and_tip_are_read() {
    let fields = money_fields(
        &rows("SUB TOTAL 30.91\nGST ID NO: 001234\nSST 6% 1.85\nSERVICE CHARGE 10% 3.09\nTOTAL 35.85"),
        None,
    );
    assert_eq!(fields.subtotal.map(|f| f.value), Some(amount("30.91")));
    assert_eq!(fields.tax.map(|f| f.value), Some(amount("1.85")));
    assert_eq!(fields.tip.map(|f| f.value), Some(amount("3.09")));
}

#[test]
fn totals_in_other_languages() {
    let cases = [
        ("ZWISCHENSUMME 22,10\nMWST 7% 1,55\nSUMME EUR 24,23\nGEGEBEN BAR 30,00\nRÜCKGELD 5,77", "24.23"),
        ("ARTIKEL 3,10\nZU ZAHLEN 3,10", "3.10"),
        ("TOTAL HT 20,00\nTVA 20% 4,00\nTOTAL TTC 24,00", "24.00"),
        ("SUBTOTAL 10,00\nIVA 21% 2,10\nIMPORTE TOTAL 12,10", "12.10"),
        ("TOTALE IVA 1,00\nTOTALE COMPLESSIVO 34,00\nCONTANTI 50,00\nRESTO 16,00", "34.00"),
        ("SUBTOTAAL 8,00\nTOTAAL 8,50\nPINNEN 8,50", "8.50"),
        ("JUMLAH 15.90\nTUNAI 20.00\nBAKI 4.10", "15.90"),
        // Nordic, Finnish, Czech, Turkish and Portuguese labels, with and without their accents
        // (OCR often drops them), the subtotal never taken for the total.
        ("VALISUMMA 83,41\nALV 25.5% 16,95\nYHTEENSA 83,41 €\nKATEINEN 90,00\nTAKAISIN 6,59", "83.41"),
        ("MEZISOUČET 600,00\nDPH 21% 104,13\nK ÚHRADĚ 617,46 KČ\nHOTOVĚ 620,00\nVRÁCENO 2,54", "617.46"),
        ("DELSUM 540,29\nMVA 25% 108,06\nÅ BETALE 581,05 KR\nKORT 581,05", "581.05"),
        ("SUBTOTAL 271,05\nMOMS 25% 54,21\nAT BETALE 271,05\nKONTANT 280,00\nBYTTEPENGE 8,95", "271.05"),
        ("ARA TOPLAM 120,00\nKDV %20 20,00\nÖDENECEK 140,00 TL", "140.00"),
        ("KDV20% 86,82\nGENELTOPLAM 520,91\nKREDIKARTI 520,91", "520.91"),
        ("SUBTOTAL 80,00\nVALOR A PAGAR R$ 88,41\nTROCO 11,59", "88.41"),
    ];
    for (text, expected) in cases {
        let total = money_fields(&rows(text), None).total.map(|total| total.value);
        assert_eq!(total, Some(amount(expected)), "{text:?}");
    }
    // No rounding rule outside the countries that round cash: the printed total stands.
    let fields = money_fields(&rows("TOTAL 14.38\nROUNDING ADJ 0.02\nCASH 20.00\nCHANGE 5.60"), None);
    assert_eq!(fields.total.map(|t| t.value), Some(amount("14.38")));
}

#[test]
fn the_receipts_arithmetic_sets_the_totals_confidence() {
    let confidence = |text: &str| money_fields(&rows(text), None).total.map(|total| total.confidence);
    // Both checks agree: near certain.
    let agreed = confidence("SUBTOTAL 10.00\nTAX 0.80\nTOTAL 10.80\nCASH 20.00\nCHANGE 9.20");
    // Nothing to check against: the label's own strength.
    let alone = confidence("TOTAL 10.80");
    // Both checks disagree with the total read (an OCR slip in it): far less sure.
    let disputed = confidence("SUBTOTAL 10.00\nTAX 0.80\nTOTAL 16.80\nCASH 20.00\nCHANGE 9.20");
    assert!(agreed > alone && alone > disputed, "{agreed:?} {alone:?} {disputed:?}");
    assert!(disputed.is_some_and(|c| c < 0.6), "{disputed:?}");
}

#[test]
fn no_label_means_no_total() {
    assert_eq!(money_fields(&rows("THANK YOU\nPLEASE COME AGAIN 12.00 OFF"), None).total, None);
}

#[test]
fn payment_and_currency_need_evidence() {
    assert_eq!(
        payment_method(&rows("TOTAL 9.00\nCASH 10.00\nCHANGE 1.00")).map(|p| p.value),
        Some(PaymentMethod::Cash)
    );
    assert_eq!(payment_method(&rows("VISA ************1234")).map(|p| p.value), Some(PaymentMethod::Card));
    assert_eq!(payment_method(&rows("CASH BILL\nTOTAL 9.00")), None);
}

#[test]
fn a_deposit_between_the_total_and_the_amount_due_makes_the_amount_due_the_total() {
    let fields = money_fields(
        &rows(
            "ZWISCHENSUMME 7938,00\nUST. 19% 1508,22\nGESAMTBETRAG 9446,22\nABZÜGLICH ANZAHLUNG -2360,00\nOFFENER BETRAG 7086,22 EUR",
        ),
        None,
    );
    assert_eq!(fields.total.map(|t| t.value), Some(amount("7086.22")));
    // Without the deposit's arithmetic, the larger of two strong totals stands.
    let fields = money_fields(&rows("GESAMTBETRAG 9446,22\nHINWEIS 12,00\nOFFENER BETRAG 7086,22"), None);
    assert_eq!(fields.total.map(|t| t.value), Some(amount("9446.22")));
}

#[test]
fn an_invoices_net_amount_is_not_its_total() {
    for (text, want) in [
        ("TOTALE IMPONIBILE 830,00\nIVA 22% 182,60\nNETTO A PAGARE 1012,60", "1012.60"),
        ("RAZEM NETTO 1000,00\nVAT 23% 230,00\nRAZEM BRUTTO 1230,00", "1230.00"),
        ("VEROTON YHTEENSÄ 1492,00\nALV 25.5% 380,46\nMAKSETTAVA 1872,46", "1872.46"),
        ("NETTO 1253,00\nMVA 25% 313,25\nRESTBELØP 1566,25", "1566.25"),
    ] {
        let fields = money_fields(&rows(text), None);
        assert_eq!(fields.total.map(|t| t.value), Some(amount(want)), "{text}");
    }
}
