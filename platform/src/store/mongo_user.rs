//! The MongoDB user the platform's pods connect as: not the root user, but one with `readWrite`
//! on the platform's database only. It is created (or its password set again) by a step that
//! alone holds the root credentials — the API pod's init container (`api-server mongodb-user`) —
//! so the API and the workers never see them.

use mongodb::bson::{Bson, Document, doc};

use super::StoreError;

/// What [`ensure_user`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserEnsured {
    /// A new user with `readWrite` on the database.
    Created,
    /// The user existed; its password was set (so a rotated password takes effect).
    PasswordSet,
    /// A new user, without roles: the server does not implement roles (a MongoDB-compatible
    /// server such as FerretDB 1.x, which enforces no authorisation at all).
    CreatedWithoutRoles,
}

/// MongoDB's `NotImplemented` error code.
const NOT_IMPLEMENTED: i32 = 238;

fn command_code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        mongodb::error::ErrorKind::Command(command) => Some(command.code),
        _ => None,
    }
}

fn failed(operation: &'static str, error: mongodb::error::Error) -> StoreError {
    StoreError::Unavailable { operation, source: error.into() }
}

/// The command that creates `username` with `roles`.
fn create_user(username: &str, password: &str, roles: Vec<Bson>) -> Document {
    doc! { "createUser": username, "pwd": password, "roles": roles }
}

/// Makes sure `username` (in the `admin` database) exists with `password` and `readWrite` on
/// `database`, connected as the root user of `root_url`. Idempotent: run at every start.
pub async fn ensure_user(
    root_url: &str,
    username: &str,
    password: &str,
    database: &str,
) -> Result<UserEnsured, StoreError> {
    let client = mongodb::Client::with_uri_str(root_url).await.map_err(|error| failed("connect", error))?;
    let admin = client.database("admin");
    let info = admin.run_command(doc! { "usersInfo": username }).await.map_err(|error| failed("usersInfo", error))?;
    let exists = info.get_array("users").is_ok_and(|users| !users.is_empty());
    if exists {
        admin
            .run_command(doc! { "updateUser": username, "pwd": password })
            .await
            .map_err(|error| failed("updateUser", error))?;
        return Ok(UserEnsured::PasswordSet);
    }
    let roles = vec![Bson::Document(doc! { "role": "readWrite", "db": database })];
    match admin.run_command(create_user(username, password, roles)).await {
        Ok(_) => Ok(UserEnsured::Created),
        Err(error) if command_code(&error) == Some(NOT_IMPLEMENTED) => {
            admin
                .run_command(create_user(username, password, Vec::new()))
                .await
                .map_err(|error| failed("createUser", error))?;
            Ok(UserEnsured::CreatedWithoutRoles)
        }
        Err(error) => Err(failed("createUser", error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_gets_read_write_on_the_platforms_database_only() {
        let roles = vec![Bson::Document(doc! { "role": "readWrite", "db": "finagent" })];
        let command = create_user("finagent-app", "secret", roles);
        assert_eq!(command.get_str("createUser"), Ok("finagent-app"));
        let roles = command.get_array("roles").expect("roles");
        assert_eq!(roles.len(), 1);
        let role = roles[0].as_document().expect("a role");
        assert_eq!((role.get_str("role"), role.get_str("db")), (Ok("readWrite"), Ok("finagent")));
    }
}
