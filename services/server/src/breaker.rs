//! A circuit breaker per peer: after `failure_threshold` consecutive
//! failures the peer is skipped (answered `unavailable` at once) for
//! `cooldown`; then one probe call is let through (half-open), and its result
//! closes the breaker again or reopens it. A dead peer costs nothing once
//! detected.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
struct Inner {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    probe_in_flight: bool,
}

/// Whether a call may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// call the peer
    Call,
    /// call the peer as the half-open probe
    Probe,
    /// do not call: the breaker is open
    Skip,
}

#[derive(Debug)]
pub struct CircuitBreaker {
    failure_threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    pub fn new(failure_threshold: u32, cooldown: Duration) -> Self {
        debug_assert!(failure_threshold > 0);
        Self {
            failure_threshold: failure_threshold.max(1),
            cooldown,
            inner: Mutex::new(Inner {
                consecutive_failures: 0,
                open_until: None,
                probe_in_flight: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn admit(&self, now: Instant) -> Admission {
        let mut inner = self.lock();
        match inner.open_until {
            None => Admission::Call,
            Some(until) if now < until => Admission::Skip,
            Some(_) if inner.probe_in_flight => Admission::Skip,
            Some(_) => {
                inner.probe_in_flight = true;
                Admission::Probe
            }
        }
    }

    pub fn record_success(&self) {
        let mut inner = self.lock();
        inner.consecutive_failures = 0;
        inner.open_until = None;
        inner.probe_in_flight = false;
    }

    pub fn record_failure(&self, now: Instant) {
        let mut inner = self.lock();
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        inner.probe_in_flight = false;
        if inner.open_until.is_some() || inner.consecutive_failures >= self.failure_threshold {
            inner.open_until = Some(now + self.cooldown);
        }
    }

    pub fn state(&self, now: Instant) -> BreakerState {
        let inner = self.lock();
        match inner.open_until {
            None => BreakerState::Closed,
            Some(until) if now < until => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_once_and_closes_on_success() {
        let breaker = CircuitBreaker::new(3, Duration::from_secs(5));
        let start = Instant::now();
        for _ in 0..2 {
            assert_eq!(breaker.admit(start), Admission::Call);
            breaker.record_failure(start);
        }
        assert_eq!(breaker.state(start), BreakerState::Closed);
        breaker.record_failure(start);
        assert_eq!(breaker.state(start), BreakerState::Open);
        assert_eq!(breaker.admit(start + Duration::from_secs(4)), Admission::Skip);
        let later = start + Duration::from_secs(5);
        assert_eq!(breaker.state(later), BreakerState::HalfOpen);
        assert_eq!(breaker.admit(later), Admission::Probe);
        assert_eq!(breaker.admit(later), Admission::Skip, "one probe at a time");
        breaker.record_success();
        assert_eq!(breaker.state(later), BreakerState::Closed);
        assert_eq!(breaker.admit(later), Admission::Call);
    }

    #[test]
    fn a_failed_probe_reopens_for_another_cooldown() {
        let breaker = CircuitBreaker::new(1, Duration::from_secs(2));
        let start = Instant::now();
        breaker.record_failure(start);
        let later = start + Duration::from_secs(2);
        assert_eq!(breaker.admit(later), Admission::Probe);
        breaker.record_failure(later);
        assert_eq!(breaker.state(later + Duration::from_secs(1)), BreakerState::Open);
        assert_eq!(breaker.admit(later + Duration::from_secs(2)), Admission::Probe);
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = CircuitBreaker::new(2, Duration::from_secs(1));
        let now = Instant::now();
        breaker.record_failure(now);
        breaker.record_success();
        breaker.record_failure(now);
        assert_eq!(breaker.state(now), BreakerState::Closed);
    }
}
