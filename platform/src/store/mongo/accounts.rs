//! Accounts: users, sessions, API keys, token revocations and invites.

use chrono::{DateTime, Utc};
use finagent_core::UserId;
use finagent_core::account::{ApiKey, Rotation, Session, User};
use mongodb::bson::{self, Document, doc};
use uuid::Uuid;

use super::{MongoStore, decode, encode, is_duplicate, unavailable};
use super::{all, documents};
use crate::store::{ApiKeyStore, SessionStore, StoreError, UserChange, UserStore};

impl UserStore for MongoStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        insert_new(&self.users, encode(user, user.id.to_string())?, "user name", "create_user").await
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.users.find_one(doc! { "_id": id.to_string() }).await.map_err(unavailable("user"))?.map(decode).transpose()
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.users
            .find_one(doc! { "username": username })
            .await
            .map_err(unavailable("user_by_name"))?
            .map(decode)
            .transpose()
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        all("users", self.users.find(doc! {}).sort(doc! { "username": 1 }), decode).await
    }

    async fn update_user(&self, user: &User) -> Result<bool, StoreError> {
        let replaced =
            self.users.replace_one(doc! { "_id": user.id.to_string() }, encode(user, user.id.to_string())?).await;
        match replaced {
            Ok(outcome) => Ok(outcome.matched_count == 1),
            Err(error) if is_duplicate(&error) => Err(StoreError::Conflict("user name".to_owned())),
            Err(error) => Err(unavailable("update_user")(error)),
        }
    }

    async fn change_user(
        &self,
        id: UserId,
        change: &UserChange,
        tokens_valid_after: Option<DateTime<Utc>>,
    ) -> Result<Option<User>, StoreError> {
        let corrupt = |error: bson::ser::Error| StoreError::corrupt("session")(error);
        let mut set = match change {
            UserChange::Password(hash) => doc! { "password_hash": hash },
            UserChange::Disabled(disabled) => doc! { "disabled": disabled },
            UserChange::Role(role) => doc! { "role": bson::to_bson(role).map_err(corrupt)? },
            UserChange::Preferences(preferences) => {
                doc! { "preferences": bson::to_bson(preferences).map_err(corrupt)? }
            }
        };
        if let Some(after) = tokens_valid_after {
            set.insert("tokens_valid_after", bson::to_bson(&after).map_err(corrupt)?);
        }
        let options = mongodb::options::FindOneAndUpdateOptions::builder()
            .return_document(mongodb::options::ReturnDocument::After)
            .build();
        self.users
            .find_one_and_update(doc! { "_id": id.to_string() }, doc! { "$set": set })
            .with_options(options)
            .await
            .map_err(unavailable("change_user"))?
            .map(decode)
            .transpose()
    }
}

impl SessionStore for MongoStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        let mut document = encode(session, session.family_id.to_string())?;
        document.insert("used_token_hashes", Vec::<String>::new());
        self.sessions.insert_one(document).await.map_err(unavailable("create_session"))?;
        Ok(())
    }

    async fn rotate_session(
        &self,
        presented_hash: &str,
        next_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        if let Some(document) = self
            .sessions
            .find_one(doc! { "current_token_hash": presented_hash })
            .await
            .map_err(unavailable("rotate_session"))?
        {
            let family_id = document.get_str("_id").unwrap_or_default().to_owned();
            let session: Session = decode(document)?;
            if session.revoked || session.expires_at <= now {
                return Ok(Rotation::Invalid);
            }
            // Compare-and-set on the current token: of two concurrent refreshes, one wins.
            let updated = self
                .sessions
                .update_one(
                    doc! { "_id": &family_id, "current_token_hash": presented_hash, "revoked": false },
                    doc! {
                        "$set": { "current_token_hash": next_hash, "last_used_at": now.to_rfc3339() },
                        "$push": { "used_token_hashes": presented_hash },
                    },
                )
                .await
                .map_err(unavailable("rotate_session"))?;
            if updated.modified_count == 1 {
                return Ok(Rotation::Rotated(Session {
                    current_token_hash: next_hash.to_owned(),
                    last_used_at: Some(now),
                    ..session
                }));
            }
        }
        let reused = self
            .sessions
            .find_one_and_update(doc! { "used_token_hashes": presented_hash }, doc! { "$set": { "revoked": true } })
            .await
            .map_err(unavailable("rotate_session"))?;
        Ok(if reused.is_some() { Rotation::ReuseDetected } else { Rotation::Invalid })
    }

    async fn user_sessions(&self, user_id: UserId, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let mut live: Vec<Session> =
            all("user_sessions", self.sessions.find(doc! { "user_id": user_id.to_string(), "revoked": false }), decode)
                .await?;
        live.retain(|session| !session.revoked && session.expires_at > now);
        live.sort_by_key(|session| std::cmp::Reverse(session.last_used_at.unwrap_or(session.created_at)));
        Ok(live)
    }

    async fn revoke_user_session(&self, user_id: UserId, family_id: Uuid) -> Result<bool, StoreError> {
        let filter = doc! { "_id": family_id.to_string(), "user_id": user_id.to_string(), "revoked": false };
        Ok(revoke_one(&self.sessions, filter, "revoke_user_session").await?.modified_count == 1)
    }

    async fn revoke_session(&self, family_id: Uuid) -> Result<(), StoreError> {
        revoke_one(&self.sessions, doc! { "_id": family_id.to_string() }, "revoke_session").await.map(|_| ())
    }

    async fn revoke_user_sessions(&self, user_id: UserId) -> Result<u64, StoreError> {
        let updated = self
            .sessions
            .update_many(
                doc! { "user_id": user_id.to_string(), "revoked": false },
                doc! { "$set": { "revoked": true } },
            )
            .await
            .map_err(unavailable("revoke_user_sessions"))?;
        Ok(updated.modified_count)
    }
}

impl ApiKeyStore for MongoStore {
    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        insert_new(&self.api_keys, encode(key, key.id.to_string())?, "api key", "create_api_key").await
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.api_keys
            .find_one(doc! { "key_hash": key_hash, "revoked": false })
            .await
            .map_err(unavailable("api_key_by_hash"))?
            .map(decode)
            .transpose()
    }

    async fn api_keys(&self, owner: UserId) -> Result<Vec<ApiKey>, StoreError> {
        let mut keys: Vec<ApiKey> =
            all("api_keys", self.api_keys.find(doc! { "owner_id": owner.to_string() }), decode).await?;
        keys.sort_by_key(|key| std::cmp::Reverse(key.created_at));
        Ok(keys)
    }

    async fn revoke_api_key(&self, owner: UserId, id: Uuid) -> Result<bool, StoreError> {
        let filter = doc! { "_id": id.to_string(), "owner_id": owner.to_string(), "revoked": false };
        Ok(revoke_one(&self.api_keys, filter, "revoke_api_key").await?.matched_count == 1)
    }
}

impl crate::store::RevocationStore for MongoStore {
    async fn save_revocation(&self, revocation: &crate::store::Revocation) -> Result<(), StoreError> {
        self.revocations
            .update_one(
                doc! { "_id": &revocation.key },
                doc! { "$max": { "value": revocation.value, "until_ms": revocation.until.timestamp_millis() } },
            )
            .upsert(true)
            .await
            .map_err(unavailable("save_revocation"))?;
        Ok(())
    }

    async fn live_revocations(&self, now: DateTime<Utc>) -> Result<Vec<crate::store::Revocation>, StoreError> {
        let now = now.timestamp_millis();
        self.revocations
            .delete_many(doc! { "until_ms": { "$lte": now } })
            .await
            .map_err(unavailable("live_revocations"))?;
        let found: Vec<Document> = documents("live_revocations", self.revocations.find(doc! {})).await?;
        Ok(found
            .iter()
            .filter_map(|document| {
                Some(crate::store::Revocation {
                    key: document.get_str("_id").ok()?.to_owned(),
                    value: document.get_i64("value").ok()?,
                    until: DateTime::from_timestamp_millis(document.get_i64("until_ms").ok()?)?,
                })
            })
            .collect())
    }
}

impl crate::store::InviteStore for MongoStore {
    async fn create_invite(&self, invite: &finagent_core::account::Invite) -> Result<(), StoreError> {
        let mut document = encode(invite, invite.id.to_string())?;
        document.insert("created_ms", invite.created_at.timestamp_millis());
        document.insert("expires_ms", invite.expires_at.timestamp_millis());
        insert_new(&self.invites, document, "invite", "create_invite").await
    }

    async fn invites(&self, now: DateTime<Utc>) -> Result<Vec<finagent_core::account::Invite>, StoreError> {
        all(
            "invites",
            self.invites
                .find(doc! { "expires_ms": { "$gt": now.timestamp_millis() } })
                .sort(doc! { "created_ms": -1, "_id": 1 }),
            decode,
        )
        .await
    }

    async fn delete_invite(&self, id: Uuid) -> Result<bool, StoreError> {
        let deleted =
            self.invites.delete_one(doc! { "_id": id.to_string() }).await.map_err(unavailable("delete_invite"))?;
        Ok(deleted.deleted_count == 1)
    }

    async fn take_invite(
        &self,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<finagent_core::account::Invite>, StoreError> {
        let taken = self
            .invites
            .find_one_and_delete(doc! { "code_hash": code_hash, "expires_ms": { "$gt": now.timestamp_millis() } })
            .await
            .map_err(unavailable("take_invite"))?;
        taken.map(decode).transpose()
    }
}

/// Marks the one document `filter` selects as revoked (a session or an API key).
async fn revoke_one<T: Send + Sync>(
    collection: &mongodb::Collection<T>,
    filter: Document,
    operation: &'static str,
) -> Result<mongodb::results::UpdateResult, StoreError> {
    collection.update_one(filter, doc! { "$set": { "revoked": true } }).await.map_err(unavailable(operation))
}

/// Inserts a new document; one with the same id or unique key is a conflict over `what`.
async fn insert_new(
    collection: &mongodb::Collection<Document>,
    document: Document,
    what: &str,
    operation: &'static str,
) -> Result<(), StoreError> {
    match collection.insert_one(document).await {
        Ok(_) => Ok(()),
        Err(error) if is_duplicate(&error) => Err(StoreError::Conflict(what.to_owned())),
        Err(error) => Err(unavailable(operation)(error)),
    }
}
