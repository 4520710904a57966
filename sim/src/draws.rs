//! Random draws that do not depend on the rules.
//!
//! Every draw about an application is addressed by (seed, application, kind, k): the k-th
//! draw of that kind for that application. Each address is its own ChaCha8 stream and word
//! position, so the baseline and the candidate see the same draw for the same question,
//! however differently the two runs unfold (which questions get asked, in which order).

use kezek_engine::AppNo;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The kind of question a draw answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Takes the priority place offered (k: offers made so far).
    TakePriority = 1,
    /// Takes the free-access place offered (k: offers made so far).
    TakeFree = 2,
    /// Position in the rush of free access (smaller is faster); k = 0.
    Speed = 3,
    /// What happens to the k-th referral.
    Outcome = 4,
    /// When, as a fraction of the time available, for the k-th referral.
    Timing = 5,
    /// Enrolled after an extension of the k-th referral.
    AfterExtend = 6,
    /// When, after the extension of the k-th referral.
    TimingAfterExtend = 7,
    /// When the application is withdrawn; k = 0.
    Withdraw = 8,
}

/// Streams not tied to an application.
pub const STREAM_ARRIVALS: u64 = 0xA551_7A15;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn stream(app: AppNo, kind: Kind) -> u64 {
    let id = (u64::from(app.year) << 48) ^ (u64::from(app.seq) << 16) ^ u64::from(app.n);
    splitmix(splitmix(id) ^ (kind as u64).wrapping_mul(0x1000_0000_01B3))
}

/// A uniform number in [0, 1): the k-th draw of `kind` for `app`.
pub fn uniform(seed: u64, app: AppNo, kind: Kind, k: u32) -> f64 {
    to_unit(raw(seed, app, kind, k))
}

/// The raw 64 bits of the k-th draw of `kind` for `app`.
pub fn raw(seed: u64, app: AppNo, kind: Kind, k: u32) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream(app, kind));
    rng.set_word_pos(u128::from(k) * 2);
    rng.next_u64()
}

pub fn to_unit(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A sequential generator for draws not tied to an application (the arrivals).
pub fn sequence(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_addressed_not_sequential() {
        let a = AppNo {
            year: 2026,
            seq: 7,
            n: 1,
        };
        let b = AppNo {
            year: 2026,
            seq: 8,
            n: 1,
        };
        assert_eq!(raw(1, a, Kind::Outcome, 3), raw(1, a, Kind::Outcome, 3));
        assert_ne!(raw(1, a, Kind::Outcome, 3), raw(1, a, Kind::Outcome, 4));
        assert_ne!(raw(1, a, Kind::Outcome, 3), raw(1, a, Kind::Timing, 3));
        assert_ne!(raw(1, a, Kind::Outcome, 3), raw(1, b, Kind::Outcome, 3));
        assert_ne!(raw(1, a, Kind::Outcome, 3), raw(2, a, Kind::Outcome, 3));
        let u = uniform(5, a, Kind::Speed, 0);
        assert!((0.0..1.0).contains(&u));
    }
}
