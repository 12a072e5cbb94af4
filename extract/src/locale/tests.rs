use super::*;

fn rows(text: &str) -> Vec<String> {
    text.lines().map(|line| line.trim().to_uppercase()).filter(|line| !line.is_empty()).collect()
}

fn locale(text: &str) -> Locale {
    infer(&rows(text), &LocaleHint::default())
}

#[test]
fn a_us_address_and_a_dollar_sign_make_a_us_receipt() {
    let found = locale("SUSHI MAN\n2710 Colby Ave\nEverett, WA 98201\n(425) 252-2123\n05/11/18\nTotal $24.55");
    assert_eq!(found.country.map(|c| c.code), Some("US"));
    assert_eq!(found.currency, Some(Currency::USD));
    assert!(found.month_first());
    assert_eq!(found.cash_rounding, None);
    assert_eq!(found.tag().as_deref(), Some("en-US"));
    assert!(found.evidence[0].contains("WA 98201"), "{:?}", found.evidence);
}

#[test]
fn a_german_supermarket_reads_day_first_with_a_decimal_comma() {
    let found = locale(
        "REWE Markt GmbH\nHauptstrasse 12\n10115 Berlin\nSUMME EUR 24,23\nGegeben BAR 30,00\nRückgeld 5,77\nMwSt 7%",
    );
    assert_eq!(found.country.map(|c| c.code), Some("DE"));
    assert_eq!(found.currency, Some(Currency::EUR));
    assert!(found.decimal_comma);
    assert!(!found.month_first());
    assert_eq!(found.language, Some("de"));
    assert_eq!(found.tag().as_deref(), Some("de-DE"));
}

#[test]
fn malaysian_receipts_round_cash_and_others_do_not() {
    let found =
        locale("BOOK TA .K (TAMAN DAYA) SDN BHD\nNO.53, JALAN SAGU 18,\n81100 JOHOR BAHRU, JOHOR.\nTOTAL RM 9.00");
    assert_eq!(found.country.map(|c| c.code), Some("MY"));
    assert_eq!(found.currency, Some(Currency::MYR));
    assert_eq!(found.cash_rounding, Some(Decimal::new(5, 2)));
    let british = locale("The Ivy\n1-5 West Street\nLondon WC2H 9NQ\nTOTAL £45.20\nVAT 20%");
    assert_eq!(british.country.map(|c| c.code), Some("GB"));
    assert_eq!(british.currency.map(|c| c.to_string()).as_deref(), Some("GBP"));
    assert_eq!(british.cash_rounding, None);
}

#[test]
fn the_account_default_is_a_prior_not_an_override() {
    let hint = LocaleHint { country: Some("DE".to_owned()), currency: Some("EUR".to_owned()) };
    // No evidence: the prior decides.
    let bare = infer(&rows("TOTAL 12,50"), &hint);
    assert_eq!(bare.country.map(|c| c.code), Some("DE"));
    assert_eq!(bare.currency, Some(Currency::EUR));
    // Clear evidence of another country wins over it.
    let american = infer(&rows("Seattle, WA 98101\nTOTAL $12.50"), &hint);
    assert_eq!(american.country.map(|c| c.code), Some("US"));
    assert_eq!(american.currency, Some(Currency::USD));
}

#[test]
fn one_foreign_word_does_not_change_the_language() {
    let found = locale("BAR WANG RICE@PERMAS JAYA\nNETT TOTAL: $8.20\nCASH $8.20\nCHANGE $0.00\nTHANK YOU");
    assert_eq!(found.language, Some("en"));
    let french = locale("CAFE DE LA GARE\n12 RUE DE LA PAIX\n75002 PARIS\nTOTAL TTC 24,00\nMERCI DE VOTRE VISITE");
    assert_eq!(french.language, Some("fr"));
    assert_eq!(french.country.map(|c| c.code), Some("FR"));
}

#[test]
fn prefixed_dollars_and_national_ids_name_their_countries() {
    let brazil = locale(
        "PADARIA BOA VISTA LTDA\nCNPJ 12.345.678/0001-90\nRUA AUGUSTA 1500\n01304-001 SAO PAULO\nTOTAL R$ 23,50\nOBRIGADO",
    );
    assert_eq!(brazil.country.map(|c| c.code), Some("BR"));
    assert_eq!(brazil.currency.map(|c| c.to_string()).as_deref(), Some("BRL"));
    assert!(brazil.decimal_comma && !brazil.month_first());
    let mexico =
        locale("TAQUERIA EL FOGON\nRFC: TEF980101AB1\nC.P. 06700 CDMX\nTOTAL $ 245.00 M.N.\nIVA 16% 33.79\nGRACIAS");
    assert_eq!(mexico.country.map(|c| c.code), Some("MX"));
    assert_eq!(mexico.currency.map(|c| c.to_string()).as_deref(), Some("MXN"));
    assert!(!mexico.month_first());
    let singapore = locale("KOPITIAM\nTOTAL S$12.50\nTHANK YOU");
    assert_eq!(singapore.currency.map(|c| c.to_string()).as_deref(), Some("SGD"));
    let hong_kong = locale("CAFE DE CORAL\nTOTAL HK$128.00");
    assert_eq!(hong_kong.currency.map(|c| c.to_string()).as_deref(), Some("HKD"));
    let india = locale("HOTEL SARAVANA BHAVAN\nGSTIN 33AAACH1234F1Z5\nCGST 2.5% 7.50\nGRAND TOTAL RS.250.00");
    assert_eq!(india.country.map(|c| c.code), Some("IN"));
    assert_eq!(india.currency.map(|c| c.to_string()).as_deref(), Some("INR"));
    let switzerland = locale("MIGROS\nCHE-105.825.480 MWST\nTOTAL CHF 1'234.50");
    assert_eq!(switzerland.country.map(|c| c.code), Some("CH"));
    let poland =
        locale("BIEDRONKA\nNIP 779-10-11-327\n00-950 WARSZAWA\nPARAGON FISKALNY\nSUMA PLN 45,20\nGOTÓWKA 50,00");
    assert_eq!(poland.country.map(|c| c.code), Some("PL"));
    assert_eq!(poland.currency.map(|c| c.to_string()).as_deref(), Some("PLN"));
    let sweden = locale("ICA NARA\nKVITTO\nATT BETALA 123,50 KR\nMOMS 12% 13,23\nTACK FÖR BESÖKET");
    assert_eq!(sweden.country.map(|c| c.code), Some("SE"));
    assert_eq!(sweden.currency.map(|c| c.to_string()).as_deref(), Some("SEK"));
    let canada = locale("TIM HORTONS\nTORONTO ON M5V 2T6\nTOTAL $4.52\nGST/HST 0.52");
    assert_eq!(canada.country.map(|c| c.code), Some("CA"));
    assert_eq!(canada.currency.map(|c| c.to_string()).as_deref(), Some("CAD"));
    assert!(!canada.month_first());
}

#[test]
fn finnish_czech_and_philippine_receipts_name_their_country_and_currency() {
    let finland = locale("K-MARKET\nMannerheimintie 12\n00100 Helsinki\nYHTEENSÄ 83,41 €\nKÄTEINEN 90,00\nALV 24%");
    assert_eq!(finland.country.map(|c| c.code), Some("FI"));
    assert_eq!(finland.currency, Some(Currency::EUR));
    assert!(finland.decimal_comma);
    let czechia = locale("PEKARSTVI NOVAK S.R.O.\nNarodni 12\n110 00 Praha 1\nDPH 21% 107,16\nK UHRADE 617,46 KC");
    assert_eq!(czechia.country.map(|c| c.code), Some("CZ"));
    assert_eq!(czechia.currency.map(|c| c.to_string()).as_deref(), Some("CZK"));
    // An ISO code glued to its amount still names the currency.
    let philippines = locale("JOLLIBEE\nAyala Avenue\nMakati City 1226\nVAT REG TIN 123-456\nTotal PHP395.81");
    assert_eq!(philippines.currency.map(|c| c.to_string()).as_deref(), Some("PHP"));
    // A Japanese postcode's `-0061` is not the international prefix 00 61 (Australia).
    let japan = locale("LAWSON K.K.\n4-5-6 Ginza\nChuo-ku, Tokyo 104-0061\nTOTAL ¥2,050");
    assert_eq!(japan.country.map(|c| c.code), Some("JP"));
    assert!(!japan.evidence.iter().any(|e| e.contains("+61")), "{:?}", japan.evidence);
}

#[test]
fn currencies_without_minor_units_read_whole_amounts() {
    let japan = locale("LAWSON\n+81 3-1234-5678\nTOTAL ¥1,280\nCASH ¥2,000");
    assert_eq!(japan.country.map(|c| c.code), Some("JP"));
    assert_eq!(japan.minor_units, 0);
    assert_eq!(normalize_amounts("TOTAL ¥1,280", &japan), "TOTAL ¥1280.00");
    let indonesia = locale("INDOMARET\nTOTAL BAYAR RP 125.000\nTUNAI RP 150.000\nKEMBALI RP 25.000\nTERIMA KASIH");
    assert_eq!(indonesia.country.map(|c| c.code), Some("ID"));
    assert_eq!(indonesia.currency.map(|c| c.to_string()).as_deref(), Some("IDR"));
    assert_eq!(normalize_amounts("TOTAL BAYAR RP 125.000", &indonesia), "TOTAL BAYAR RP 125000.00");
    // A quantity stays a quantity, a date and a time stay as they are.
    assert_eq!(normalize_amounts("2 AQUA 600ML 3.500", &indonesia), "2 AQUA 600ML 3500.00");
    assert_eq!(normalize_amounts("12.05.2024 10:31", &indonesia), "12.05.2024 10:31");
    // Grouped with a decimal comma: the decimals stay.
    assert_eq!(normalize_amounts("TOTAL 125.000,00", &indonesia), "TOTAL 125000,00");
}

#[test]
fn a_stray_sign_does_not_outvote_a_clear_country() {
    // `¥` is OCR's reading of `@` on a Malaysian receipt.
    let found = locale("BERRY'S CARE HOUSE\n47100 PUCHONG,\nSELANGOR\nGST G4 ¥ 0.00 0.00\nTOTAL 11.25");
    assert_eq!(found.country.map(|c| c.code), Some("MY"));
    assert_eq!(found.currency, Some(Currency::MYR));
}

#[test]
fn thin_evidence_gives_no_country() {
    let found = locale("TOTAL 9.00\nCASH 10.00");
    assert_eq!(found.country, None);
    assert_eq!(found.currency, None);
    assert!(!found.date_order_known);
    let german = Locale { decimal_comma: true, ..Locale::default() };
    assert_eq!(normalize_amounts("SUMME 1.234,56", &german), "SUMME 1234,56");
}

#[test]
fn close_contenders_that_share_a_currency_give_it() {
    // German words and `UST` point at Germany and Austria alike, both euro countries.
    let found = locale("GESAMT 12,40\nUST 19% 1,98\nBAR 20,00\nVIELEN DANK");
    assert_eq!(found.country, None);
    assert_eq!(found.currency, Some(Currency::EUR));
    assert!(found.currency_confidence <= 0.5);
    // German words alone also fit Switzerland: no currency is guessed.
    assert_eq!(locale("GESAMT 12,40\nBAR 20,00\nVIELEN DANK").currency, None);
    // A five-digit postcode before the town is not Austrian or Swiss.
    let german = locale("GESAMT 12,40\nBAR 20,00\nVIELEN DANK\n33100 PADERBORN\nMWST 19%");
    assert_eq!(german.country.map(|c| c.code), Some("DE"));
}

#[test]
fn space_grouping_after_a_label_with_accents_is_one_amount() {
    let czech = locale("POTRAVINY NOVÁK S.R.O.\nDIČ CZ12345678\nDPH 21%\nCELKEM K ÚHRADĚ 7 476,59 KČ");
    assert!(czech.decimal_comma);
    assert_eq!(normalize_amounts("CELKEM K ÚHRADĚ 7 476,59 KČ", &czech), "CELKEM K ÚHRADĚ 7476,59 KČ");
    assert_eq!(normalize_amounts("MAKSETTAVA YHTEENSÄ 1 412,46 €", &czech), "MAKSETTAVA YHTEENSÄ 1412,46 €");
}

#[test]
fn a_country_domain_names_the_country() {
    use super::contact::domain_country;
    assert_eq!(domain_country("WWW. SMSUPERMARKET .COM.PH"), Some(("SMSUPERMARKET.COM.PH".to_owned(), "PH")));
    assert_eq!(domain_country("INFO@SHOP.CO.UK").map(|(_, country)| country), Some("GB"));
    assert_eq!(domain_country("WWW.ALDI-SUED.DE").map(|(_, country)| country), Some("DE"));
    // Generic names and addresses without a country say nothing.
    assert_eq!(domain_country("WWW.BRAND.CO"), None);
    assert_eq!(domain_country("WWW.GOLDENPEARCAFE.COM"), None);
    assert_eq!(domain_country("TOTAL 12.DE"), None);
    // A sentence after a domain is not its country.
    assert_eq!(domain_country("SURVEY AT WWW.TELLSUBWAY.COM. IT ONLY TAKES A MINUTE"), None);
    assert_eq!(domain_country("WWW.SHOP.COM.\nNO REFUNDS"), None);
    // A Philippine receipt whose date is ambiguous reads it month first.
    let found = locale(
        "SM SUPERMARKET\nQuezon City 1100\nTOTAL DUE 418.14\nDate: 12/05/2024 07:06\nwww. smsupermarket .com.ph",
    );
    assert_eq!(found.country.map(|c| c.code), Some("PH"));
    assert!(found.month_first());
}

#[test]
fn a_phrase_read_without_its_spaces_still_counts() {
    let found = locale("BENNETT DELI INC.\n77 Escolta Street\nVATREGTIN80546893\nMakati City 1226\nTOTAL DUE 471.84");
    assert!(found.evidence.iter().any(|line| line.contains("VAT REG TIN")), "{:?}", found.evidence);
}
