use super::*;

fn rows(text: &str) -> Vec<String> {
    text.lines().map(|line| line.trim().to_uppercase()).filter(|line| !line.is_empty()).collect()
}

/// The name the layout rules read from `text`, without a gazetteer.
fn name_of(text: &str) -> Option<String> {
    merchant(&rows(text), &Gazetteer::default()).name.map(|name| name.value)
}

const RECEIPT: &str = "TAN WOON YANN\nBOOK TA .K(TAMAN DAYA) SDN BND\n789417-W\nNO.53 55,57 & 59, JALAN SAGU 18,\n\
                       TAMAN DAYA,\n81100 JOHOR BAHRU,\nJOHOR.\nDOCUMENT NO : TD01167104\nDATE: 25/12/2018";

#[test]
fn rules_find_the_legal_name_and_the_address_below_it() {
    let found = merchant(&rows(RECEIPT), &Gazetteer::default());
    assert_eq!(found.name.map(|n| n.value).as_deref(), Some("BOOK TA .K(TAMAN DAYA) SDN BHD"));
    assert_eq!(
        found.address.map(|a| a.value).as_deref(),
        Some("NO.53 55,57 & 59, JALAN SAGU 18, TAMAN DAYA, 81100 JOHOR BAHRU, JOHOR.")
    );
}

#[test]
fn names_over_two_rows_and_addresses_after_other_lines() {
    let found = merchant(
        &rows(
            "HOME MASTER HARDWARE &\nELECTRICAL\n(1045341-X)\nNO.113G & 115G, JALAN SETIA GEMBILANG\n\
             40170 SETIA ALAM, SELANGOR.\n07-355 2616\nTAX INVOICE",
        ),
        &Gazetteer::default(),
    );
    assert_eq!(found.name.map(|n| n.value).as_deref(), Some("HOME MASTER HARDWARE & ELECTRICAL"));
    assert_eq!(
        found.address.map(|a| a.value).as_deref(),
        Some("NO.113G & 115G, JALAN SETIA GEMBILANG 40170 SETIA ALAM, SELANGOR.")
    );
    let split = merchant(
        &rows("UNIHAKKA INTERNATIONAL (SETIA\nALAM) SDN BHD\nNO. 17-G, JALAN SETIA INDAH"),
        &Gazetteer::default(),
    );
    assert_eq!(split.name.map(|n| n.value).as_deref(), Some("UNIHAKKA INTERNATIONAL (SETIA ALAM) SDN BHD"));
}

#[test]
fn debris_around_a_name_is_removed() {
    let cases = [
        ("J HEART OF PORTUGAL RESTAURANT", "HEART OF PORTUGAL RESTAURANT"),
        ("B & BEST RESTAURANT", "B & BEST RESTAURANT"),
        ("SAM SAM TRADING CO", "SAM SAM TRADING CO"),
        ("ELKEN SERVICE SDN BHD (310184-X)", "ELKEN SERVICE SDN BHD"),
        ("MR. D.I.Y. (M) SON BHD", "MR. D.I.Y. (M) SDN BHD"),
        ("MEGAH RETAIL SBN BHO", "MEGAH RETAIL SDN BHD"),
        ("MR. D.I.¥. (M) SDN BHD", "MR. D.I.Y. (M) SDN BHD"),
        ("YONG CEN ENTERPRISE FU VE", "YONG CEN ENTERPRISE"),
        ("ONE ONE THREE SEAFOOD RESTAURANT SDN", "ONE ONE THREE SEAFOOD RESTAURANT SDN BHD"),
        ("| FLUE BEAR TAVERN", "FLUE BEAR TAVERN"),
        ("5 ~ MIGUELS MEXICAN A", "MIGUELS MEXICAN"),
        ("KALAVERAS - BELLFLOWER", "KALAVERAS"),
        ("WENDY'S RESTAURANT #00003675", "WENDY'S RESTAURANT"),
        ("EL MESON MEXICAN RESTAURANT", "EL MESON MEXICAN RESTAURANT"),
        ("RED & HOT II", "RED & HOT II"),
        ("A&W", "A&W"),
    ];
    for (noisy, clean) in cases {
        assert_eq!(clean_name(noisy), clean, "{noisy:?}");
    }
    let found = merchant(&rows("1 TACO SALAD 9.50\nTHE\nGOLDEN PEAR CAFE\n123 MAIN ST"), &Gazetteer::default());
    assert_eq!(found.name.map(|n| n.value).as_deref(), Some("THE GOLDEN PEAR CAFE"));
}

#[test]
fn the_gazetteer_repairs_ocr_slips() {
    let gazetteer = Gazetteer {
        source: String::new(),
        countries: vec![],
        merchants: vec![KnownMerchant {
            name: "BOOK TA .K (TAMAN DAYA) SDN BHD".to_owned(),
            addresses: vec!["NO.53 55,57 & 59, JALAN SAGU 18, TAMAN DAYA, 81100 JOHOR BAHRU, JOHOR.".to_owned()],
        }],
    };
    let noisy = RECEIPT.replace("JALAN SAGU", "JALAN SACU");
    let found = merchant(&rows(&noisy), &gazetteer);
    assert_eq!(found.name.map(|n| n.value).as_deref(), Some("BOOK TA .K (TAMAN DAYA) SDN BHD"));
    assert_eq!(
        found.address.map(|a| a.value).as_deref(),
        Some("NO.53 55,57 & 59, JALAN SAGU 18, TAMAN DAYA, 81100 JOHOR BAHRU, JOHOR.")
    );
}

#[test]
fn an_unknown_merchant_is_not_forced_onto_a_known_one() {
    let gazetteer = Gazetteer {
        source: String::new(),
        countries: vec![],
        merchants: vec![KnownMerchant { name: "SANYU STATIONERY SHOP".to_owned(), addresses: vec![] }],
    };
    let found = merchant(&rows("KEDAI PAPAN YEW CHUAN\nLOT 276 JALAN BANTING"), &gazetteer);
    assert_eq!(found.name.map(|n| n.value).as_deref(), Some("KEDAI PAPAN YEW CHUAN"));
}

#[test]
fn legal_forms_count_only_as_whole_words() {
    // `INC` inside LINCOLN must not make the street outrank the name above it.
    let found = merchant(&rows("MIDTOWN DELI\n100 LINCOLN PLAZA\nQUINCY, MA 02169\nTOTAL 9.00"), &Gazetteer::default());
    assert_eq!(found.name.map(|n| n.value).as_deref(), Some("MIDTOWN DELI"));
    assert!(has_legal_suffix("ACME WIDGETS INC."));
    assert!(!has_legal_suffix("PRINCE STREET"));
}

#[test]
fn the_bundled_gazetteer_loads() {
    let gazetteer = Gazetteer::bundled();
    assert!(gazetteer.merchants.len() > 50, "{}", gazetteer.merchants.len());
    assert!(gazetteer.source.contains("SROIE"));
}

#[test]
fn the_row_under_a_sellers_label_names_the_seller_and_the_buyers_block_does_not() {
    // A Polish invoice read column by column: the seller's block, then the buyer's.
    let found = merchant(
        &rows(
            "FAKTURA VAT FV2026-0042\nDATA WYSTAWIENIA: 12.03.2026\nSPRZEDAWCA:\nKAMIŃSKI DORADZTWO SP. Z O.O.\n\
             UL. MARSZAŁKOWSKA 172\n00-001 WARSZAWA\nNIP 5261234567\nNABYWCA:\nNOWAK TRANSPORT S.A.\nUL. DŁUGA 5\n31-010 KRAKÓW",
        ),
        &Gazetteer::default(),
    );
    assert_eq!(found.name.map(|n| n.value).as_deref(), Some("KAMIŃSKI DORADZTWO SP. Z O.O."));
    assert_eq!(found.address.map(|a| a.value).as_deref(), Some("UL. MARSZAŁKOWSKA 172 00-001 WARSZAWA"));
}

#[test]
fn an_address_stops_before_the_next_partys_label_or_name() {
    for (after, label) in [("KUNDE:", "a label"), ("WAGNER LOGISTIK E.K.", "a company"), ("BILLED TO", "a buyer label")]
    {
        let found = merchant(
            &rows(&format!("SCHNEIDER SOFTWARE GMBH\nHAUPTSTRASSE 132\n10115 BERLIN\n{after}")),
            &Gazetteer::default(),
        );
        assert_eq!(found.address.map(|a| a.value).as_deref(), Some("HAUPTSTRASSE 132 10115 BERLIN"), "{label}");
    }
}

#[test]
fn legal_forms_that_are_also_short_words_count_only_at_the_end_of_a_name() {
    assert!(has_legal_suffix("ELEKTRO PEDERSEN AS"));
    assert!(has_legal_suffix("NORDIC DATA OYJ"));
    assert!(has_legal_suffix("PT MAJU JAYA"));
    assert!(has_legal_suffix("MÜLLER ELEKTRO GMBH & CO. KG"));
    assert!(!has_legal_suffix("AS YOU LIKE IT"));
    assert!(!has_legal_suffix("AG BAKERY"));
    assert!(!has_legal_suffix("PTARMIGAN CAFE"));
}

#[test]
fn a_sender_lines_name_is_the_seller_over_the_buyer_in_the_window() {
    let rows = rows(
        "DE JONG TRANSPORT V.O.F.\nDAMRAK 14\n3011 AD ROTTERDAM\nVAN DIJK CATERING V.O.F.\nKALVERSTRAAT 154\n3511 AL UTRECHT",
    );
    let heights = [18, 18, 18, 28, 28, 28];
    let found = merchant_in_document(&rows, &heights, Some(0), &Gazetteer::default());
    assert_eq!(found.name.map(|n| n.value).as_deref(), Some("DE JONG TRANSPORT V.O.F."));
    assert_eq!(found.address.map(|a| a.value).as_deref(), Some("DAMRAK 14 3011 AD ROTTERDAM"));
    // Without the sender line's mark, the street-and-town block below the buyer's name wins.
    let found = merchant_in_document(&rows, &heights, None, &Gazetteer::default());
    assert_eq!(found.name.map(|n| n.value).as_deref(), Some("VAN DIJK CATERING V.O.F."));
}

#[test]
fn a_row_that_opens_with_a_house_number_is_the_address_not_the_name() {
    for (text, name, address) in [
        // OCR glues the house number to the street.
        (
            "RIHANNA'S CARIBBEAN RESTAURANT\n12709BEECHNUTSTSTE100\nHOUSTON,TX77072\n8328902382",
            "RIHANNA'S CARIBBEAN RESTAURANT",
            "12709BEECHNUTSTSTE100 HOUSTON,TX77072",
        ),
        // A street without a street word, right above the town line.
        ("ARTHURS\n237 WASHINGTON\nHOBOKEN, NJ 07030\n(201) 656-5009", "ARTHURS", "237 WASHINGTON HOBOKEN, NJ 07030"),
    ] {
        let found = merchant(&rows(text), &Gazetteer::default());
        assert_eq!(found.name.map(|n| n.value).as_deref(), Some(name), "{text}");
        assert_eq!(found.address.map(|a| a.value).as_deref(), Some(address), "{text}");
    }
    // A short number opens many names.
    let found = merchant(&rows("85C BAKERY CAFE\n5402 WALNUT AVE\nIRVINE, CA 92604"), &Gazetteer::default());
    assert_eq!(found.name.map(|n| n.value).as_deref(), Some("85C BAKERY CAFE"));
    // A street printed without its number.
    let found = merchant(&rows("STK MIAMI BEACH\nCOLLINS AVE\nMIAMI, FL 33140"), &Gazetteer::default());
    assert_eq!(found.name.map(|n| n.value).as_deref(), Some("STK MIAMI BEACH"));
    assert!(house_number_first("16530BELLFLOWERBLVD") && house_number_first("#237E, SISIWATH QUAY"));
    assert!(house_number_first("#237E,SISIWATH QUAY, PHNOM PENH") && house_number_first("3950 E SLAUSON"));
    assert!(!house_number_first("7-ELEVEN") && !house_number_first("85C BAKERY CAFE"));
}

#[test]
fn a_row_that_only_says_what_kind_of_place_completes_the_name_above() {
    let found = merchant(
        &rows("CHRIS'S\nHAMBURGERS\n3950 E SLAUSON MAYWOOD, CA 90270\nPHONE 323-588-1607"),
        &Gazetteer::default(),
    );
    assert_eq!(found.name.map(|n| n.value).as_deref(), Some("CHRIS'S HAMBURGERS"));
}

#[test]
fn a_branch_named_after_the_town_below_is_not_part_of_the_name() {
    for (text, name) in [
        ("KALAVERAS-BELLFLOWER\n16530 BELLFLOWER BLVD\nBELLFLOWER, CA 90706", "KALAVERAS"),
        // One OCR slip in the town below.
        ("BAR LOUIE HUNTSVILLE\n365 THE BRIDGE ST, SUITE 1\nHUNTSVIITE, AL 35806", "BAR LOUIE"),
        // A place named after its street keeps it.
        ("ROSEBUD ON RUSH\n720 NORTH RUSH STREET\nCHICAGO, IL 60611", "ROSEBUD ON RUSH"),
        // A name that is only its kind and place keeps both; a legal name keeps its town.
        ("BROOKLYN DINER\n212 W 57TH ST\nNEW YORK, NY 10019", "BROOKLYN DINER"),
        ("SEAFOOD HOUSE\n10 HARBOR RD\nSEAFOOD HOUSE, ME 04101", "SEAFOOD HOUSE"),
        // A word that only resembles part of the town, and a name that would be left a kind alone.
        ("BURGER KING\n1200 W MONROE ST\nSPRINGFIELD, IL 62704", "BURGER KING"),
        ("TACO BELL #123\n500 MAIN ST\nBELLEVUE, WA 98004", "TACO BELL"),
        ("CAFE PARIS\n12 RUE DE RIVOLI\n75001 PARIS", "CAFE PARIS"),
    ] {
        assert_eq!(name_of(text).as_deref(), Some(name), "{text}");
    }
}

#[test]
fn a_town_line_with_its_zip_glued_to_the_state_is_not_a_name() {
    let found = merchant(
        &rows("************\nFINNEGAN'S WAY CHECK 822819\n13440CEANDRIVE\nMIAMI BEACH FLORIDA33139\nTEL.305-672-7747"),
        &Gazetteer::default(),
    );
    assert_ne!(found.name.map(|n| n.value).as_deref(), Some("MIAMI BEACH FLORIDA33139"));
}

#[test]
fn a_point_of_sale_field_on_the_names_row_is_not_part_of_it() {
    let found = merchant(
        &rows(
            "************\nFINNEGAN'S WAY CHECK 822819\n13440CEANDRIVE\nMIAMI BEACH FLORIDA33139\nTEL.305-672-7747\nWAITER 58 IRYNA",
        ),
        &Gazetteer::default(),
    );
    assert_eq!(found.name.map(|n| n.value).as_deref(), Some("FINNEGAN'S WAY"));
    // A weak field word ends a name unless a number sign or label says it is a field.
    assert_eq!(without_pos_field("FIRE STATION 1"), "FIRE STATION 1");
    assert_eq!(without_pos_field("TACO BELL ORDER #12"), "TACO BELL");
}

#[test]
fn a_number_or_a_street_word_alone_does_not_make_a_name_an_address() {
    for (text, name) in [
        ("360 GOURMET\n123 MAIN ST\nAUSTIN, TX 78701", "360 GOURMET"),
        ("SILK ROAD\n45 KING ST\nTORONTO, ON M5H 1J8", "SILK ROAD"),
    ] {
        let found = merchant(&rows(text), &Gazetteer::default());
        assert_eq!(found.name_row, Some(0), "{text}");
        assert_eq!(found.name.map(|n| n.value).as_deref(), Some(name), "{text}");
    }
}

#[test]
fn the_spanish_article_misread_is_put_right() {
    assert_eq!(clean_name("EI VALLE MEXICAN RESTAURANT"), "EL VALLE MEXICAN RESTAURANT");
    assert_eq!(clean_name("E1 CHARRO CAFE"), "EL CHARRO CAFE");
    assert_eq!(clean_name("EIGHT BELLS"), "EIGHT BELLS");
}
