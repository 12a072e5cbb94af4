//! Accounts: users with roles, refresh-token sessions and API keys, as stored.
//!
//! Secrets are never stored: passwords as argon2id hashes, refresh tokens and API keys as
//! SHA-256 hex digests of their random values.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::UserId;

/// What a principal may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Uploads and reads their own receipts.
    User,
    /// Also manages users.
    Admin,
    /// Machine-to-machine access.
    Service,
}

impl Role {
    /// The role on the wire and in the stores.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
            Self::Service => "service",
        }
    }
}

/// A user account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    /// Normalised (lower-case) user name, unique.
    pub username: String,
    /// Normalised (lower-case) email, unique.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub role: Role,
    /// A disabled user can neither log in nor use existing tokens.
    pub disabled: bool,
    /// Tokens issued before this instant are rejected (logout everywhere, password change).
    pub tokens_valid_after: DateTime<Utc>,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// How the user's receipts are read by default.
    #[serde(default)]
    pub preferences: Preferences,
}

/// A user's reading preferences: priors for receipts that do not say where they are from. Clear
/// evidence on a receipt (a printed currency, an address) always wins over them.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    /// Default country, ISO 3166-1 alpha-2 (e.g. `DE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Default currency, ISO 4217 (e.g. `EUR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// A refresh-token family: each refresh rotates the token; presenting an old one revokes the family.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub family_id: Uuid,
    /// Owner.
    pub user_id: UserId,
    /// SHA-256 hex of the only refresh token currently valid in this family.
    pub current_token_hash: String,
    /// When the family was started (login).
    pub created_at: DateTime<Utc>,
    /// When the family expires.
    pub expires_at: DateTime<Utc>,
    /// Revoked by logout, reuse detection or an administrator.
    pub revoked: bool,
    /// When its refresh token was last exchanged (access tokens are not counted: they live 15
    /// minutes at most), or when it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
    /// The client address that started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
    /// The `User-Agent` that started it, at most 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// What presenting a refresh token did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: it is replaced by the new one.
    Rotated(Session),
    /// The token was already used: the whole family is now revoked.
    ReuseDetected,
    /// No live family holds this token (unknown, expired or revoked).
    Invalid,
}

/// An API key as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: Uuid,
    /// Owner; a key never has more power than its owner.
    pub owner_id: UserId,
    /// A label chosen by the owner.
    pub name: String,
    /// The first characters of the key, shown in listings to tell keys apart.
    pub prefix: String,
    /// SHA-256 hex of the key.
    pub key_hash: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Revoked keys are rejected.
    pub revoked: bool,
    /// After this the key is rejected; `None` for a key that does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// What the key may do.
    #[serde(default)]
    pub scope: KeyScope,
}

/// An invitation to register, when registration is by invite: one use, until it expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub id: Uuid,
    /// SHA-256 hex of the code (the code itself is shown once, to the administrator who made it).
    pub code_hash: String,
    /// Whom it is for, as the administrator noted it.
    pub note: String,
    /// The administrator who made it.
    pub created_by: UserId,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// After this it no longer admits anyone.
    pub expires_at: DateTime<Utc>,
}

/// What an API key may do.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyScope {
    /// Everything its owner may do with a key.
    #[default]
    ReadWrite,
    /// Reads only (`GET` and `HEAD`): for dashboards and exports.
    ReadOnly,
}
