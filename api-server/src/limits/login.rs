//! The back-off after failed logins on one account.
//!
//! After [`FREE_FAILURES`] failures in a row, each attempt must wait an exponentially growing delay
//! after the previous failure, capped at [`MAX_DELAY`]. Attempts made during the wait are refused
//! with 429 and do not count as failures, and failures are forgotten after [`FAILURE_MEMORY`]
//! without one. So a guesser gets at most one guess per 30 s on an account, while the owner is
//! never locked out for longer than 30 s after the guesser's last attempt: a throttle, not a lock.
//! Unknown user names get the same back-off, so it does not reveal which accounts exist.

use std::time::Duration;

/// Failures in a row allowed without delay.
pub const FREE_FAILURES: u32 = 5;
/// The longest delay.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// How long failures are remembered.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);

/// The wait required after the last of `failures` failures in a row.
pub fn delay_after(failures: u32) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    let exponent = (failures - FREE_FAILURES).min(16);
    Duration::from_secs(1u64 << exponent).min(MAX_DELAY)
}

/// How long the caller must still wait, given the failures so far and the time since the last one.
pub fn wait(failures: u32, since_last_failure: Duration) -> Option<Duration> {
    delay_after(failures).checked_sub(since_last_failure).filter(|left| !left.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failures_cost_nothing_then_the_delay_doubles_up_to_the_cap() {
        let delays: Vec<u64> = (0..12).map(|failures| delay_after(failures).as_secs()).collect();
        assert_eq!(delays, [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(delay_after(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn the_wait_ends_after_the_delay() {
        assert_eq!(wait(4, Duration::ZERO), None);
        assert_eq!(wait(7, Duration::from_secs(1)), Some(Duration::from_secs(3)));
        assert_eq!(wait(7, Duration::from_secs(4)), None);
        assert_eq!(wait(100, Duration::from_secs(30)), None, "never longer than the cap");
    }
}
