//! The packed state: what the primary replicates after each decision, in
//! one argument of `CHARON.SETSTATE` (one string for the server to build
//! instead of one per field).
//!
//! Format 1: byte 0 is the format (1); then unsigned LEB128 varints:
//! `updated_at_ms band_count [capacity refill period_ms tokens fraction]...`.
//! Format 2: the same, but `tokens` is zigzag-encoded (0, -1, 1, -2, ... as
//! 0, 1, 2, 3, ...), so it carries a level below zero (reservations).
//!
//! A bucket without reservations is written in format 1, which every
//! Charon reads: a replica not yet upgraded keeps following a primary that
//! is, until the first reservation.

use std::mem::MaybeUninit;

use crate::bucket::{BandFields, Bucket, StateError, TokensWire, MAX_BANDS};

/// The newest format, which this build writes for a bucket holding
/// reservations (byte 0 of the packed state).
pub const PACKED_FORMAT: u8 = 2;

/// The format this build writes for every other bucket.
pub const PACKED_FORMAT_UNSIGNED: u8 = 1;

/// The largest packed state: a varint of a u64 takes at most 10 bytes.
pub const PACKED_MAX: usize = 1 + 10 + 1 + MAX_BANDS * 5 * 10;

/// A packed state on the stack. Only the first `len` bytes are written: the
/// buffer is sized for the largest state, and filling it all would cost
/// more than packing a typical one.
pub struct Packed {
    bytes: [MaybeUninit<u8>; PACKED_MAX],
    len: usize,
}

impl Packed {
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: the first `len` bytes were written by `put`.
        unsafe { std::slice::from_raw_parts(self.bytes.as_ptr().cast::<u8>(), self.len) }
    }

    fn put(&mut self, byte: u8) {
        self.bytes[self.len] = MaybeUninit::new(byte);
        self.len += 1;
    }

    fn push(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.put((value & 0x7f) as u8 | 0x80);
            value >>= 7;
        }
        self.put(value as u8);
    }
}

/// Reads varints from a packed state; `None` on a short, overlong or
/// overflowing value.
struct Unpacker<'a>(&'a [u8]);

impl Unpacker<'_> {
    fn next(&mut self) -> Option<u64> {
        let mut value: u64 = 0;
        for (i, &byte) in self.0.iter().enumerate().take(10) {
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return None;
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Some(value);
            }
        }
        None
    }
}

/// Packs a bucket's state.
pub fn pack(bucket: &Bucket) -> Packed {
    let mut packed = Packed {
        bytes: [MaybeUninit::uninit(); PACKED_MAX],
        len: 0,
    };
    let signed = bucket.is_reserved();
    packed.put(if signed {
        PACKED_FORMAT
    } else {
        PACKED_FORMAT_UNSIGNED
    });
    // The values of `Bucket::state_values`, written field by field: its
    // iterator chain costs twice as much, and this runs on every decision
    // (a test checks the two agree). Never negative: see there.
    packed.push(bucket.updated_at_ms().unsigned_abs());
    packed.push(bucket.band_count() as u64);
    for band in bucket.each_band() {
        let limit = band.limit();
        let level = band.level();
        packed.push(limit.capacity());
        packed.push(limit.refill());
        packed.push(limit.period_ms());
        packed.push(if signed {
            zigzag(level.tokens)
        } else {
            // Not reserved: never negative.
            level.tokens.unsigned_abs()
        });
        packed.push(level.fraction);
    }
    packed
}

/// A bucket from a packed state, validated like every other source. Every
/// format ever written keeps its decoder here.
pub fn unpack(bytes: &[u8]) -> Result<Bucket, StateError> {
    match bytes.split_first() {
        Some((&1, rest)) => unpack_fields(rest, TokensWire::Unsigned),
        Some((&2, rest)) => unpack_fields(rest, TokensWire::Signed),
        _ => Err(StateError::Packed),
    }
}

/// `value` zigzag-encoded: small magnitudes stay small, either sign.
pub fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

pub fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Formats 1 and 2 differ only in how `tokens` is carried.
fn unpack_fields(rest: &[u8], tokens_wire: TokensWire) -> Result<Bucket, StateError> {
    let mut input = Unpacker(rest);
    let updated_at = input.next().ok_or(StateError::Packed)?;
    let updated_at = i64::try_from(updated_at).map_err(|_| StateError::Time)?;
    let count = input.next().ok_or(StateError::Packed)?;
    if count == 0 || count > MAX_BANDS as u64 {
        return Err(StateError::BandCount);
    }
    let mut fields = [BandFields::default(); MAX_BANDS];
    for band in fields.iter_mut().take(count as usize) {
        *band = BandFields::read(tokens_wire, |wire| {
            let value = input.next().ok_or(StateError::Packed)?;
            Ok(match wire {
                TokensWire::Unsigned => i128::from(value),
                TokensWire::Signed => i128::from(unzigzag(value)),
            })
        })?;
    }
    if !input.0.is_empty() {
        return Err(StateError::Packed);
    }
    Bucket::from_fields(updated_at, &fields[..count as usize])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::fixtures::fields;
    use crate::token_bucket::MAX_PARAM;

    #[test]
    fn packed_state_round_trips_and_is_validated() {
        let max = MAX_PARAM;
        for bucket in [
            Bucket::from_fields(1_700_000_000_000, &[fields(10, 7, 500)]).unwrap(),
            Bucket::from_fields(0, &[fields(10, 0, 0), fields(1000, 999, 999)]).unwrap(),
            Bucket::from_fields(
                i64::MAX,
                &[BandFields {
                    capacity: max,
                    refill: max,
                    period_ms: max,
                    tokens: max as i64 - 1,
                    fraction: max - 1,
                }],
            )
            .unwrap(),
            Bucket::from_fields(5, &vec![fields(10, 5, 1); MAX_BANDS]).unwrap(),
            // Reserved: format 2, `tokens` zigzag-encoded.
            Bucket::from_fields(9, &[fields(10, -3, 1), fields(10, 4, 0)]).unwrap(),
            Bucket::from_fields(9, &[fields(10, -(max as i64), 999)]).unwrap(),
        ] {
            let packed = pack(&bucket);
            assert_eq!(unpack(packed.as_bytes()), Ok(bucket.clone()));
            // The format byte, then every state value as a LEB128 varint
            // (tokens zigzag-encoded in format 2).
            let signed = bucket.is_reserved();
            let mut expected = vec![if signed { 2 } else { 1 }];
            for (i, value) in bucket.state_values().enumerate() {
                let is_tokens = i >= 2 && (i - 2) % 5 == 3;
                let mut value = if is_tokens && signed {
                    zigzag(value)
                } else {
                    value as u64
                };
                while value >= 0x80 {
                    expected.push((value & 0x7f) as u8 | 0x80);
                    value >>= 7;
                }
                expected.push(value as u8);
            }
            assert_eq!(packed.as_bytes(), &expected[..]);
            // Every truncation and every trailing byte is refused.
            for len in 0..packed.as_bytes().len() {
                assert!(unpack(&packed.as_bytes()[..len]).is_err(), "{len}");
            }
            let mut longer = packed.as_bytes().to_vec();
            longer.push(0);
            assert_eq!(unpack(&longer), Err(StateError::Packed));
        }
        // One band of 10 tokens per second fits in an embedded Redis string.
        let typical = Bucket::from_fields(
            1_800_000_000_000,
            &[BandFields {
                capacity: 1_000_000,
                refill: 1000,
                period_ms: 3_600_000,
                tokens: 999_999,
                fraction: 3_599_999,
            }],
        )
        .unwrap();
        assert!(pack(&typical).as_bytes().len() <= 44);
        // Invalid contents are refused like any other source.
        assert_eq!(
            unpack(&[1, 0, 1, 10, 1, 100, 11, 0]),
            Err(StateError::Level)
        );
        assert_eq!(unpack(&[1, 0, 0]), Err(StateError::BandCount));
        assert_eq!(
            unpack(&[3, 0, 1, 10, 1, 100, 1, 0]),
            Err(StateError::Packed)
        );
        assert_eq!(
            unpack(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(StateError::Packed)
        );
        assert_eq!(
            unpack(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1]),
            Err(StateError::Time)
        );
        assert_eq!(unpack(&[]), Err(StateError::Packed));
        // Format 1 cannot carry a negative level; format 2 can.
        assert_eq!(
            unpack(&[1, 0, 1, 10, 1, 100, 3, 0]).map(|b| b.is_reserved()),
            Ok(false)
        );
        assert_eq!(
            unpack(&[2, 0, 1, 10, 1, 100, 3, 0]).map(|b| b.is_reserved()),
            Ok(true)
        );
        for value in [0, 1, -1, i64::MAX, i64::MIN, -i64::MAX] {
            assert_eq!(unzigzag(zigzag(value)), value);
        }
        assert_eq!((zigzag(0), zigzag(-1), zigzag(1), zigzag(-2)), (0, 1, 2, 3));
    }
}
