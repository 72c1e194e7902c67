//! When a failed request is worth another attempt, and how long to wait first.
//!
//! Transient: 429, 500, 502, 503, 504, dropped connections and timeouts. Permanent:
//! every other status (400, 401, 403, 404, 422, ...), egress denials, oversized bodies.
//! A `Retry-After` header (seconds or HTTP date) is honoured up to a cap; otherwise the
//! delay grows exponentially with jitter.

use std::time::{Duration, SystemTime};

/// Limits of the retry loop.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Delay before the first retry when the server gives no `Retry-After`.
    pub base_delay: Duration,
    /// Ceiling of the exponential delay.
    pub max_delay: Duration,
    /// Ceiling of a server-requested `Retry-After`: a server asking for an hour does
    /// not get to stall the job for an hour.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// Statuses that mean "try again later".
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1`, after `attempt` failures (1-based).
    /// `jitter` is in `[0, 1)`. Full-jitter halves: the delay is between 50% and 100%
    /// of the exponential step, so concurrent clients spread out.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(16);
        let step = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// The delay a `Retry-After` value asks for, capped; `None` when absent or unreadable.
    pub fn retry_after(&self, value: Option<&str>, now: SystemTime) -> Option<Duration> {
        let value = value?.trim();
        let delay = match value.parse::<u64>() {
            Ok(seconds) => Duration::from_secs(seconds),
            Err(_) => {
                let at = httpdate::parse_http_date(value).ok()?;
                at.duration_since(now).unwrap_or(Duration::ZERO)
            }
        };
        Some(delay.min(self.max_retry_after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_statuses() {
        for status in [429, 500, 502, 503, 504] {
            assert!(is_transient_status(status), "{status}");
        }
        for status in [200, 400, 401, 403, 404, 409, 422, 501] {
            assert!(!is_transient_status(status), "{status}");
        }
    }

    #[test]
    fn backoff_grows_exponentially_within_jitter_and_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(1, 0.999_999).as_millis(), 249);
        assert_eq!(policy.backoff(1, 0.0), Duration::from_millis(125));
        assert_eq!(policy.backoff(3, 0.0), Duration::from_millis(500));
        // Capped at max_delay however many attempts.
        assert_eq!(policy.backoff(40, 0.0), policy.max_delay / 2);
        assert!(policy.backoff(40, 0.99) <= policy.max_delay);
    }

    #[test]
    fn retry_after_in_seconds_and_http_date() {
        let policy = RetryPolicy::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            policy.retry_after(Some("2"), now),
            Some(Duration::from_secs(2))
        );
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            policy.retry_after(Some("Sun, 06 Nov 1994 08:49:40 GMT"), now),
            Some(Duration::from_secs(3))
        );
        // A date in the past means "now".
        assert_eq!(
            policy.retry_after(Some("Sun, 06 Nov 1994 08:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(policy.retry_after(Some("soon"), now), None);
        assert_eq!(policy.retry_after(None, now), None);
    }

    #[test]
    fn retry_after_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.retry_after(Some("86400"), SystemTime::UNIX_EPOCH),
            Some(policy.max_retry_after)
        );
    }
}
