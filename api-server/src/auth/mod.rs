//! Authentication: accounts, passwords, tokens, API keys, and who is calling.

pub mod accounts;
pub mod accounts_cache;
pub mod api_keys;
pub mod browser;
pub mod me;
pub mod password;
pub mod principal;
pub mod routes;
pub mod secrets;
pub mod session_service;
pub mod sessions;
pub mod tokens;
