//! Per-connection limits on what a Camus client may send: a size cap per message and two
//! token buckets (messages and bytes per second, with bursts).
//!
//! The original server has none; since one frame sent to `room` is copied to every member,
//! a client without limits can make the server send N times what it receives.

use std::time::Instant;

/// The largest text frame accepted, in bytes. An SDP offer with many candidates stays far
/// below it; larger frames are dropped with an `error` reply.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Messages a client may send in a burst.
pub const BURST_MESSAGES: u64 = 200;
/// Messages per second a client may send in the long run.
pub const MESSAGES_PER_SECOND: u64 = 50;
/// Bytes a client may send in a burst.
pub const BURST_BYTES: u64 = 1024 * 1024;
/// Bytes per second a client may send in the long run.
pub const BYTES_PER_SECOND: u64 = 256 * 1024;

/// Nano-units per unit: bucket levels are kept in billionths so refills never round away.
const SCALE: u128 = 1_000_000_000;

/// A token bucket: holds up to `capacity` units and gains `per_second` units per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: u128,
    per_second: u128,
    /// Current level, in nano-units.
    level: u128,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(now: Instant, capacity: u64, per_second: u64) -> TokenBucket {
        TokenBucket {
            capacity: u128::from(capacity) * SCALE,
            per_second: u128::from(per_second),
            level: u128::from(capacity) * SCALE,
            updated: now,
        }
    }

    /// Takes `amount` units if the bucket holds them.
    pub fn try_take(&mut self, now: Instant, amount: u64) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_nanos();
        self.updated = self.updated.max(now);
        self.level = self
            .level
            .saturating_add(elapsed.saturating_mul(self.per_second))
            .min(self.capacity);
        let wanted = u128::from(amount) * SCALE;
        if self.level >= wanted {
            self.level -= wanted;
            true
        } else {
            false
        }
    }
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Larger than [`MAX_MESSAGE_BYTES`].
    TooLarge,
    /// Over the message or byte rate.
    RateLimited,
}

/// The limits of one connection.
#[derive(Debug, Clone)]
pub struct Limiter {
    messages: TokenBucket,
    bytes: TokenBucket,
}

impl Limiter {
    /// Fresh limits (full buckets).
    pub fn new(now: Instant) -> Limiter {
        Limiter {
            messages: TokenBucket::new(now, BURST_MESSAGES, MESSAGES_PER_SECOND),
            bytes: TokenBucket::new(now, BURST_BYTES, BYTES_PER_SECOND),
        }
    }

    /// Accounts for a message of `len` bytes; `Err` when it must be dropped.
    pub fn check(&mut self, now: Instant, len: usize) -> Result<(), Refusal> {
        if len > MAX_MESSAGE_BYTES {
            return Err(Refusal::TooLarge);
        }
        // Both buckets are always charged, so a refused message costs too.
        let message_ok = self.messages.try_take(now, 1);
        let bytes_ok = self.bytes.try_take(now, len as u64);
        if message_ok && bytes_ok {
            Ok(())
        } else {
            Err(Refusal::RateLimited)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_bursts_then_refills_without_rounding_loss() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(t0, 3, 2);
        assert!((0..3).all(|_| bucket.try_take(t0, 1)));
        assert!(!bucket.try_take(t0, 1));
        // 2 per second: one unit every 500 ms, even when asked every 100 ms.
        let mut taken = 0;
        for step in 1..=10 {
            if bucket.try_take(t0 + Duration::from_millis(100 * step), 1) {
                taken += 1;
            }
        }
        assert_eq!(taken, 2);
        // Never above capacity.
        let later = t0 + Duration::from_secs(3600);
        assert!(bucket.try_take(later, 3));
        assert!(!bucket.try_take(later, 1));
    }

    #[test]
    fn limiter_refuses_large_and_fast_senders() {
        let t0 = Instant::now();
        let mut limiter = Limiter::new(t0);
        assert_eq!(
            limiter.check(t0, MAX_MESSAGE_BYTES + 1),
            Err(Refusal::TooLarge)
        );
        assert_eq!(limiter.check(t0, MAX_MESSAGE_BYTES), Ok(()));
        let mut accepted = 1;
        while limiter.check(t0, 10).is_ok() {
            accepted += 1;
        }
        assert_eq!(accepted, BURST_MESSAGES);
        assert_eq!(limiter.check(t0, 10), Err(Refusal::RateLimited));
        let next_second = t0 + Duration::from_secs(1);
        for _ in 0..MESSAGES_PER_SECOND {
            assert_eq!(limiter.check(next_second, 10), Ok(()));
        }
        assert_eq!(limiter.check(next_second, 10), Err(Refusal::RateLimited));

        let mut bytes = Limiter::new(t0);
        let per_burst = BURST_BYTES as usize / MAX_MESSAGE_BYTES;
        for _ in 0..per_burst {
            assert_eq!(bytes.check(t0, MAX_MESSAGE_BYTES), Ok(()));
        }
        assert_eq!(
            bytes.check(t0, MAX_MESSAGE_BYTES),
            Err(Refusal::RateLimited)
        );
    }
}
