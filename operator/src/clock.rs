//! One clock for every replica: the Kubernetes API server's.
//!
//! Rollout deadlines are timestamps in the status (`revision.since`, `workers.runningSince`), set by
//! the replica that leads when a revision is applied and compared by whichever replica leads when
//! the deadline comes. Two nodes' clocks may differ by seconds or minutes, so each replica reads
//! the API server's time from the `Date` header of its answers and keeps its offset from its own
//! clock. `Date` has whole seconds: the server's time at the moment of the answer lies within the
//! second it names, so the offset is taken at the middle of that second and kept until an answer
//! contradicts it by more than a second (a jump of either clock) — not moved by every answer's
//! rounding.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

/// The API server's time, as seen from this replica.
#[derive(Debug, Default)]
pub struct ServerClock {
    offset_ms: AtomicI64,
    known: AtomicBool,
}

impl ServerClock {
    /// An answer dated `server` (whole seconds) arrived at `local`.
    pub fn observe(&self, server: DateTime<Utc>, local: DateTime<Utc>) {
        let candidate = (server - local).num_milliseconds() + 500;
        let current = self.offset_ms.load(Ordering::Relaxed);
        if !self.known.load(Ordering::Relaxed) || (candidate - current).abs() > 1_000 {
            self.offset_ms.store(candidate, Ordering::Relaxed);
            self.known.store(true, Ordering::Relaxed);
        }
    }

    /// Reads an HTTP `Date` header (RFC 7231's IMF-fixdate) and observes it.
    pub fn observe_header(&self, value: &str, local: DateTime<Utc>) {
        if let Ok(server) = DateTime::parse_from_rfc2822(value) {
            self.observe(server.with_timezone(&Utc), local);
        }
    }

    /// The offset of the server's clock from ours (zero until an answer was seen).
    pub fn offset(&self) -> Duration {
        Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// The server's time now.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64, millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("time") + Duration::milliseconds(millis)
    }

    #[test]
    fn the_offset_is_the_middle_of_the_servers_second_and_survives_rounding() {
        let clock = ServerClock::default();
        assert_eq!(clock.offset(), Duration::zero(), "unknown: our own clock");
        // Our clock is 90 s ahead of the server's.
        clock.observe(at(0, 0), at(90, 300));
        assert_eq!(clock.offset().num_milliseconds(), -89_800);
        // Later answers round differently, within a second: the offset stays put.
        clock.observe(at(10, 0), at(100, 900));
        clock.observe(at(20, 0), at(109, 700));
        assert_eq!(clock.offset().num_milliseconds(), -89_800);
        // A clock jumped (NTP stepped ours by 30 s): the offset follows.
        clock.observe(at(30, 0), at(90, 100));
        assert_eq!(clock.offset().num_milliseconds(), -59_600);
    }

    #[test]
    fn two_replicas_with_skewed_clocks_agree_on_a_deadline() {
        // Replica a runs 2 minutes fast, replica b 3 minutes slow; both talk to one API server.
        let (a, b) = (ServerClock::default(), ServerClock::default());
        let server = at(0, 0);
        a.observe(server, server + Duration::minutes(2));
        b.observe(server, server - Duration::minutes(3));
        let a_local = server + Duration::minutes(2) + Duration::milliseconds(200);
        let b_local = server - Duration::minutes(3) + Duration::milliseconds(200);
        let seen_by_a = a_local + a.offset();
        let seen_by_b = b_local + b.offset();
        assert!((seen_by_a - seen_by_b).num_milliseconds().abs() < 1_000, "{seen_by_a} vs {seen_by_b}");
    }

    #[test]
    fn an_http_date_is_read() {
        let clock = ServerClock::default();
        clock.observe_header("Tue, 14 Nov 2023 22:13:20 GMT", at(0, 0));
        assert_eq!(clock.offset().num_milliseconds(), 500);
        clock.observe_header("not a date", at(500, 0));
        assert_eq!(clock.offset().num_milliseconds(), 500, "an unreadable header changes nothing");
    }
}
