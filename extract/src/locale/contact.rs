//! Contact details that name a country: a phone number's international prefix and a web or
//! e-mail domain's country code.

use regex::Regex;

use super::COUNTRIES;

/// International dialling prefixes and their countries.
pub(crate) const PHONE_PREFIXES: [(&str, &str); 41] = [
    ("1", "US"),
    ("49", "DE"),
    ("43", "AT"),
    ("41", "CH"),
    ("33", "FR"),
    ("32", "BE"),
    ("31", "NL"),
    ("34", "ES"),
    ("39", "IT"),
    ("351", "PT"),
    ("44", "GB"),
    ("353", "IE"),
    ("46", "SE"),
    ("47", "NO"),
    ("45", "DK"),
    ("48", "PL"),
    ("358", "FI"),
    ("420", "CZ"),
    ("36", "HU"),
    ("90", "TR"),
    ("60", "MY"),
    ("65", "SG"),
    ("91", "IN"),
    ("971", "AE"),
    ("62", "ID"),
    ("61", "AU"),
    ("64", "NZ"),
    ("52", "MX"),
    ("55", "BR"),
    ("54", "AR"),
    ("56", "CL"),
    ("57", "CO"),
    ("855", "KH"),
    ("66", "TH"),
    ("81", "JP"),
    ("82", "KR"),
    ("86", "CN"),
    ("852", "HK"),
    ("63", "PH"),
    ("84", "VN"),
    ("27", "ZA"),
];

/// A web or e-mail domain under a country's top-level domain (`WWW.SMSUPERMARKET.COM.PH`,
/// `INFO@ALDI-SUED.DE`, `SHOP.CO.UK`), as OCR may space it (`www. smsupermarket .com.ph`): the
/// domain and its country. Country domains sold as generic names (`.co`, `.io`, `.me`, `.tv`, …)
/// say nothing.
pub(crate) fn domain_country(text: &str) -> Option<(String, &'static str)> {
    static DOMAIN: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        // Spaces OCR puts around a dot (`www. shop .com.ph`), but none after the last one, nor a
        // line break: `WWW.SHOP.COM. IT ONLY TAKES` names no country.
        Regex::new(r"(?:WWW ?\.|@|HTTPS?://) ?((?:[A-Z0-9\-]+ ?\. ?)*[A-Z0-9\-]+ ?\.([A-Z]{2}))\b")
            .unwrap_or_else(|error| panic!("invalid pattern: {error}"))
    });
    const GENERIC: [&str; 12] = ["CO", "IO", "AI", "ME", "TV", "FM", "LY", "GG", "TO", "SH", "AC", "CC"];
    let captures = DOMAIN.captures(text)?;
    let tld = captures.get(2)?.as_str();
    let code = if tld == "UK" { "GB" } else { tld };
    if GENERIC.contains(&code) {
        return None;
    }
    let country = COUNTRIES.iter().find(|country| country.code == code)?;
    let domain: String = captures[1].chars().filter(|c| !c.is_whitespace()).collect();
    Some((domain, country.code))
}
