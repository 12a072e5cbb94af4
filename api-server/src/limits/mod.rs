//! Abuse protection: rate limits (GCRA), the client address behind trusted proxies, and the
//! back-off after failed logins, memory budgets, and each user's uploads in progress.

pub mod client_ip;
pub mod login;
pub mod memory;
pub mod rate;
pub mod uploads;
