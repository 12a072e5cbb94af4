//! Abuse protection: rate limits (GCRA), the client address behind trusted proxies, and the
//! back-off after failed logins.

pub mod client_ip;
pub mod login;
pub mod rate;
