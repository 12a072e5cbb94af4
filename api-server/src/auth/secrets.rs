//! Random secrets and their digests: refresh-token and API-key values are random, and only their
//! SHA-256 digests are stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Marks an API key, so a bearer credential is recognised as a key rather than a JWT.
pub const API_KEY_PREFIX: &str = "fa_";

/// `N` bytes from the operating system's generator.
///
/// # Panics
/// When the operating system has no randomness to give, which no server can work without.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    bytes
}

/// A new API key: the prefix and 256 random bits in URL-safe base64.
pub fn new_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

/// SHA-256 hex digest of a secret, the form in which it is stored and looked up.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_carry_256_random_bits_and_differ() {
        let (first, second) = (new_api_key(), new_api_key());
        assert!(first.starts_with(API_KEY_PREFIX));
        assert_eq!(first.len(), API_KEY_PREFIX.len() + 43);
        assert_ne!(first, second);
    }

    #[test]
    fn the_digest_is_sha256_hex() {
        assert_eq!(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
