//! Money: decimal amounts (never floats) and ISO 4217 currency codes.
//!
//! An [`Amount`] travels as a decimal string (`"46.98"`) so no client ever sees a binary float;
//! JSON numbers are rejected on input for the same reason. A [`Currency`] is an active ISO 4217
//! code, upper case.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A monetary amount in a receipt's currency, exact to the cent (or whatever the receipt shows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(Decimal);

impl Amount {
    pub const ZERO: Amount = Amount(Decimal::ZERO);

    /// Wraps a decimal.
    pub const fn new(value: Decimal) -> Self {
        Self(value)
    }

    /// An amount from an integer number of minor units and a scale: `from_minor(4698, 2)` is 46.98.
    pub fn from_minor(minor: i64, scale: u32) -> Self {
        Self(Decimal::new(minor, scale))
    }

    /// The decimal value.
    pub const fn value(&self) -> Decimal {
        self.0
    }

    /// True when below zero (refunds, discounts).
    pub fn is_negative(&self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    /// The amount in ten-thousandths, the integer stores sum and compare exactly; amounts beyond
    /// ±10^11 are clamped (no receipt comes near), finer digits rounded.
    pub fn to_units(&self) -> i64 {
        use rust_decimal::prelude::ToPrimitive;
        (self.0 * Decimal::from(UNITS_PER_ONE)).round().to_i64().unwrap_or(0).clamp(-MAX_UNITS, MAX_UNITS)
    }

    /// An amount from ten-thousandths, with at least two decimals (`from_units(525_000)` is 52.50).
    pub fn from_units(units: i64) -> Self {
        let mut value = Decimal::new(units, 4).normalize();
        if value.scale() < 2 {
            value.rescale(2);
        }
        Self(value)
    }
}

/// Units of [`Amount::to_units`] in one currency unit.
pub const UNITS_PER_ONE: i64 = 10_000;
/// The largest magnitude [`Amount::to_units`] gives.
pub const MAX_UNITS: i64 = 100_000_000_000 * UNITS_PER_ONE;

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    /// Parses a canonical decimal string (`"-12.50"`). OCR noise is handled by the extractor, not here.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let valid = !trimmed.is_empty()
            && trimmed.strip_prefix('-').unwrap_or(trimmed).chars().all(|c| c.is_ascii_digit() || c == '.');
        if !valid {
            return Err(AmountError(text.chars().take(64).collect()));
        }
        Decimal::from_str_exact(trimmed).map(Self).map_err(|_| AmountError(text.chars().take(64).collect()))
    }
}

impl std::ops::Add for Amount {
    type Output = Amount;

    fn add(self, other: Amount) -> Amount {
        Amount(self.0 + other.0)
    }
}

impl std::iter::Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(iter: I) -> Amount {
        iter.fold(Amount::ZERO, |total, amount| total + amount)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Text that is not a decimal amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid amount {0:?}: expected a decimal string such as \"12.50\"")]
pub struct AmountError(String);

/// An active ISO 4217 currency code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

/// Active ISO 4217 alphabetic codes (list of 2024), sorted for binary search.
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
    "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
    "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
    "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
    "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
    "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP",
    "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VED",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

impl Currency {
    /// Malaysian ringgit, the currency of the SROIE receipts.
    pub const MYR: Currency = Currency(*b"MYR");
    /// US dollar.
    pub const USD: Currency = Currency(*b"USD");
    /// Euro.
    pub const EUR: Currency = Currency(*b"EUR");

    /// The three-letter code.
    pub fn code(&self) -> &str {
        // Constructed only from ASCII upper-case letters, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let upper = text.trim().to_ascii_uppercase();
        match ISO_4217.binary_search(&upper.as_str()) {
            Ok(index) => {
                let bytes = ISO_4217[index].as_bytes();
                Ok(Currency([bytes[0], bytes[1], bytes[2]]))
            }
            Err(_) => Err(CurrencyError(text.chars().take(16).collect())),
        }
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Text that is not an active ISO 4217 code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown currency {0:?}: expected an ISO 4217 code such as \"EUR\"")]
pub struct CurrencyError(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_trip_with_two_decimals_at_least() {
        for (text, units, back) in [("52.76", 527_600, "52.76"), ("20", 200_000, "20.00"), ("1.125", 11_250, "1.125")] {
            let amount: Amount = text.parse().expect("amount");
            assert_eq!(amount.to_units(), units);
            assert_eq!(Amount::from_units(units).to_string(), back);
        }
        assert_eq!("-3.50".parse::<Amount>().expect("amount").to_units(), -35_000);
        assert_eq!("1e30".parse::<Amount>().map(|a| a.to_units()).ok(), None);
    }

    #[test]
    fn currency_list_is_sorted_and_unique() {
        assert!(ISO_4217.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn currency_parses_case_insensitively() {
        assert_eq!("myr".parse::<Currency>(), Ok(Currency::MYR));
        assert_eq!(Currency::EUR.to_string(), "EUR");
        assert!("RM".parse::<Currency>().is_err());
        assert!("ABC".parse::<Currency>().is_err());
    }

    #[test]
    fn amount_is_a_decimal_string_on_the_wire() {
        let amount = Amount::from_minor(4698, 2);
        assert_eq!(serde_json::to_string(&amount).expect("serializes"), "\"46.98\"");
        let back: Amount = serde_json::from_str("\"46.98\"").expect("parses");
        assert_eq!(back, amount);
    }

    #[test]
    fn amount_rejects_floats_and_noise() {
        assert!(serde_json::from_str::<Amount>("46.98").is_err());
        for bad in ["", "1e3", "12,50", "RM41.81", "--1", "NaN"] {
            assert!(bad.parse::<Amount>().is_err(), "{bad:?} should be rejected");
        }
        assert_eq!("-5.00".parse::<Amount>().expect("parses").to_string(), "-5.00");
    }

    #[test]
    fn amounts_sum_exactly() {
        let total: Amount = ["0.10", "0.20"].iter().map(|a| a.parse::<Amount>().expect("parses")).sum();
        assert_eq!(total, "0.30".parse().expect("parses"));
    }
}

#[cfg(feature = "utoipa")]
mod schemas {
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::openapi::{RefOr, schema::SchemaFormat};

    impl utoipa::PartialSchema for super::Amount {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::Custom("decimal".into())))
                .pattern(Some(r"^-?[0-9]+(\.[0-9]+)?$"))
                .description(Some("A decimal amount as a string, never a float"))
                .examples(["12.50"])
                .into()
        }
    }
    impl utoipa::ToSchema for super::Amount {}

    impl utoipa::PartialSchema for super::Currency {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[A-Z]{3}$"))
                .description(Some("An ISO 4217 currency code"))
                .examples(["MYR"])
                .into()
        }
    }
    impl utoipa::ToSchema for super::Currency {}
}
