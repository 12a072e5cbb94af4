//! Whole receipts as OCR text, one per number, date and locale format: each must give the right
//! total, currency, country and date without any account setting.

use chrono::NaiveDate;
use finagent_extract::{Context, Gazetteer, LocaleHint, Page, extract_with};

struct Case {
    name: &'static str,
    text: &'static str,
    total: Option<&'static str>,
    currency: Option<&'static str>,
    country: Option<&'static str>,
    date: Option<&'static str>,
}

const TODAY: (i32, u32, u32) = (2026, 12, 6);

fn extract(text: &str) -> finagent_extract::Extraction {
    let today = NaiveDate::from_ymd_opt(TODAY.0, TODAY.1, TODAY.2).expect("valid");
    extract_with(
        &Page::from_text(text),
        Context { gazetteer: &Gazetteer::default(), hint: &LocaleHint::default(), today },
    )
}

const CASES: &[Case] = &[
    Case {
        name: "Germany, a customer-since date printed above the purchase's date and time",
        text: "BACKEREI SCHNEIDER GMBH\nHauptstrasse 24\n33100 Paderborn\nKunde seit 13.08.2006\nBROTCHEN 2,40\nSUMME 12,40 €\nBAR 20,00\nRUCKGELD 7,60\n23.09.2024 14:02",
        total: Some("12.40"),
        currency: Some("EUR"),
        country: Some("DE"),
        date: Some("2024-09-23"),
    },
    Case {
        name: "Finland, accents lost to OCR, a space-grouped total",
        text: "K-MARKET\nAleksanterinkatu 193\n00100 Helsinki\nY-tunnus 1234567-8\n08.03.2023 12:01\nVALISUMMA 1 083,41\nALV 25.5% 216,95\nYHTEENSA 1 083,41 €\nKORTTI 1 083,41",
        total: Some("1083.41"),
        currency: Some("EUR"),
        country: Some("FI"),
        date: Some("2023-03-08"),
    },
    Case {
        name: "Czechia, koruna read KC, a member date in Czech",
        text: "POTRAVINY KUCERA S.R.O.\nNarodni 118\n602 00 Brno\nDIC CZ12345678\nClenem od 22.03.2013\nMEZISOUCET 617,46\nDPH 21% 107,16\nK UHRADE 617,46 KC\nHOTOVE 620,00\nVRACENO 2,54\n06.01.2024 09:15",
        total: Some("617.46"),
        currency: Some("CZK"),
        country: Some("CZ"),
        date: Some("2024-01-06"),
    },
    Case {
        name: "Philippines, PHP glued to the amount, month-first dates",
        text: "JOLLIBEE\nAyala Avenue\nMakati City 1226\nVAT REG TIN 000-123-456-000\n12/05/2024 13:20\nCHICKENJOY 180.00\nTotal PHP471.84\nCash 500.00\nChange 28.16",
        total: Some("471.84"),
        currency: Some("PHP"),
        country: Some("PH"),
        date: Some("2024-12-05"),
    },
    Case {
        name: "Singapore, S$ glued",
        text: "YA KUN KAYA TOAST\n#01-23 FUNAN MALL\nSINGAPORE 179105\n15/03/2024 08:12\nKAYA TOAST SET 5.60\nKOPI 1.90\nTOTAL S$12.50\nTHANK YOU",
        total: Some("12.50"),
        currency: Some("SGD"),
        country: Some("SG"),
        date: Some("2024-03-15"),
    },
    Case {
        name: "Brazil, R$ with a decimal comma",
        text: "PADARIA BOA VISTA LTDA\nCNPJ 12.345.678/0001-90\nRUA AUGUSTA 1500\n01304-001 SAO PAULO SP\nDATA 02/04/2024\nPAO DE QUEIJO 12,00\nCAFE 11,50\nTOTAL R$ 23,50\nDINHEIRO R$ 30,00\nTROCO R$ 6,50\nOBRIGADO VOLTE SEMPRE",
        total: Some("23.50"),
        currency: Some("BRL"),
        country: Some("BR"),
        date: Some("2024-04-02"),
    },
    Case {
        name: "Mexico, $ with M.N. and day-first dates",
        text: "TAQUERIA EL FOGON\nRFC: TEF980101AB1\nAV. INSURGENTES SUR 123\nC.P. 06700 CDMX\nFECHA 05/03/2024\nTACOS AL PASTOR 180.00\nAGUA 65.00\nTOTAL $ 245.00 M.N.\nIVA 16% 33.79\nGRACIAS POR SU VISITA",
        total: Some("245.00"),
        currency: Some("MXN"),
        country: Some("MX"),
        date: Some("2024-03-05"),
    },
    Case {
        name: "Indonesia, rupiah without minor units",
        text: "INDOMARET\nJL. SUDIRMAN NO. 5\nJAKARTA\n+62 21 555 0101\n12.05.2024 10:31\n2 AQUA 600ML 7.000\nINDOMIE GORENG 3.500\nTOTAL BAYAR RP 125.000\nTUNAI RP 150.000\nKEMBALI RP 25.000\nTERIMA KASIH",
        total: Some("125000"),
        currency: Some("IDR"),
        country: Some("ID"),
        date: Some("2024-05-12"),
    },
    Case {
        name: "Japan, yen with thousands commas",
        text: "LAWSON\nSHIBUYA 1-2-3\n+81 3-1234-5678\n2024/06/01 19:20\nONIGIRI ¥150\nBENTO ¥980\nTOTAL ¥1,280\nCASH ¥2,000\nCHANGE ¥720",
        total: Some("1280"),
        currency: Some("JPY"),
        country: Some("JP"),
        date: Some("2024-06-01"),
    },
    Case {
        name: "India, lakh grouping and RS.",
        text: "HOTEL SARAVANA BHAVAN\nGSTIN 33AAACH1234F1Z5\nBILL DATE 06.07.2023\nMEALS 1,10,000.00\nCGST 2.5% 2,750.00\nSGST 2.5% 2,750.00\nGRAND TOTAL RS.1,15,500.00",
        total: Some("115500.00"),
        currency: Some("INR"),
        country: Some("IN"),
        date: Some("2023-07-06"),
    },
    Case {
        name: "France, thin-space grouping",
        text: "CAVE DU PALAIS SARL\n12 RUE DE LA PAIX\n75002 PARIS\nDATE 14/02/2024\nCHAMPAGNE 1\u{202F}180,00\nTOTAL TTC 1\u{202F}234,56 €\nCARTE BANCAIRE\nMERCI DE VOTRE VISITE",
        total: Some("1234.56"),
        currency: Some("EUR"),
        country: Some("FR"),
        date: Some("2024-02-14"),
    },
    Case {
        name: "Germany, space grouping after the label",
        text: "MEDIAMARKT GMBH\nHAUPTSTRASSE 12\n10115 BERLIN\nDATUM 21.11.2024\nFERNSEHER 1 199,00\nSUMME EUR 1 234,56\nKARTE 1 234,56\nMWST 19% 197,12\nVIELEN DANK",
        total: Some("1234.56"),
        currency: Some("EUR"),
        country: Some("DE"),
        date: Some("2024-11-21"),
    },
    Case {
        name: "Switzerland, apostrophe grouping",
        text: "MIGROS GENOSSENSCHAFT\nCHE-105.825.480 MWST\n8001 ZÜRICH\n03.01.2025\nTOTAL CHF 1'234.50\nBAR 1'300.00\nRÜCKGELD 65.50",
        total: Some("1234.50"),
        currency: Some("CHF"),
        country: Some("CH"),
        date: Some("2025-01-03"),
    },
    Case {
        name: "United States, a membership date that is not the purchase",
        text: "COSTCO WHOLESALE\n4401 4TH AVE S\nSEATTLE, WA 98134\nMEMBER SINCE MAR 2019\n11/28/2024 14:02\nBANANAS 1.99\nTOTAL $1.99\nVISA $1.99",
        total: Some("1.99"),
        currency: Some("USD"),
        country: Some("US"),
        date: Some("2024-11-28"),
    },
    Case {
        name: "A due date and an expiry are not the purchase date",
        text: "ACME SERVICES LTD\nLONDON SW1A 1AA\nCARD EXP 09/27\nDUE DATE 30/12/2024\nINVOICE DATE 30/11/2024\nTOTAL £120.00",
        total: Some("120.00"),
        currency: Some("GBP"),
        country: Some("GB"),
        date: Some("2024-11-30"),
    },
    Case {
        name: "A date after today is refused, a 1990s one kept",
        text: "ANTIQUE BOOKS\nSEATTLE, WA 98101\n01/05/2031\n12/24/1998\nTOTAL $15.00",
        total: Some("15.00"),
        currency: Some("USD"),
        country: Some("US"),
        date: Some("1998-12-24"),
    },
    Case {
        name: "Poland, złoty and a decimal comma",
        text: "BIEDRONKA\nNIP 779-10-11-327\nUL. MARSZALKOWSKA 10\n00-950 WARSZAWA\nPARAGON FISKALNY\n2024-08-09\nMLEKO 3,49\nCHLEB 4,99\nSUMA PLN 45,20\nGOTÓWKA 50,00\nRESZTA 4,80",
        total: Some("45.20"),
        currency: Some("PLN"),
        country: Some("PL"),
        date: Some("2024-08-09"),
    },
    Case {
        name: "Sweden, kronor after the amount",
        text: "ICA NARA HORNSTULL\nKVITTO\n2024-10-02 17:45\nMJOLK 18,90\nATT BETALA 123,50 KR\nMOMS 12% 13,23\nKORT 123,50\nTACK FÖR BESÖKET",
        total: Some("123.50"),
        currency: Some("SEK"),
        country: Some("SE"),
        date: Some("2024-10-02"),
    },
];

#[test]
fn every_format_gives_its_fields() {
    let mut failures = Vec::new();
    for case in CASES {
        let found = extract(case.text);
        let got = (
            found.fields.total.map(|t| t.to_string()),
            found.fields.currency.map(|c| c.to_string()),
            found.locale.country.map(|c| c.code.to_owned()),
            found.fields.date.map(|d| d.to_string()),
        );
        let want = (
            case.total.map(str::to_owned),
            case.currency.map(str::to_owned),
            case.country.map(str::to_owned),
            case.date.map(str::to_owned),
        );
        if got != want {
            failures.push(format!("{}: got {got:?}, want {want:?} ({:?})", case.name, found.locale.evidence));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
