//! The generic cell rate algorithm (GCRA), as one pure function shared by the in-process limiter
//! and mirrored by the Redis script, and the `RateLimit-*` headers that tell a client where it stands.
//!
//! Each key keeps one number, its theoretical arrival time (TAT). A request at `now` is admitted
//! when `max(tat, now) + interval - now <= interval * burst`; admitting it moves the TAT forward
//! by one interval. Over any window of length `t` at most `burst + rate * t` requests are admitted,
//! whatever the load, and there is no window edge to game.

use std::time::Duration;

use axum::http::HeaderValue;
use axum::response::Response;

/// What kind of route a request is for; each class has its own limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteClass {
    /// Ordinary API routes.
    Api,
    /// Receipt uploads.
    Upload,
    /// Logins and registrations.
    Login,
}

impl RouteClass {
    /// The class name used in keys and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Upload => "upload",
            Self::Login => "login",
        }
    }
}

/// A rate with a burst allowance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Time between two requests at the steady rate, in microseconds.
    pub interval_micros: u64,
    /// Requests admitted at once from an idle state.
    pub burst: u32,
}

impl Limit {
    /// `rate` requests per second, `burst` at once.
    pub fn per_second(rate: f64, burst: u32) -> Self {
        let interval = (1_000_000.0 / rate).round().clamp(1.0, 1e15) as u64;
        Self { interval_micros: interval, burst: burst.max(1) }
    }

    /// The steady rate, in requests per second.
    pub fn rate(&self) -> f64 {
        1_000_000.0 / self.interval_micros as f64
    }

    /// How far ahead of now the TAT may run.
    pub fn tolerance_micros(&self) -> u64 {
        self.interval_micros.saturating_mul(u64::from(self.burst))
    }

    /// The window over which `burst` requests refill, for the `RateLimit-Policy` header.
    pub fn window(&self) -> Duration {
        Duration::from_micros(self.tolerance_micros())
    }
}

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is admitted.
    pub allowed: bool,
    /// Requests still admissible at once after this one.
    pub remaining: u32,
    /// When refused: how long until a request would be admitted.
    pub retry_after: Duration,
    /// How long until the full burst is available again.
    pub reset: Duration,
}

/// One GCRA step: the decision, and the new TAT to store when admitted.
pub fn gcra(tat: Option<u64>, now_micros: u64, limit: Limit) -> (Decision, Option<u64>) {
    let tat = tat.unwrap_or(now_micros).max(now_micros);
    let next = tat + limit.interval_micros;
    let ahead = next - now_micros;
    let tolerance = limit.tolerance_micros();
    if ahead > tolerance {
        let decision = Decision {
            allowed: false,
            remaining: 0,
            retry_after: Duration::from_micros(ahead - tolerance),
            reset: Duration::from_micros(tat - now_micros),
        };
        return (decision, None);
    }
    let remaining = u32::try_from((tolerance - ahead) / limit.interval_micros).unwrap_or(u32::MAX);
    let decision =
        Decision { allowed: true, remaining, retry_after: Duration::ZERO, reset: Duration::from_micros(ahead) };
    (decision, Some(next))
}

/// Combines the decisions of several keys checked together: refused if any refuses.
pub fn combine(decisions: impl IntoIterator<Item = Decision>) -> Decision {
    decisions.into_iter().fold(
        Decision { allowed: true, remaining: u32::MAX, retry_after: Duration::ZERO, reset: Duration::ZERO },
        |all, one| Decision {
            allowed: all.allowed && one.allowed,
            remaining: all.remaining.min(one.remaining),
            retry_after: all.retry_after.max(one.retry_after),
            reset: all.reset.max(one.reset),
        },
    )
}

/// Sets the `RateLimit-*` headers (draft-ietf-httpapi-ratelimit-headers) on a response.
/// Headers a handler already set (a stricter bucket, as for logins) are kept.
pub fn rate_limit_headers(response: &mut Response, burst: u32, window: Duration, decision: &Decision) {
    let headers = response.headers_mut();
    if headers.contains_key("ratelimit-limit") {
        return;
    }
    headers.insert("ratelimit-limit", HeaderValue::from(burst));
    headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(retry_after_seconds(decision.reset)));
    if let Ok(policy) = HeaderValue::from_str(&format!("{burst};w={}", retry_after_seconds(window))) {
        headers.insert("ratelimit-policy", policy);
    }
}

/// `Retry-After` in whole seconds, at least 1.
pub fn retry_after_seconds(after: Duration) -> u64 {
    after.as_secs() + u64::from(after.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(limit: Limit, arrivals: impl IntoIterator<Item = u64>) -> Vec<bool> {
        let mut tat = None;
        arrivals
            .into_iter()
            .map(|now| {
                let (decision, next) = gcra(tat, now, limit);
                if let Some(next) = next {
                    tat = Some(next);
                }
                decision.allowed
            })
            .collect()
    }

    #[test]
    fn a_burst_is_admitted_then_the_steady_rate() {
        let limit = Limit::per_second(10.0, 3);
        // Five requests at once: the burst of three passes.
        assert_eq!(run(limit, [0, 0, 0, 0, 0]), [true, true, true, false, false]);
        // At exactly the steady rate, everything passes.
        assert!(run(limit, (0..50).map(|i| i * 100_000)).into_iter().all(|allowed| allowed));
    }

    #[test]
    fn admitted_requests_never_exceed_rate_times_time_plus_burst() {
        let limit = Limit::per_second(10.0, 5);
        // One request every millisecond for three seconds: a hundred times the rate.
        let admitted = run(limit, (0..3_000).map(|ms| ms * 1_000)).into_iter().filter(|a| *a).count();
        assert!(admitted <= 5 + 30, "{admitted} admitted");
        assert!(admitted >= 30, "{admitted} admitted: the limiter must still admit the steady rate");
    }

    #[test]
    fn a_refusal_says_when_to_retry_and_does_not_consume() {
        let limit = Limit::per_second(1.0, 1);
        let (first, tat) = gcra(None, 0, limit);
        assert!(first.allowed);
        let (second, unchanged) = gcra(tat, 250_000, limit);
        assert!(!second.allowed);
        assert_eq!(unchanged, None);
        assert_eq!(second.retry_after, Duration::from_millis(750));
        let (third, _) = gcra(tat, 1_000_000, limit);
        assert!(third.allowed, "admitted once the retry-after has passed");
    }

    #[test]
    fn combined_decisions_refuse_when_any_key_refuses() {
        let open = Decision { allowed: true, remaining: 4, retry_after: Duration::ZERO, reset: Duration::ZERO };
        let shut = Decision {
            allowed: false,
            remaining: 0,
            retry_after: Duration::from_secs(2),
            reset: Duration::from_secs(3),
        };
        let both = combine([open, shut]);
        assert!(!both.allowed);
        assert_eq!((both.remaining, both.retry_after), (0, Duration::from_secs(2)));
    }
}
