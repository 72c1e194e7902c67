//! Switchable faults: what can go wrong between the integration and JumpCloud, on
//! demand, while the server runs.
//!
//! A [`FaultRule`] names a [`Fault`], an optional path prefix, a period (`every`: the
//! nth, 2nth, 3nth, ... matching request) and an optional cap on how often it fires.
//! Each rule counts its own matching requests. When several rules fire on the same
//! request, all [`Fault::Latency`] delays add up and the first other fault (in rule
//! order) is applied; a rule shadowed by an earlier one does not use up its `limit`.
//!
//! Faults act before routing and authentication (like a proxy or rate limiter in
//! front of the API), except the body corruptions ([`Fault::TruncatedBody`],
//! [`Fault::WrongEnvelope`], [`Fault::WrongFieldType`]), which rewrite the answer the
//! API would have given.

use std::time::Duration;

/// The value of a `Retry-After` header on a simulated 429.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <IMF-fixdate>`, two to three seconds ahead of the server clock
    /// (HTTP dates have one-second resolution, so the wait is rounded up).
    HttpDate,
}

/// One kind of misbehaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `{"message":"Too Many Requests"}`, with or without `Retry-After`.
    TooManyRequests {
        /// The `Retry-After` header to send; `None` sends none (JumpCloud documents none).
        retry_after: Option<RetryAfter>,
    },
    /// This status (meant for 5xx) with `{"message":"<reason phrase>"}`. A number that
    /// is not a valid HTTP status is answered as 500.
    ServerError(u16),
    /// 403 with `{"message":"Forbidden"}`: a permission (or IP block) problem.
    Forbidden,
    /// Extra delay on this request, before anything else happens.
    Latency(Duration),
    /// Close the connection without sending a response.
    DropConnection,
    /// The normal status and headers, `content-length` of the whole body, but only the
    /// first half of the body; then the connection is closed.
    TruncatedBody,
    /// `200` with `content-type: text/html` and an HTML maintenance page.
    HtmlBody,
    /// On a list answer: a v1 envelope is replaced by its bare `results` array and a v2
    /// bare array by a `{"totalCount", "results"}` object (without `x-total-count`).
    WrongEnvelope,
    /// On a list answer, a field with the wrong JSON type:
    /// `/api/systemusers`: every user's `email` is a number;
    /// `/api/organizations`, `/api/applications`: `results` is a string (the JSON text);
    /// v2 lists: every item's `id` (`/members`: `to.id`) is a number.
    WrongFieldType,
}

impl Fault {
    /// True for faults that replace the answer before the API is consulted.
    pub(crate) fn replaces_answer(&self) -> bool {
        matches!(
            self,
            Fault::TooManyRequests { .. }
                | Fault::ServerError(_)
                | Fault::Forbidden
                | Fault::DropConnection
                | Fault::HtmlBody
        )
    }
}

/// When and where a [`Fault`] fires.
///
/// Each rule counts its own matching requests. When several rules fire on the same
/// request, their [`Fault::Latency`] delays add up and the first other fault (in rule
/// order) is applied; a rule shadowed that way does not use up its `limit`. A body
/// corruption that finds nothing to corrupt (the API answered an error, not a list)
/// still counts as fired but is not listed in [`crate::RecordedRequest::faults`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// The fault to inject.
    pub fault: Fault,
    /// Only requests whose path (without query) starts with this count; `None`: all.
    pub path_prefix: Option<String>,
    /// Fire on the nth, 2nth, 3nth, ... matching request; 0 and 1 mean every one.
    pub every: u32,
    /// Fire at most this many times; `None`: no cap.
    pub limit: Option<u32>,
}

impl FaultRule {
    /// A rule firing on every request to every path, without a cap.
    pub fn new(fault: Fault) -> Self {
        FaultRule {
            fault,
            path_prefix: None,
            every: 1,
            limit: None,
        }
    }

    /// Restricts the rule to paths starting with `prefix` (e.g. `/api/v2/usergroups`).
    pub fn with_path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = Some(prefix.into());
        self
    }

    /// Fires on every `n`th matching request only.
    pub fn with_every(mut self, n: u32) -> Self {
        self.every = n;
        self
    }

    /// Fires at most `n` times.
    pub fn with_limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }
}

/// What the fault rules decided for one request.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    /// Sum of the [`Fault::Latency`] delays that fired.
    pub(crate) latency: Duration,
    /// The first non-latency fault that fired.
    pub(crate) fault: Option<Fault>,
    /// Every fault that fired, in rule order (for the request log).
    pub(crate) fired: Vec<Fault>,
}

/// The active rules and their counters.
#[derive(Debug, Default)]
pub(crate) struct FaultSet {
    rules: Vec<RuleState>,
}

#[derive(Debug)]
struct RuleState {
    rule: FaultRule,
    /// Requests that matched the path prefix so far.
    matched: u64,
    /// Times the rule was applied so far.
    fired: u32,
}

impl FaultSet {
    /// A set with fresh counters.
    pub(crate) fn new(rules: Vec<FaultRule>) -> Self {
        FaultSet {
            rules: rules
                .into_iter()
                .map(|rule| RuleState {
                    rule,
                    matched: 0,
                    fired: 0,
                })
                .collect(),
        }
    }

    /// Counts one request to `path` against every rule and says which faults fire.
    pub(crate) fn decide(&mut self, path: &str) -> Decision {
        let mut decision = Decision::default();
        for state in &mut self.rules {
            let rule = &state.rule;
            if rule
                .path_prefix
                .as_deref()
                .is_some_and(|p| !path.starts_with(p))
            {
                continue;
            }
            state.matched += 1;
            let every = u64::from(rule.every.max(1));
            let capped = rule.limit.is_some_and(|limit| state.fired >= limit);
            if state.matched % every != 0 || capped {
                continue;
            }
            match &rule.fault {
                Fault::Latency(delay) => decision.latency += *delay,
                _ if decision.fault.is_some() => continue,
                other => decision.fault = Some(other.clone()),
            }
            state.fired += 1;
            decision.fired.push(rule.fault.clone());
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_and_prefix() {
        let mut set = FaultSet::new(vec![
            FaultRule::new(Fault::Forbidden)
                .with_path_prefix("/api/v2")
                .with_every(2)
                .with_limit(2),
        ]);
        let fired: Vec<bool> = (0..8)
            .map(|_| set.decide("/api/v2/usergroups").fault.is_some())
            .collect();
        assert_eq!(
            fired,
            [false, true, false, true, false, false, false, false]
        );
        assert!(set.decide("/api/systemusers").fault.is_none());
    }

    #[test]
    fn latency_adds_and_first_fault_wins() {
        let ms = Duration::from_millis;
        let mut set = FaultSet::new(vec![
            FaultRule::new(Fault::Latency(ms(5))),
            FaultRule::new(Fault::ServerError(503)).with_limit(1),
            FaultRule::new(Fault::HtmlBody).with_limit(1),
            FaultRule::new(Fault::Latency(ms(7))),
        ]);
        let first = set.decide("/x");
        assert_eq!(first.latency, ms(12));
        assert_eq!(first.fault, Some(Fault::ServerError(503)));
        // The shadowed HtmlBody rule kept its single shot for the next request.
        assert_eq!(set.decide("/x").fault, Some(Fault::HtmlBody));
        assert_eq!(set.decide("/x").fault, None);
    }
}
