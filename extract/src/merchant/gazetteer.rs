//! The gazetteer: known merchants with their branch addresses, learned offline from labelled receipts.

use serde::Deserialize;

/// Known names shorter than this (letters and digits) are not searched for.
pub const MIN_NAME: usize = 6;

/// An address match at least this similar is accepted.
pub const ACCEPT_ADDRESS: f64 = 0.72;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct KnownMerchant {
    /// Canonical name.
    pub name: String,
    /// Known branch addresses.
    pub addresses: Vec<String>,
}

/// Known merchants, learned offline (see `scripts/train_merchants.py`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Gazetteer {
    /// Where the entries came from (attribution).
    #[serde(default)]
    pub source: String,
    /// The countries (ISO 3166-1 alpha-2) whose receipts it covers; empty for every country.
    #[serde(default)]
    pub countries: Vec<String>,
    pub merchants: Vec<KnownMerchant>,
}

static EMPTY: Gazetteer = Gazetteer { source: String::new(), countries: Vec::new(), merchants: Vec::new() };

impl Gazetteer {
    /// The gazetteer shipped with this build: Malaysian merchants from SROIE's training labels.
    pub fn bundled() -> Gazetteer {
        serde_json::from_str(include_str!("../../data/merchants.json")).unwrap_or_default()
    }

    /// This gazetteer when it covers receipts from `country`, else an empty one: a regional
    /// list must not rename a receipt from elsewhere, nor one whose country is unknown.
    pub fn covers(&self, country: Option<&str>) -> &Gazetteer {
        let covered = self.countries.is_empty()
            || country.is_some_and(|code| self.countries.iter().any(|c| c.eq_ignore_ascii_case(code)));
        if covered { self } else { &EMPTY }
    }
}
