//! Accounts: users, sessions, API keys, token revocations and invites.

use chrono::{DateTime, Utc};
use finagent_core::UserId;
use finagent_core::account::{ApiKey, Rotation, Session, User};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::{SqliteStore, conflict_or, document, documents, failed, from_json, to_json};
use crate::store::{ApiKeyStore, SessionStore, StoreError, UserChange, UserStore};

impl UserStore for SqliteStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        self.insert_row(
            "user name",
            "INSERT INTO users (id, username, email, document) VALUES (?1, ?2, ?3, ?4)",
            vec![
                Value::from(user.id.to_string()),
                Value::from(user.username.clone()),
                Value::from(user.email.clone()),
                Value::from(to_json(user)?),
            ],
        )
        .await
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let id = id.to_string();
        self.with(move |db| document(db, "SELECT document FROM users WHERE id = ?1", params![id])).await
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let username = username.to_owned();
        self.with(move |db| document(db, "SELECT document FROM users WHERE username = ?1", params![username])).await
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.with(|db| documents(db, "SELECT document FROM users ORDER BY username", [])).await
    }

    async fn update_user(&self, user: &User) -> Result<bool, StoreError> {
        let (id, name, email, document) =
            (user.id.to_string(), user.username.clone(), user.email.clone(), to_json(user)?);
        self.with(move |db| {
            let changed = db
                .execute(
                    "UPDATE users SET username = ?2, email = ?3, document = ?4 WHERE id = ?1",
                    params![id, name, email, document],
                )
                .map_err(|e| conflict_or(e, "user name"))?;
            Ok(changed == 1)
        })
        .await
    }

    async fn change_user(
        &self,
        id: UserId,
        change: &UserChange,
        tokens_valid_after: Option<DateTime<Utc>>,
    ) -> Result<Option<User>, StoreError> {
        let (id, change) = (id.to_string(), change.clone());
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed("change_user"))?;
            let Some(mut user) =
                document::<User>(&transaction, "SELECT document FROM users WHERE id = ?1", params![id])?
            else {
                return Ok(None);
            };
            change.apply(&mut user);
            if let Some(after) = tokens_valid_after {
                user.tokens_valid_after = user.tokens_valid_after.max(after);
            }
            transaction
                .execute("UPDATE users SET document = ?2 WHERE id = ?1", params![id, to_json(&user)?])
                .map_err(failed("change_user"))?;
            transaction.commit().map_err(failed("change_user"))?;
            Ok(Some(user))
        })
        .await
    }
}

impl SessionStore for SqliteStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        self.insert_row("session", "INSERT INTO sessions (family_id, user_id, current_token_hash, revoked, document) VALUES (?1, ?2, ?3, 0, ?4)", vec![Value::from(session.family_id.to_string()), Value::from(session.user_id.to_string()), Value::from(session.current_token_hash.clone()), Value::from(to_json(session)?)]).await
    }

    async fn rotate_session(
        &self,
        presented_hash: &str,
        next_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        let (presented, next) = (presented_hash.to_owned(), next_hash.to_owned());
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed("rotate_session"))?;
            let current: Option<(String, String)> = transaction
                .query_row(
                    "SELECT family_id, document FROM sessions WHERE current_token_hash = ?1",
                    params![presented],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(failed("rotate_session"))?;
            if let Some((family, document)) = current {
                let mut session: Session = from_json(&document)?;
                if session.revoked || session.expires_at <= now {
                    return Ok(Rotation::Invalid);
                }
                session.current_token_hash = next.clone();
                session.last_used_at = Some(now);
                transaction
                    .execute(
                        "UPDATE sessions SET current_token_hash = ?2, document = ?3 WHERE family_id = ?1",
                        params![family, next, to_json(&session)?],
                    )
                    .map_err(failed("rotate_session"))?;
                transaction
                    .execute(
                        "INSERT INTO used_refresh_tokens (token_hash, family_id) VALUES (?1, ?2)",
                        params![presented, family],
                    )
                    .map_err(failed("rotate_session"))?;
                transaction.commit().map_err(failed("rotate_session"))?;
                return Ok(Rotation::Rotated(session));
            }
            let reused: Option<String> = transaction
                .query_row(
                    "SELECT family_id FROM used_refresh_tokens WHERE token_hash = ?1",
                    params![presented],
                    |row| row.get(0),
                )
                .optional()
                .map_err(failed("rotate_session"))?;
            let Some(family) = reused else { return Ok(Rotation::Invalid) };
            revoke_family(&transaction, &family)?;
            transaction.commit().map_err(failed("rotate_session"))?;
            Ok(Rotation::ReuseDetected)
        })
        .await
    }

    async fn revoke_session(&self, family_id: Uuid) -> Result<(), StoreError> {
        let family = family_id.to_string();
        self.with(move |db| revoke_family(db, &family)).await
    }

    async fn user_sessions(&self, user_id: UserId, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let user = user_id.to_string();
        let mut live: Vec<Session> = self
            .with(move |db| {
                documents(db, "SELECT document FROM sessions WHERE user_id = ?1 AND revoked = 0", params![user])
            })
            .await?;
        live.retain(|session| !session.revoked && session.expires_at > now);
        live.sort_by_key(|session| std::cmp::Reverse(session.last_used_at.unwrap_or(session.created_at)));
        Ok(live)
    }

    async fn revoke_user_session(&self, user_id: UserId, family_id: Uuid) -> Result<bool, StoreError> {
        let (user, family) = (user_id.to_string(), family_id.to_string());
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed("revoke_user_session"))?;
            let found: Option<String> = transaction
                .query_row(
                    "SELECT family_id FROM sessions WHERE family_id = ?1 AND user_id = ?2 AND revoked = 0",
                    params![family, user],
                    |row| row.get(0),
                )
                .optional()
                .map_err(failed("revoke_user_session"))?;
            let Some(family) = found else { return Ok(false) };
            revoke_family(&transaction, &family)?;
            transaction.commit().map_err(failed("revoke_user_session"))?;
            Ok(true)
        })
        .await
    }

    async fn revoke_user_sessions(&self, user_id: UserId) -> Result<u64, StoreError> {
        let user = user_id.to_string();
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed("revoke_user_sessions"))?;
            let families: Vec<String> = {
                let mut statement = transaction
                    .prepare("SELECT family_id FROM sessions WHERE user_id = ?1 AND revoked = 0")
                    .map_err(failed("revoke_user_sessions"))?;
                statement
                    .query_map(params![user], |row| row.get(0))
                    .map_err(failed("revoke_user_sessions"))?
                    .collect::<Result<_, _>>()
                    .map_err(failed("revoke_user_sessions"))?
            };
            for family in &families {
                revoke_family(&transaction, family)?;
            }
            transaction.commit().map_err(failed("revoke_user_sessions"))?;
            Ok(u64::try_from(families.len()).unwrap_or(u64::MAX))
        })
        .await
    }
}

pub(super) fn revoke_family(db: &Connection, family: &str) -> Result<(), StoreError> {
    let Some(mut session) =
        document::<Session>(db, "SELECT document FROM sessions WHERE family_id = ?1", params![family])?
    else {
        return Ok(());
    };
    session.revoked = true;
    db.execute(
        "UPDATE sessions SET revoked = 1, document = ?2 WHERE family_id = ?1",
        params![family, to_json(&session)?],
    )
    .map_err(failed("revoke_family"))?;
    Ok(())
}

impl ApiKeyStore for SqliteStore {
    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.insert_row("api key", "INSERT INTO api_keys (id, owner_id, key_hash, revoked, created_at, document) VALUES (?1, ?2, ?3, 0, ?4, ?5)", vec![Value::from(key.id.to_string()), Value::from(key.owner_id.to_string()), Value::from(key.key_hash.clone()), Value::from(key.created_at.to_rfc3339()), Value::from(to_json(key)?)]).await
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let hash = key_hash.to_owned();
        self.with(move |db| {
            document(db, "SELECT document FROM api_keys WHERE key_hash = ?1 AND revoked = 0", params![hash])
        })
        .await
    }

    async fn api_keys(&self, owner: UserId) -> Result<Vec<ApiKey>, StoreError> {
        let owner = owner.to_string();
        self.with(move |db| {
            let mut statement = db
                .prepare("SELECT document FROM api_keys WHERE owner_id = ?1 ORDER BY created_at DESC")
                .map_err(failed("api_keys"))?;
            let documents: Vec<String> = statement
                .query_map(params![owner], |row| row.get(0))
                .map_err(failed("api_keys"))?
                .collect::<Result<_, _>>()
                .map_err(failed("api_keys"))?;
            documents.iter().map(|document| from_json(document)).collect()
        })
        .await
    }

    async fn revoke_api_key(&self, owner: UserId, id: Uuid) -> Result<bool, StoreError> {
        let (owner, id) = (owner.to_string(), id.to_string());
        self.with(move |db| {
            let Some(mut key) = document::<ApiKey>(
                db,
                "SELECT document FROM api_keys WHERE id = ?1 AND owner_id = ?2",
                params![id, owner],
            )?
            else {
                return Ok(false);
            };
            if key.revoked {
                return Ok(false);
            }
            key.revoked = true;
            db.execute("UPDATE api_keys SET revoked = 1, document = ?2 WHERE id = ?1", params![id, to_json(&key)?])
                .map_err(failed("revoke_api_key"))?;
            Ok(true)
        })
        .await
    }
}

impl crate::store::RevocationStore for SqliteStore {
    async fn save_revocation(&self, revocation: &crate::store::Revocation) -> Result<(), StoreError> {
        let (key, value, until) = (revocation.key.clone(), revocation.value, revocation.until.timestamp_millis());
        self.with(move |db| {
            db.execute(
                "INSERT INTO revocations (key, value, until_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value), until_ms = MAX(until_ms, excluded.until_ms)",
                params![key, value, until],
            )
            .map_err(failed("save_revocation"))?;
            Ok(())
        })
        .await
    }

    async fn live_revocations(&self, now: DateTime<Utc>) -> Result<Vec<crate::store::Revocation>, StoreError> {
        let now = now.timestamp_millis();
        self.with(move |db| {
            db.execute("DELETE FROM revocations WHERE until_ms <= ?1", params![now])
                .map_err(failed("live_revocations"))?;
            let mut statement =
                db.prepare("SELECT key, value, until_ms FROM revocations").map_err(failed("live_revocations"))?;
            let rows = statement
                .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?)))
                .map_err(failed("live_revocations"))?;
            let mut live = Vec::new();
            for row in rows {
                let (key, value, until) = row.map_err(failed("live_revocations"))?;
                let until = DateTime::from_timestamp_millis(until).unwrap_or_default();
                live.push(crate::store::Revocation { key, value, until });
            }
            Ok(live)
        })
        .await
    }
}

impl crate::store::InviteStore for SqliteStore {
    async fn create_invite(&self, invite: &finagent_core::account::Invite) -> Result<(), StoreError> {
        self.insert_row(
            "invite",
            "INSERT INTO invites (id, code_hash, created_ms, expires_ms, document) VALUES (?1, ?2, ?3, ?4, ?5)",
            vec![
                Value::from(invite.id.to_string()),
                Value::from(invite.code_hash.clone()),
                Value::from(invite.created_at.timestamp_millis()),
                Value::from(invite.expires_at.timestamp_millis()),
                Value::from(to_json(invite)?),
            ],
        )
        .await
    }

    async fn invites(&self, now: DateTime<Utc>) -> Result<Vec<finagent_core::account::Invite>, StoreError> {
        let now = now.timestamp_millis();
        self.with(move |db| {
            documents(
                db,
                "SELECT document FROM invites WHERE expires_ms > ?1 ORDER BY created_ms DESC, id",
                params![now],
            )
        })
        .await
    }

    async fn delete_invite(&self, id: Uuid) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.with(move |db| {
            Ok(db.execute("DELETE FROM invites WHERE id = ?1", params![id]).map_err(failed("delete_invite"))? == 1)
        })
        .await
    }

    async fn take_invite(
        &self,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<finagent_core::account::Invite>, StoreError> {
        let (hash, now) = (code_hash.to_owned(), now.timestamp_millis());
        self.with(move |db| {
            let transaction = db
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(failed("take_invite"))?;
            let found: Option<finagent_core::account::Invite> = document(
                &transaction,
                "SELECT document FROM invites WHERE code_hash = ?1 AND expires_ms > ?2",
                params![hash, now],
            )?;
            if let Some(invite) = &found {
                transaction
                    .execute("DELETE FROM invites WHERE id = ?1", params![invite.id.to_string()])
                    .map_err(failed("take_invite"))?;
            }
            transaction.commit().map_err(failed("take_invite"))?;
            Ok(found)
        })
        .await
    }
}
