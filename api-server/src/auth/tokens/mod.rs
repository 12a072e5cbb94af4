//! Access and refresh tokens: HS256 JWTs with every registered claim, explicitly typed.
//!
//! Following RFC 8725: one algorithm is accepted (HS256, so `alg: none` and algorithm confusion
//! fail), the key is at least 256 bits, `iss`/`aud`/`exp`/`nbf`/`sub` are required and checked, and
//! the two kinds of token cannot stand in for each other: the header `typ` (`at+jwt` or `rt+jwt`)
//! and the `typ` claim must both match what the route expects. The `jti` is a UUIDv7, whose
//! embedded millisecond timestamp is the issue time compared with a user's not-before cut-off.
//! Both carry their session, the refresh-token family (`fam`); only refresh-token digests are stored.
//!
//! The server's keys form a ring: the current key signs, and previous keys (`JWT_PREVIOUS_KEYS`)
//! still verify, so a rotation ends no session. A token names its key in the header's `kid` (an
//! HMAC of the key, which says nothing about it). Device and CSRF tokens and the sealed webhook
//! secrets use keys derived from each ring key, and verify or open under any of them.

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
    pub claims: Claims,
}

/// One key of the ring, and the keys derived from it.
#[derive(Clone)]
struct RingKey {
    /// Names the key in a token's header: an HMAC of the key, truncated.
    kid: String,
    decoding: DecodingKey,
    /// Signs device tokens.
    device: [u8; 32],
    /// Signs the web app's CSRF tokens.
    csrf: [u8; 32],
    /// Seals webhook secrets (ChaCha20-Poly1305).
    sealing: [u8; 32],
}

impl RingKey {
    fn new(key: &[u8]) -> Self {
        Self {
            kid: hex::encode(&mac(key, &[b"finagent key id"])[..8]),
            decoding: DecodingKey::from_secret(key),
            device: mac(key, &[b"finagent device tokens"]),
            csrf: mac(key, &[b"finagent csrf tokens"]),
            sealing: mac(key, &[b"finagent webhook secrets"]),
        }
    }
}

/// Signs tokens with the current HS256 key and checks them with it or a previous one.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    /// The current key first, then the previous ones.
    ring: std::sync::Arc<[RingKey]>,
    /// The checks of every token, built once: they are the same for every request.
    validation: Validation,
    /// Access tokens whose signature and claims were checked, by their exact text: a token seen
    /// again is only checked for its times. Revocations are the guard's, checked on every request.
    verified: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Claims>>>,
    issuer: String,
    audience: String,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

/// A sealed secret that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Sealed under a key no longer in the ring.
    #[error("sealed under key {0}, which is no longer configured (JWT_PREVIOUS_KEYS)")]
    UnknownKey(String),
    /// Altered, or sealed for another record.
    #[error("the sealed secret is damaged or belongs to another record")]
    Damaged,
}

/// How a sealed secret starts: `sealed:v1:<kid>:<hex nonce and ciphertext>`.
const SEALED_PREFIX: &str = "sealed:v1:";

/// Whether `signature` is the HMAC-SHA256 of `parts` under `key`, compared in constant time.
fn verify_mac(key: &[u8], parts: &[&[u8]], signature: &[u8]) -> bool {
    use hmac::Mac;
    let Ok(mut check) = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(key) else { return false };
    for part in parts {
        check.update(part);
    }
    check.verify_slice(signature).is_ok()
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
    /// Keys from the validated settings: `key` signs; nothing else verifies until
    /// [`TokenKeys::with_previous`].
    pub fn new(key: &[u8], issuer: &str, audience: &str, access_ttl: Duration, refresh_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        Self {
            encoding: EncodingKey::from_secret(key),
            ring: std::sync::Arc::new([RingKey::new(key)]),
            validation,
            verified: Default::default(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            access_ttl,
            refresh_ttl,
        }
    }

    /// Adds keys that no longer sign but still verify and open: the keys of a rotation's overlap.
    pub fn with_previous(self, previous: &[Vec<u8>]) -> Self {
        let mut ring = self.ring.to_vec();
        for key in previous.iter().map(|key| RingKey::new(key)) {
            if !ring.iter().any(|known| known.kid == key.kid) {
                ring.push(key);
            }
        }
        Self { ring: ring.into(), ..self }
    }

    fn current(&self) -> &RingKey {
        &self.ring[0]
    }

    /// The current key's id, as tokens name it in their `kid`.
    pub fn current_kid(&self) -> &str {
        &self.current().kid
    }

    /// A device token for an account (`account` is the account's digest): proof, on later
    /// sign-ins, that this client signed in to it before. See [`crate::limits::login`].
    pub fn device_token(&self, account: &str) -> String {
        let nonce = hex::encode(Uuid::new_v4().as_bytes());
        let signature = hex::encode(mac(&self.current().device, &[account.as_bytes(), b".", nonce.as_bytes()]));
        format!("{nonce}.{signature}")
    }

    /// The device a token names, when it is one this server signed for `account`.
    pub fn device_of(&self, token: &str, account: &str) -> Option<String> {
        let (nonce, signature) = token.split_once('.')?;
        if nonce.len() != 32 || !nonce.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        let signature = hex::decode(signature).ok()?;
        let signed = |key: &RingKey| verify_mac(&key.device, &[account.as_bytes(), b".", nonce.as_bytes()], &signature);
        self.ring.iter().any(signed).then(|| nonce.to_owned())
    }

    /// A CSRF token for the web app, bound to a session or to none (before sign-in):
    /// `<nonce>.<binding>.<signature>`.
    pub fn csrf_token(&self, binding: CsrfBinding) -> String {
        let nonce = hex::encode(Uuid::new_v4().as_bytes());
        let bound = binding.text();
        let signature = hex::encode(mac(&self.current().csrf, &[nonce.as_bytes(), b".", bound.as_bytes()]));
        format!("{nonce}.{bound}.{signature}")
    }

    /// What a CSRF token is bound to, when this server signed it.
    pub fn csrf_binding(&self, token: &str) -> Option<CsrfBinding> {
        let mut parts = token.splitn(3, '.');
        let (nonce, bound, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if nonce.len() != 32 || !nonce.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        let binding = CsrfBinding::parse(bound)?;
        let signature = hex::decode(signature).ok()?;
        let signed = |key: &RingKey| verify_mac(&key.csrf, &[nonce.as_bytes(), b".", bound.as_bytes()], &signature);
        self.ring.iter().any(signed).then_some(binding)
    }

    /// Seals a secret under the current key for the record `context` (a webhook's id, say): only
    /// a server holding a key of the ring can open it, and only for that record.
    pub fn seal(&self, secret: &str, context: &[u8]) -> String {
        use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
        let key = self.current();
        let nonce_bytes = super::secrets::random_bytes::<12>();
        let sealing = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key.sealing).expect("a 256-bit key"));
        let mut sealed = secret.as_bytes().to_vec();
        sealing
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(context), &mut sealed)
            .expect("ChaCha20-Poly1305 seals any length used here");
        format!("{SEALED_PREFIX}{}:{}{}", key.kid, hex::encode(nonce_bytes), hex::encode(sealed))
    }

    /// Opens a sealed secret of record `context`. A value that was never sealed (stored before
    /// secrets were) is returned as it is.
    pub fn open(&self, stored: &str, context: &[u8]) -> Result<String, SealError> {
        use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else { return Ok(stored.to_owned()) };
        let (kid, body) = rest.split_once(':').ok_or(SealError::Damaged)?;
        let key = self.ring.iter().find(|key| key.kid == kid).ok_or_else(|| SealError::UnknownKey(kid.to_owned()))?;
        let bytes = hex::decode(body).map_err(|_| SealError::Damaged)?;
        if bytes.len() < 12 + CHACHA20_POLY1305.tag_len() {
            return Err(SealError::Damaged);
        }
        let (nonce, sealed) = bytes.split_at(12);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Damaged)?;
        let opening = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key.sealing).expect("a 256-bit key"));
        let mut sealed = sealed.to_vec();
        let plain = opening.open_in_place(nonce, Aad::from(context), &mut sealed).map_err(|_| SealError::Damaged)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Damaged)
    }

    /// Whether a stored secret is sealed under the current key (else it should be sealed again).
    pub fn sealed_under_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(SEALED_PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(kid, _)| kid == self.current().kid)
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
        header.kid = Some(self.current().kid.clone());
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
        let header = jsonwebtoken::decode_header(token).map_err(|error| InvalidToken(error.to_string()))?;
        let data = match &header.kid {
            Some(kid) => {
                let key = self
                    .ring
                    .iter()
                    .find(|key| &key.kid == kid)
                    .ok_or_else(|| InvalidToken(format!("signed with key {kid}, which is not configured")))?;
                jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation)
            }
            // Tokens from before keys had ids: whichever key of the ring signed them.
            None => {
                let mut outcome = jsonwebtoken::decode::<Claims>(token, &self.current().decoding, &self.validation);
                for key in self.ring.iter().skip(1) {
                    if outcome.is_ok() {
                        break;
                    }
                    outcome = jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation);
                }
                outcome
            }
        }
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

/// What the web app's CSRF token is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfBinding {
    /// No session yet: good for signing in only.
    Anonymous,
    /// One session (refresh-token family): good for refreshing, changing the password and
    /// signing out of that session only.
    Session(Uuid),
}

impl CsrfBinding {
    fn text(self) -> String {
        match self {
            Self::Anonymous => "-".to_owned(),
            Self::Session(session) => session.simple().to_string(),
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "-" => Some(Self::Anonymous),
            session if session.len() == 32 => Uuid::try_parse(session).ok().map(Self::Session),
            _ => None,
        }
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
mod tests;
