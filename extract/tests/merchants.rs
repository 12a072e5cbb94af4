//! Merchants and addresses of receipts from several countries, as OCR text: the brand directory,
//! legal-entity lines, web domains and European address orders.

use chrono::NaiveDate;
use finagent_core::receipt::Category;
use finagent_extract::{Context, Gazetteer, LocaleHint, Page, extract_with};

fn extract(text: &str) -> finagent_extract::Extraction {
    let today = NaiveDate::from_ymd_opt(2026, 12, 6).expect("valid");
    extract_with(
        &Page::from_text(text),
        Context { gazetteer: &Gazetteer::default(), hint: &LocaleHint::default(), today },
    )
}

#[test]
fn a_german_discounter_whose_logo_ocr_lost_is_named_from_its_footer() {
    let found = extract(
        "FAD LUNBEL NELL\nHauptstrasse 12\n33100 PADERBORN\nUNSERE ÖFFNUNGSZEITEN\nMO-SA 7-21 UHR\n\
         MILCH 0,99\nBROT 1,49\nSUMME 12,40\nGEGEBEN BAR 20,00\nRÜCKGELD 7,60\n10.03.2024 12:01\n\
         Aldi GmbH & Co. KG\nwww.aldi-sued.de",
    );
    assert_eq!(found.fields.merchant.name.as_deref(), Some("ALDI"));
    assert_eq!(found.debug.merchant_source.as_deref(), Some("brand"));
    assert_eq!(found.fields.merchant.address.as_deref(), Some("HAUPTSTRASSE 12 33100 PADERBORN"));
    assert_eq!(found.fields.category, Some(Category::Groceries));
    assert_eq!(found.locale.country.map(|c| c.code), Some("DE"));
}

#[test]
fn a_spaced_logo_is_read_as_its_brand() {
    let found = extract("L I D L\nBahnhofstr. 5\n74172 NECKARSULM\nSUMME 8,20\nBAR 10,00\nRÜCKGELD 1,80");
    assert_eq!(found.fields.merchant.name.as_deref(), Some("LIDL"));
    assert_eq!(found.fields.category, Some(Category::Groceries));
}

#[test]
fn a_header_name_that_holds_the_brand_is_kept_as_printed() {
    let found = extract("KFC\nRestaurant #C160014\n3880 Hempstead Turnpike\nLevittown, NY 11756\nTOTAL $12.49");
    assert_eq!(found.fields.merchant.name.as_deref(), Some("KFC"));
    assert_eq!(found.fields.category, Some(Category::Dining));
}

#[test]
fn european_addresses_in_both_orders() {
    let italian = extract("TRATTORIA DA MARIO\nVia Roma 15\n00184 ROMA\nP.IVA 01234567890\nTOTALE 45,00");
    assert_eq!(italian.fields.merchant.name.as_deref(), Some("TRATTORIA DA MARIO"));
    assert_eq!(italian.fields.merchant.address.as_deref(), Some("VIA ROMA 15 00184 ROMA"));
    let swiss = extract("BÄCKEREI KELLER\nBahnhofstrasse 21\n8001 ZÜRICH\nTOTAL CHF 12.40");
    assert_eq!(swiss.fields.merchant.address.as_deref(), Some("BAHNHOFSTRASSE 21 8001 ZÜRICH"));
    let dutch = extract("CAFE DE KROON\nKerkstraat 5\n1017 GB AMSTERDAM\nTOTAAL 18,50\nBEDANKT");
    assert_eq!(dutch.fields.merchant.address.as_deref(), Some("KERKSTRAAT 5 1017 GB AMSTERDAM"));
}

/// Streets whose names carry no street word the reader knows, above a town line: the shape (a
/// name, then a house number, then a postcode and town either way round) is the evidence.
#[test]
fn street_name_then_number_above_a_town_line() {
    let cases = [
        ("FISCHER GETRANKE\nHauptstraBe 24\n33100 Paderborn\nSUMME 67,81", "HAUPTSTRABE 24 33100 PADERBORN"),
        ("K-MARKET\nAleksanterinkatu 193\n00100 Helsinki\nYHTEENSA 83,41", "ALEKSANTERINKATU 193 00100 HELSINKI"),
        ("POTRAVINY KUCERA\nVaclavske namesti 123\n602 00 Brno\nCELKEM 617,46", "VACLAVSKE NAMESTI 123 602 00 BRNO"),
        ("HYPERMART\nJl. Thamrin No. 211\nBandung 40111\nTOTAL 475.000", "JL. THAMRIN NO. 211 BANDUNG 40111"),
        ("BIG BAZAAR\n145, Linking Road\nMumbai - 400050\nTotal 395.81", "145, LINKING ROAD MUMBAI - 400050"),
        ("REMA 1000\nNorregade 6\n1160 Kobenhavn K\nI ALT 271,05", "NORREGADE 6 1160 KOBENHAVN K"),
    ];
    for (text, address) in cases {
        assert_eq!(extract(text).fields.merchant.address.as_deref(), Some(address), "{text:?}");
    }
    // A sign the header reading passed over (its number made it look like a street): the address
    // under the sign, and the brand's number kept.
    let danish = extract("REMA 1000\nNorregade 6\n1160 Kobenhavn K\nI ALT 271,05");
    assert_eq!(danish.fields.merchant.name.as_deref(), Some("REMA 1000"));
    assert_eq!(danish.fields.merchant.address.as_deref(), Some("NORREGADE 6 1160 KOBENHAVN K"));
    // A US street line is not mistaken for a town line: the city line below still joins it.
    let american = extract("CRISFIELD\n8012 GEORGIA AVE.\nSILVER SPRING, MD 20910\nTOTAL $42.74");
    assert_eq!(american.fields.merchant.address.as_deref(), Some("8012 GEORGIA AVE. SILVER SPRING, MD 20910"));
}

#[test]
fn a_street_named_after_lincoln_does_not_become_the_merchant() {
    let found = extract("MIDTOWN DELI\n100 LINCOLN PLAZA\nQUINCY, MA 02169\nTOTAL $9.00");
    assert_eq!(found.fields.merchant.name.as_deref(), Some("MIDTOWN DELI"));
    assert_eq!(found.fields.merchant.address.as_deref(), Some("100 LINCOLN PLAZA QUINCY, MA 02169"));
}

#[test]
fn an_invoice_is_the_sellers_not_the_buyers_whose_legal_name_it_also_prints() {
    let found = extract(
        "NORDLICHT DESIGN\nHafenstraße 8\n20459 HAMBURG\nRECHNUNG\nRechnung an:\nGlobex Handels GmbH\n\
         Industrieweg 7\n80331 MÜNCHEN\nRechnungsdatum: 05.11.2026\nFällig am: 19.11.2026\n\
         Webdesign 100,00\nMwSt 19% 19,00\nGesamtbetrag 119,00 EUR",
    );
    assert_eq!(found.fields.merchant.name.as_deref(), Some("NORDLICHT DESIGN"));
    assert_eq!(found.fields.merchant.address.as_deref(), Some("HAFENSTRASSE 8 20459 HAMBURG"));
    assert_eq!(
        found.fields.date.map(|date| date.to_string()).as_deref(),
        Some("2026-11-05"),
        "the invoice date, not the due date"
    );
    assert_eq!(found.fields.total.map(|total| total.to_string()).as_deref(), Some("119.00"));
    let english = extract(
        "BRIGHTWATER CONSULTING\n12 King Street\nLONDON EC2V 8AA\nINVOICE\nBill to:\nAcme Industries Ltd\n\
         40 Mill Road\nCAMBRIDGE CB1 2AB\nInvoice date: 03/11/2026\nDue date: 03/12/2026\n\
         Consulting 1,000.00\nVAT 20% 200.00\nAmount due 1,200.00",
    );
    assert_eq!(english.fields.merchant.name.as_deref(), Some("BRIGHTWATER CONSULTING"));
    assert_eq!(english.fields.total.map(|total| total.to_string()).as_deref(), Some("1200.00"));
    assert_eq!(english.fields.date.map(|date| date.to_string()).as_deref(), Some("2026-11-03"));
}
