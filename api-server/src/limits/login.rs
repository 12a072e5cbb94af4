//! The back-off after failed logins, and device tokens.
//!
//! Failures are counted per account *and client address* ([`PER_ADDRESS`]), and per account
//! alone with a much higher allowance ([`PER_ACCOUNT`]). After a back-off's free failures in a
//! row, each attempt must wait an exponentially growing delay after the previous failure, capped
//! at [`MAX_DELAY`]. Attempts made during the wait are refused with 429 and do not count as
//! failures, and failures are forgotten after [`FAILURE_MEMORY`] without one. Unknown user names
//! get the same back-off, so it does not reveal which accounts exist.
//!
//! **Device tokens** (OWASP's "device cookies") keep the account-wide back-off from locking the
//! owner out. A successful sign-in gives the client a token signed for that account (the web
//! app's `HttpOnly` `fa_device` cookie; `device_token` in the JSON answer for API clients, sent
//! back as `X-Device-Token`). A sign-in that presents a valid one is counted against that device
//! alone ([`PER_DEVICE`]), never against the account's or the address's failures. Everyone else,
//! attackers included, shares the account-wide and per-address back-offs. So the owner signs in
//! from a known device while an attack runs, and the guesses an attacker gets stay bounded:
//! per address and account, 5 at once and then one every 30 s at most (about 2,900 a day); per
//! account from all addresses together, 100 and then one every 30 s (about 3,000 a day). A new
//! device of the owner's waits like any other client while an attack runs: the price of the
//! bound.

use std::time::Duration;

/// Failures in a row allowed without delay, per account and address.
pub const FREE_FAILURES: u32 = 5;

/// Failures in a row allowed without delay on an account from all addresses together.
pub const ACCOUNT_FREE_FAILURES: u32 = 100;

/// The longest delay.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// How long failures are remembered.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);

/// A back-off schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Failures in a row allowed without delay.
    pub free_failures: u32,
    /// The longest delay.
    pub max_delay: Duration,
}

/// The back-off of one account from one address.
pub const PER_ADDRESS: Backoff = Backoff { free_failures: FREE_FAILURES, max_delay: MAX_DELAY };

/// The back-off of one known device (a valid device token) on its account.
pub const PER_DEVICE: Backoff = Backoff { free_failures: FREE_FAILURES, max_delay: MAX_DELAY };

/// The back-off of one account from every address together.
pub const PER_ACCOUNT: Backoff = Backoff { free_failures: ACCOUNT_FREE_FAILURES, max_delay: MAX_DELAY };

/// The wait required after the last of `failures` failures in a row.
pub fn delay_after(failures: u32, backoff: Backoff) -> Duration {
    if failures < backoff.free_failures {
        return Duration::ZERO;
    }
    let exponent = (failures - backoff.free_failures).min(16);
    Duration::from_secs(1u64 << exponent).min(backoff.max_delay)
}

/// How long the caller must still wait, given the failures so far and the time since the last one.
pub fn wait(failures: u32, since_last_failure: Duration, backoff: Backoff) -> Option<Duration> {
    delay_after(failures, backoff).checked_sub(since_last_failure).filter(|left| !left.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failures_cost_nothing_then_the_delay_doubles_up_to_the_cap() {
        let delays: Vec<u64> = (0..12).map(|failures| delay_after(failures, PER_ADDRESS).as_secs()).collect();
        assert_eq!(delays, [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(delay_after(u32::MAX, PER_ADDRESS), MAX_DELAY);
        assert_eq!(delay_after(99, PER_ACCOUNT), Duration::ZERO, "the account alone allows many more");
        assert_eq!(delay_after(101, PER_ACCOUNT), Duration::from_secs(2));
    }

    #[test]
    fn the_wait_ends_after_the_delay() {
        assert_eq!(wait(4, Duration::ZERO, PER_ADDRESS), None);
        assert_eq!(wait(7, Duration::from_secs(1), PER_ADDRESS), Some(Duration::from_secs(3)));
        assert_eq!(wait(7, Duration::from_secs(4), PER_ADDRESS), None);
        assert_eq!(wait(100, Duration::from_secs(30), PER_ADDRESS), None, "never longer than the cap");
    }
}
