//! Validation and normalisation of user names and emails, and the public view of a user.

use chrono::{DateTime, Utc};
use finagent_core::account::{Role, User};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::AppError;

/// Normalises a user name (trimmed, lower-case) and checks it: 3–32 characters among `a-z`, `0-9`,
/// `.`, `_` and `-`, starting with a letter or a digit.
pub fn normalize_username(raw: &str) -> Result<String, AppError> {
    let name = raw.trim().to_lowercase();
    let valid_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    let valid_start = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !(3..=32).contains(&name.len()) || !valid_chars || !valid_start {
        return Err(AppError::Invalid(
            "username: 3 to 32 characters among a-z, 0-9, '.', '_' and '-', starting with a letter or a digit".into(),
        ));
    }
    Ok(name)
}

/// Normalises an email (trimmed, lower-case) and checks its shape: one `@`, a local part of at most
/// 64 characters, a domain of dot-separated labels with at least one dot, 254 characters in all.
pub fn normalize_email(raw: &str) -> Result<String, AppError> {
    let email = raw.trim().to_lowercase();
    let invalid = || AppError::Invalid("email: not a valid address".into());
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if email.len() > 254 || !local_ok || !domain_ok {
        return Err(invalid());
    }
    Ok(email)
}

/// A user as clients see it (never the password hash).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    /// User name.
    pub username: String,
    pub email: String,
    /// `user`, `admin` or `service`.
    #[schema(value_type = String, example = "user")]
    pub role: Role,
    /// Disabled users can neither sign in nor use their tokens or keys.
    pub disabled: bool,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.as_uuid(),
            username: user.username.clone(),
            email: user.email.clone(),
            role: user.role,
            disabled: user.disabled,
            created_at: user.created_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_lowercased_and_checked() {
        assert_eq!(normalize_username("  Ann.Lee ").expect("valid"), "ann.lee");
        for bad in ["ab", "-ann", "ann lee", "ann@x", &"a".repeat(33), "ännä"] {
            assert!(normalize_username(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(normalize_email(" Ann@Example.COM ").expect("valid"), "ann@example.com");
        for bad in ["ann", "ann@", "@example.com", "ann@example", "ann@-x.com", "a..b@x.com", "ann@ex ample.com"] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
    }
}
