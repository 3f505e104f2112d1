//! An injectable clock, so consent periods, review dates and hold expiries
//! can be tested at their boundary instants.

use std::sync::Mutex;
use time::OffsetDateTime;

/// Where the domain learns the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> OffsetDateTime;
}

/// The real UTC clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that says what a test tells it to.
#[derive(Debug)]
pub struct FixedClock {
    instant: Mutex<OffsetDateTime>,
}

impl FixedClock {
    pub fn new(instant: OffsetDateTime) -> Self {
        Self {
            instant: Mutex::new(instant),
        }
    }

    pub fn set(&self, instant: OffsetDateTime) {
        *self.instant.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = instant;
    }

    pub fn advance(&self, by: time::Duration) {
        let mut guard = self.instant.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.instant.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
