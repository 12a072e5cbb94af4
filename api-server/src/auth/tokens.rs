//! Access and refresh tokens: HS256 JWTs with every registered claim, explicitly typed.
//!
//! Following RFC 8725: one algorithm is accepted (HS256, so `alg: none` and algorithm confusion
//! fail), the key is at least 256 bits, `iss`/`aud`/`exp`/`nbf`/`sub` are required and checked, and
//! the two kinds of token cannot stand in for each other: the header `typ` (`at+jwt` or `rt+jwt`)
//! and the `typ` claim must both match what the route expects. The `jti` is a UUIDv7, whose
//! embedded millisecond timestamp is the issue time compared with a user's not-before cut-off.
//! Both carry their session, the refresh-token family (`fam`); only refresh-token digests are stored.

use std::time::Duration;

use finagent_core::UserId;
use finagent_core::account::Role;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;

/// Which kind of token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Short-lived, presented on every request.
    Access,
    /// Long-lived, single use, presented only to `/api/auth/refresh`.
    Refresh,
}

impl TokenKind {
    fn header_type(self) -> &'static str {
        match self {
            Self::Access => "at+jwt",
            Self::Refresh => "rt+jwt",
        }
    }
}

/// The claims of both kinds of token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user id.
    pub sub: Uuid,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Not valid before, Unix seconds.
    pub nbf: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Token id, a UUIDv7.
    pub jti: Uuid,
    /// Access or refresh.
    pub typ: TokenKind,
    /// The user's role when the token was issued (access tokens).
    pub role: Role,
    /// The session (refresh-token family) the token belongs to; logout ends it.
    pub fam: Uuid,
}

impl Claims {
    /// The user.
    pub fn user_id(&self) -> UserId {
        UserId::from_uuid(self.sub)
    }

    /// When the token was issued, in Unix milliseconds (from the UUIDv7 `jti`).
    pub fn issued_at_millis(&self) -> i64 {
        self.jti
            .get_timestamp()
            .map(|timestamp| {
                let (seconds, nanos) = timestamp.to_unix();
                i64::try_from(seconds).unwrap_or(i64::MAX) * 1000 + i64::from(nanos / 1_000_000)
            })
            .unwrap_or(self.iat * 1000)
    }

    /// Seconds left before expiry.
    pub fn remaining_life(&self, now: i64) -> Duration {
        Duration::from_secs(u64::try_from(self.exp - now).unwrap_or(0))
    }
}

/// Why a token was refused; each becomes a 401 without detail for the client.
#[derive(Debug, thiserror::Error)]
#[error("invalid token: {0}")]
pub struct InvalidToken(pub String);

/// A freshly issued token.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The compact JWT.
    pub token: String,
    /// Its claims.
    pub claims: Claims,
}

/// Signs and checks tokens with one HS256 key.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The checks of every token, built once: they are the same for every request.
    validation: Validation,
    /// Access tokens whose signature and claims were checked, by their exact text: a token seen
    /// again is only checked for its times. Revocations are the guard's, checked on every request.
    verified: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Claims>>>,
    /// Signs device tokens (derived from the token key, so it rotates with it).
    device_key: std::sync::Arc<[u8; 32]>,
    issuer: String,
    audience: String,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

/// HMAC-SHA256 of the concatenated `parts` under `key`.
fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TokenKeys")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Keys from the validated settings.
    pub fn new(key: &[u8], issuer: &str, audience: &str, access_ttl: Duration, refresh_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            verified: Default::default(),
            device_key: std::sync::Arc::new(mac(key, &[b"finagent device tokens"])),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            access_ttl,
            refresh_ttl,
        }
    }

    /// A device token for an account (`account` is the account's digest): proof, on later
    /// sign-ins, that this client signed in to it before. See [`crate::limits::login`].
    pub fn device_token(&self, account: &str) -> String {
        let nonce = hex::encode(Uuid::new_v4().as_bytes());
        let signature = hex::encode(mac(self.device_key.as_ref(), &[account.as_bytes(), b".", nonce.as_bytes()]));
        format!("{nonce}.{signature}")
    }

    /// The device a token names, when it is one this server signed for `account`.
    pub fn device_of(&self, token: &str, account: &str) -> Option<String> {
        use hmac::Mac;
        let (nonce, signature) = token.split_once('.')?;
        if nonce.len() != 32 || !nonce.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        let signature = hex::decode(signature).ok()?;
        let mut check = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(self.device_key.as_ref()).ok()?;
        for part in [account.as_bytes(), b".", nonce.as_bytes()] {
            check.update(part);
        }
        check.verify_slice(&signature).ok().map(|()| nonce.to_owned())
    }

    /// Access-token lifetime.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// Refresh-family lifetime.
    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    /// Issues an access token of session `family`.
    pub fn issue_access(&self, user: UserId, role: Role, family: Uuid, now: i64) -> Result<Issued, InvalidToken> {
        self.issue(TokenKind::Access, user, role, family, now, self.access_ttl)
    }

    /// Issues the first refresh token of session `family`.
    pub fn issue_refresh(&self, user: UserId, role: Role, family: Uuid, now: i64) -> Result<Issued, InvalidToken> {
        self.issue(TokenKind::Refresh, user, role, family, now, self.refresh_ttl)
    }

    /// Issues the next refresh token of a session, expiring with the session (`until`, Unix
    /// seconds), never later.
    pub fn rotate_refresh(
        &self,
        user: UserId,
        role: Role,
        family: Uuid,
        now: i64,
        until: i64,
    ) -> Result<Issued, InvalidToken> {
        let ttl = Duration::from_secs(u64::try_from(until - now).unwrap_or(0)).min(self.refresh_ttl);
        self.issue(TokenKind::Refresh, user, role, family, now, ttl)
    }

    fn issue(
        &self,
        kind: TokenKind,
        user: UserId,
        role: Role,
        family: Uuid,
        now: i64,
        ttl: Duration,
    ) -> Result<Issued, InvalidToken> {
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.as_uuid(),
            exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
            nbf: now,
            iat: now,
            jti: Uuid::now_v7(),
            typ: kind,
            role,
            fam: family,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(kind.header_type().to_owned());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|error| InvalidToken(format!("failed to sign: {error}")))?;
        Ok(Issued { token, claims })
    }

    /// Checks a token's signature, algorithm, type and registered claims.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims, InvalidToken> {
        if kind == TokenKind::Access {
            let seen = self.verified.lock().ok().and_then(|verified| verified.get(token).cloned());
            if let Some(claims) = seen {
                return in_time(claims, chrono::Utc::now().timestamp());
            }
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| InvalidToken(error.to_string()))?;
        if data.header.typ.as_deref() != Some(kind.header_type()) || data.claims.typ != kind {
            return Err(InvalidToken(format!("not an {kind:?} token")));
        }
        if kind == TokenKind::Access
            && let Ok(mut verified) = self.verified.lock()
        {
            if verified.len() >= VERIFIED_CAPACITY {
                let now = chrono::Utc::now().timestamp();
                verified.retain(|_, claims| in_time(claims.clone(), now).is_ok());
                if verified.len() >= VERIFIED_CAPACITY {
                    verified.clear();
                }
            }
            verified.insert(token.to_owned(), data.claims.clone());
        }
        Ok(data.claims)
    }
}

/// Access tokens kept checked at most (each about 400 bytes with its claims).
const VERIFIED_CAPACITY: usize = 20_000;

/// `claims` if they are valid at `now` (Unix seconds), with the same leeway as the full check.
fn in_time(claims: Claims, now: i64) -> Result<Claims, InvalidToken> {
    let leeway = LEEWAY_SECONDS as i64;
    if claims.exp < now - leeway {
        return Err(InvalidToken("ExpiredSignature".into()));
    }
    if claims.nbf > now + leeway {
        return Err(InvalidToken("ImmatureSignature".into()));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(
            b"0123456789abcdef0123456789abcdef",
            "iss",
            "aud",
            Duration::from_secs(900),
            Duration::from_secs(86_400),
        )
    }

    #[test]
    fn a_device_token_names_its_device_for_its_account_only() {
        let keys = keys();
        let token = keys.device_token("account-a");
        let nonce = keys.device_of(&token, "account-a").expect("valid");
        assert_eq!(nonce.len(), 32);
        assert_ne!(keys.device_token("account-a"), token, "each sign-in makes a new device");
        assert_eq!(keys.device_of(&token, "account-b"), None, "another account's");
        let (head, signature) = token.split_once('.').expect("two parts");
        let flipped = format!("{head}.{}{}", &signature[..63], if signature.ends_with('0') { '1' } else { '0' });
        assert_eq!(keys.device_of(&flipped, "account-a"), None, "tampered");
        let other = TokenKeys::new(b"another key of thirty-two bytes!", "iss", "aud", Duration::ZERO, Duration::ZERO);
        assert_eq!(other.device_of(&token, "account-a"), None, "another server's key");
        assert_eq!(keys.device_of("x.y", "account-a"), None);
    }

    #[test]
    fn an_access_token_round_trips_with_every_registered_claim() {
        let now = chrono::Utc::now().timestamp();
        let user = UserId::new();
        let issued = keys().issue_access(user, Role::User, Uuid::new_v4(), now).expect("issue");
        let claims = keys().verify(&issued.token, TokenKind::Access).expect("verify");
        assert_eq!(claims, issued.claims);
        assert_eq!((claims.iss.as_str(), claims.aud.as_str(), claims.exp - claims.iat), ("iss", "aud", 900));
        assert!((claims.issued_at_millis() - now * 1000).abs() < 2_000);
    }

    #[test]
    fn the_kinds_do_not_stand_in_for_each_other() {
        let now = chrono::Utc::now().timestamp();
        let refresh = keys().issue_refresh(UserId::new(), Role::User, Uuid::new_v4(), now).expect("issue");
        assert!(keys().verify(&refresh.token, TokenKind::Access).is_err());
        let access = keys().issue_access(UserId::new(), Role::User, Uuid::new_v4(), now).expect("issue");
        assert!(keys().verify(&access.token, TokenKind::Refresh).is_err());
    }

    #[test]
    fn a_token_checked_before_is_still_refused_when_expired_tampered_or_of_the_other_kind() {
        let keys = keys();
        let now = chrono::Utc::now().timestamp();
        let issued = keys.issue_access(UserId::new(), Role::User, Uuid::new_v4(), now).expect("issue");
        assert!(keys.verify(&issued.token, TokenKind::Access).is_ok());
        assert!(keys.verify(&issued.token, TokenKind::Access).is_ok(), "the second check is the kept one");
        assert!(keys.verify(&issued.token, TokenKind::Refresh).is_err());
        let mut tampered = issued.token.clone();
        let last = tampered.pop().expect("a character");
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(keys.verify(&tampered, TokenKind::Access).is_err());
        let leeway = LEEWAY_SECONDS as i64;
        assert!(in_time(issued.claims.clone(), issued.claims.exp + leeway).is_ok());
        assert!(in_time(issued.claims.clone(), issued.claims.exp + leeway + 1).is_err());
        assert!(in_time(issued.claims.clone(), issued.claims.nbf - leeway - 1).is_err());
    }
}
