//! What the fuzz targets check, on raw fuzz input: each function panics when
//! an invariant does not hold. The fuzz targets call them under libFuzzer;
//! the hostile suite (`tests/hostile/corpus.rs`) replays every committed
//! corpus file through them, so a crash once found stays fixed.
//!
//! Input formats (the seeds under `fuzz/corpus/<target>/` follow them):
//! - `parse_args`: any bytes. The whole input is one argument for every
//!   single-argument parser; split at `\n` it is `capacity refill period
//!   [cost]`.
//! - `decode`: byte 0 picks the encver (`% 4`: 0..=3); then 9-byte records,
//!   one value each: a kind byte (`% 4`: 0 unsigned, 1 signed, 2 above
//!   `u64::MAX`, 3 below `i64::MIN`) and 8 little-endian bytes (a short last
//!   record is zero-padded).
//! - `unpack_state`: any bytes, as the packed state argument of
//!   `CHARON.SETSTATE key state`.
//! - `core`: byte 0 picks the band count; then numbers (a scale byte and 8
//!   little-endian bytes) and operations (one byte each, then their numbers);
//!   see `core`.

use charon::bucket::{self, BandFields, Bucket, Change, StateError, MAX_BANDS};
use charon::cell;
use charon::formats::packed::{pack, unpack};
use charon::formats::rdb::{self as encoding, DecodeError, Values, ENCVER};
use charon::parse::{self, ArgError, WaitKeyword};
use charon::token_bucket::{self, Band, Decision, Level, Limit, MAX_PARAM};

// ------------------------------------------------------------------ parsing

/// Redis's `string2ll` (util.c), transcribed rule for rule: the reference
/// `parse::redis_i64` must agree with.
pub fn string2ll(s: &[u8]) -> Option<i64> {
    // LONG_STR_SIZE: longer strings are refused before any digit is read.
    const LONG_STR_SIZE: usize = 21;
    let slen = s.len();
    if slen == 0 || slen >= LONG_STR_SIZE {
        return None;
    }
    if slen == 1 && s[0] == b'0' {
        return Some(0);
    }
    let mut p = 0;
    let negative = s[0] == b'-';
    if negative {
        p += 1;
        if p == slen {
            return None;
        }
    }
    let mut v: u64 = match s[p] {
        b'1'..=b'9' => u64::from(s[p] - b'0'),
        _ => return None,
    };
    p += 1;
    while p < slen && s[p].is_ascii_digit() {
        if v > u64::MAX / 10 {
            return None;
        }
        v *= 10;
        let digit = u64::from(s[p] - b'0');
        if v > u64::MAX - digit {
            return None;
        }
        v += digit;
        p += 1;
    }
    if p < slen {
        return None;
    }
    if negative {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        // v == 2^63 becomes i64::MIN.
        Some((v as i64).wrapping_neg())
    } else {
        if v > i64::MAX as u64 {
            return None;
        }
        Some(v as i64)
    }
}

fn positive_reference(s: &[u8]) -> Option<u64> {
    string2ll(s).filter(|&n| n >= 1).map(|n| n as u64)
}

fn non_negative_reference(s: &[u8]) -> Option<u64> {
    string2ll(s).filter(|&n| n >= 0).map(|n| n as u64)
}

/// The period rules of the contract, stated another way: an optional unit
/// (`ms`, `s`, `m`, `h`, `d`, any case) after a positive Redis integer.
fn period_reference(s: &[u8]) -> Result<u64, ArgError> {
    const UNITS: [(&[u8], u64); 6] = [
        (b"ms", 1),
        (b"s", 1_000),
        (b"m", 60_000),
        (b"h", 3_600_000),
        (b"d", 86_400_000),
        (b"", 1),
    ];
    for (unit, ms) in UNITS {
        let Some(split) = s.len().checked_sub(unit.len()) else {
            continue;
        };
        let (number, suffix) = s.split_at(split);
        if !suffix.eq_ignore_ascii_case(unit) {
            continue;
        }
        if let Some(count) = positive_reference(number) {
            return count
                .checked_mul(ms)
                .filter(|&total| total <= MAX_PARAM)
                .ok_or(ArgError::PeriodRange);
        }
    }
    Err(ArgError::Period)
}

fn limit_reference(capacity: &[u8], refill: &[u8], period: &[u8]) -> Result<Limit, ArgError> {
    let capacity = positive_reference(capacity).ok_or(ArgError::Capacity)?;
    let refill = positive_reference(refill).ok_or(ArgError::Refill)?;
    let period = period_reference(period)?;
    // Refused when refilling from empty would take more than 2^62 ms.
    if u128::from(capacity) * u128::from(period) > u128::from(refill) << 62 {
        return Err(ArgError::LimitRange);
    }
    Ok(Limit::new(capacity, refill, period).expect("every parsed limit is in range"))
}

fn assert_reply_error(error: ArgError) {
    let text = error.to_string();
    assert!(text.starts_with("ERR "), "{text:?}");
    assert!(!text.contains(['\r', '\n']), "{text:?} would break RESP");
}

/// Every argument parser on `data`: never a panic, the same answer as the
/// reference, integers in canonical form.
pub fn parse_args(data: &[u8]) {
    let parsed = parse::redis_i64(data);
    assert_eq!(parsed, string2ll(data), "redis_i64({data:?})");
    if let Some(n) = parsed {
        // Redis integers have exactly one spelling.
        assert_eq!(n.to_string().as_bytes(), data);
    }
    assert_eq!(parse::positive(data), positive_reference(data));
    assert_eq!(parse::non_negative(data), non_negative_reference(data));

    let period = parse::period_ms(data);
    assert_eq!(period, period_reference(data), "period_ms({data:?})");
    match period {
        Ok(ms) => assert!((1..=MAX_PARAM).contains(&ms)),
        Err(error) => assert_reply_error(error),
    }

    assert_eq!(parse::cost(None), Ok(1));
    let cost = parse::cost(Some(data));
    assert_eq!(cost, non_negative_reference(data).ok_or(ArgError::Cost));
    if let Err(error) = cost {
        assert_reply_error(error);
    }

    let mut fields = data.splitn(4, |&b| b == b'\n');
    let capacity = fields.next().unwrap_or_default();
    let refill = fields.next().unwrap_or_default();
    let period = fields.next().unwrap_or_default();
    let limit = parse::limit(capacity, refill, period);
    assert_eq!(limit, limit_reference(capacity, refill, period));
    if let Err(error) = limit {
        assert_reply_error(error);
    }
    if let Some(cost) = fields.next() {
        assert_eq!(
            parse::cost(Some(cost)),
            non_negative_reference(cost).ok_or(ArgError::Cost)
        );
    }

    // The whole grammar (`LIMIT` groups, `MAXWAIT`, `TIMEOUT`), words split
    // on spaces: never a panic, a clean error, or a request that reads back
    // the same from its own canonical spelling.
    let words: Vec<&[u8]> = data.split(|&b| b == b' ').take(80).collect();
    parse_throttle(&words);
    for keyword in [
        WaitKeyword::None,
        WaitKeyword::MaxWait,
        WaitKeyword::Timeout,
    ] {
        match parse::request(words.len(), |i| words[i], keyword) {
            Err(error) => assert_reply_error(error),
            Ok(request) => {
                let limits = request.limits.as_slice();
                assert!((1..=MAX_BANDS).contains(&limits.len()));
                assert_eq!(parse::limit(words[0], words[1], words[2]), Ok(limits[0]));
                let mut canonical: Vec<String> = Vec::new();
                for (i, limit) in limits.iter().enumerate() {
                    if i > 0 {
                        canonical.push("LIMIT".into());
                    }
                    canonical.push(limit.capacity().to_string());
                    canonical.push(limit.refill().to_string());
                    canonical.push(limit.period_ms().to_string());
                    if i == 0 {
                        canonical.push(request.cost.to_string());
                    }
                }
                match (keyword, request.wait_ms) {
                    (WaitKeyword::None, None) => {}
                    (WaitKeyword::MaxWait, Some(ms)) => {
                        canonical.extend(["MAXWAIT".into(), ms.to_string()])
                    }
                    (WaitKeyword::Timeout, Some(ms)) => {
                        canonical.extend(["TIMEOUT".into(), ms.to_string()])
                    }
                    (keyword, wait) => panic!("{keyword:?} parsed a wait of {wait:?}"),
                }
                let again: Vec<&[u8]> = canonical.iter().map(|w| w.as_bytes()).collect();
                assert_eq!(
                    parse::request(again.len(), |i| again[i], keyword),
                    Ok(request)
                );
            }
        }
    }
}

/// `CL.THROTTLE`'s arguments and redis-cell's state on any words: never a
/// panic, a clean error, or exactly the limit `CHARON.RATE` parses for
/// `<max_burst + 1> <count> <period>s`; a state is a canonical decimal, and
/// converting it never yields an impossible bucket.
fn parse_throttle(words: &[&[u8]]) {
    if words.len() >= 3 {
        match cell::request(words[0], words[1], words[2], words.get(3).copied()) {
            Err(error) => assert_reply_error_text(&error.to_string()),
            Ok(throttle) => {
                let limit = throttle.limit;
                let capacity = (limit.capacity() - 1).to_string();
                assert_eq!(capacity.as_bytes(), words[0]);
                let seconds = format!("{}s", limit.period_ms() / 1000);
                let rate = parse::limit(
                    limit.capacity().to_string().as_bytes(),
                    words[1],
                    seconds.as_bytes(),
                );
                assert_eq!(rate, Ok(limit));
            }
        }
    }
    if let Some(tat) = cell::state(words[0]) {
        assert_eq!(tat.to_string().as_bytes(), words[0]);
        let limit = Limit::new(16, 30, 60_000).expect("a limit");
        for now_ns in [0, (tat / 2) as i64, i64::MAX] {
            match cell::convert(tat, now_ns, limit, now_ns / 1_000_000) {
                Ok(cell::Conversion::Holding(bucket)) => check_bucket(&bucket),
                Ok(cell::Conversion::Full) => assert!(i128::from(tat) <= i128::from(now_ns)),
                Err(error) => panic!("convert({tat}, {now_ns}): {error}"),
            }
        }
    }
}

fn assert_reply_error_text(text: &str) {
    assert!(text.starts_with("ERR "), "{text:?}");
    assert!(!text.contains(['\r', '\n']), "{text:?} would break RESP");
}

// ----------------------------------------------------------------- decoding

/// The values of a `decode` input after its encver byte.
pub fn decode_values(data: &[u8]) -> Vec<i128> {
    data.chunks(9)
        .map(|record| {
            let mut bytes = [0u8; 8];
            bytes[..record.len() - 1].copy_from_slice(&record[1..]);
            let word = u64::from_le_bytes(bytes);
            match record[0] % 4 {
                0 => i128::from(word),
                1 => i128::from(word as i64),
                2 => i128::from(word) + (1i128 << 64),
                _ => -i128::from(word) - (1i128 << 63) - 1,
            }
        })
        .collect()
}

/// Decoding a stored value: never a panic; encvers 1 and 2 are the ones
/// there are; a value that loads re-encodes (as the newest encver) to the
/// very values it was read from, decodes again to itself, and is a valid
/// bucket.
pub fn decode(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let encver = i32::from(first % 4);
    let input = decode_values(rest);
    let mut source = Values(input.iter().copied().collect());
    let result = encoding::decode(encver, &mut source);
    match encver {
        1 | 2 => {}
        0 => assert_eq!(result, Err(DecodeError::UnknownEncoding { found: 0 })),
        found => assert_eq!(result, Err(DecodeError::NewerEncoding { found })),
    }
    let bucket = match result {
        Ok(bucket) => bucket,
        Err(error) => {
            // The load error is logged: it must be one line.
            assert!(!error.to_string().contains(['\r', '\n']));
            return;
        }
    };
    let consumed = input.len() - source.0.len();
    let mut encoded = Values::default();
    encoding::encode(&bucket, &mut encoded);
    assert!(
        encoded.0.iter().eq(input[..consumed].iter()),
        "re-encoding differs from the input: {:?} vs {:?}",
        encoded.0,
        &input[..consumed]
    );
    assert_eq!(encoding::decode(ENCVER, &mut encoded), Ok(bucket.clone()));
    assert!(encoded.0.is_empty());
    check_bucket(&bucket);
}

/// A bucket that exists (loaded, restored, set) is valid, survives the state
/// command, and every command on it at any time keeps it valid.
pub fn check_bucket(bucket: &Bucket) {
    let bands = bucket.bands();
    assert!((1..=MAX_BANDS).contains(&bands.len()));
    assert!(bucket.updated_at_ms() >= 0);
    for band in &bands {
        check_band(band);
    }

    // What replication and AOF rewrite emit rebuilds the same bucket, and
    // every argument is one that CHARON.SETSTATE parses.
    let args = charon::formats::readable::state_args(bucket);
    // Only a band's tokens go below zero (reservations).
    for (i, &arg) in args.iter().enumerate() {
        assert!(arg >= 0 || (i >= 2 && (i - 2) % 5 == 3), "{args:?}");
    }
    assert_eq!(args[1], bands.len() as i64);
    let fields: Vec<BandFields> = args[2..]
        .chunks(5)
        .map(|f| BandFields {
            capacity: f[0] as u64,
            refill: f[1] as u64,
            period_ms: f[2] as u64,
            tokens: f[3],
            fraction: f[4] as u64,
        })
        .collect();
    assert_eq!(Bucket::from_fields(args[0], &fields).as_ref(), Ok(bucket));

    let updated = bucket.updated_at_ms();
    let full_at = bucket.full_at_ms();
    assert!(full_at >= updated);
    let limits: Vec<Limit> = bands.iter().map(Band::limit).collect();
    for now in [
        0,
        updated.saturating_sub(1),
        updated,
        updated.saturating_add(1),
        full_at.saturating_sub(1),
        full_at,
        i64::MAX,
    ] {
        let at = bucket.bands_at(now);
        if now <= updated {
            assert_eq!(at, bands, "a clock behind the bucket created tokens");
        }
        for band in &at {
            check_band(band);
        }
        for cost in [0, 1, limits[0].capacity(), limits[0].capacity() + 1] {
            let decision = bucket::decide_rate(Some(bucket), &limits, cost, now);
            check_decision(&at, cost, &decision);
            assert_eq!(bucket.peek(cost, now), decision.verdict);
            let mut copy = bucket.clone();
            let (verdict, change) = bucket::rate(Some(&mut copy), &limits, cost, now);
            assert_eq!(verdict, decision.verdict);
            match decision.taken {
                Some(taken) => {
                    assert_eq!(change, Change::Updated);
                    assert_eq!(copy.bands(), &taken[..]);
                }
                None => {
                    assert_eq!(change, Change::None);
                    assert_eq!(&copy, bucket);
                }
            }
        }
    }
    if full_at < i64::MAX {
        assert!(
            bucket.bands_at(full_at).iter().all(Band::is_full),
            "not full when the key expires"
        );
    }
    if full_at > updated {
        assert!(
            !bucket.bands_at(full_at - 1).iter().all(Band::is_full),
            "full before the key expires"
        );
    }
}

// ------------------------------------------------------------ packed state

/// One unsigned LEB128 varint of at most 10 bytes and at most `u64::MAX`,
/// read the plain way.
fn varint_reference(bytes: &mut &[u8]) -> Option<u64> {
    let mut value: u128 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= u128::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return u64::try_from(value).ok();
        }
    }
    None
}

/// The packed state format (`CHARON.SETSTATE key state`), read the plain
/// way: format byte 1, then varints `updated_at band_count [5 fields]...`,
/// nothing after.
fn unpack_reference(data: &[u8]) -> Result<Bucket, StateError> {
    // Format 1 carries tokens unsigned, format 2 zigzag-encoded.
    let (signed, mut rest) = match data.split_first() {
        Some((&1, rest)) => (false, rest),
        Some((&2, rest)) => (true, rest),
        _ => return Err(StateError::Packed),
    };
    let updated_at = varint_reference(&mut rest).ok_or(StateError::Packed)?;
    let updated_at = i64::try_from(updated_at).map_err(|_| StateError::Time)?;
    let count = varint_reference(&mut rest).ok_or(StateError::Packed)?;
    if !(1..=MAX_BANDS as u64).contains(&count) {
        return Err(StateError::BandCount);
    }
    let mut fields = Vec::new();
    for _ in 0..count {
        let mut field = [0u64; 5];
        for value in &mut field {
            *value = varint_reference(&mut rest).ok_or(StateError::Packed)?;
        }
        let [capacity, refill, period_ms, tokens, fraction] = field;
        let tokens = if signed {
            // Zigzag: even values are >= 0, odd ones negative.
            let half = (tokens >> 1) as i64;
            if tokens & 1 == 0 {
                half
            } else {
                -half - 1
            }
        } else {
            i64::try_from(tokens).unwrap_or(i64::MIN)
        };
        fields.push(BandFields {
            capacity,
            refill,
            period_ms,
            tokens,
            fraction,
        });
    }
    if !rest.is_empty() {
        return Err(StateError::Packed);
    }
    Bucket::from_fields(updated_at, &fields)
}

/// The packed state argument of `CHARON.SETSTATE` (what replicas and AOF
/// replays receive): never a panic, the same answer as the reference, and a
/// state that is accepted packs back to one that unpacks to it.
pub fn unpack_state(data: &[u8]) {
    let unpacked = unpack(data);
    assert_eq!(unpacked, unpack_reference(data), "unpack({data:?})");
    match unpacked {
        Ok(bucket) => {
            let packed = pack(&bucket);
            assert_eq!(unpack(packed.as_bytes()).as_ref(), Ok(&bucket));
            assert!(packed.as_bytes().len() <= data.len());
            check_bucket(&bucket);
        }
        Err(error) => {
            // Becomes "ERR invalid bucket state: <error>": one line.
            assert!(!error.to_string().contains(['\r', '\n']));
        }
    }
}

// --------------------------------------------------------------------- core

/// A band's level is one the band can hold.
pub fn check_band(band: &Band) {
    let limit = band.limit();
    let level = band.level();
    assert!(
        Band::new(limit, level).is_some(),
        "impossible band {band:?}"
    );
    assert!(i128::from(level.tokens) <= i128::from(limit.capacity()));
    assert!(level.tokens >= token_bucket::MIN_TOKENS);
    assert!(level.fraction < limit.period_ms());
    assert_eq!(
        band.is_full(),
        i128::from(level.tokens) == i128::from(limit.capacity())
    );
}

/// A band's level in units of `1 / period_ms` token (below zero while
/// reserved).
fn units(band: &Band) -> i128 {
    let level = band.level();
    i128::from(level.tokens) * i128::from(band.limit().period_ms()) + i128::from(level.fraction)
}

fn all_allow(bands: &[Band], cost: u64) -> bool {
    bands.iter().all(|band| band.allows(cost))
}

/// A decision of `cost` on `before` (brought to now, under the call's
/// limits) says what the bands say, and takes exactly `cost` or nothing.
pub fn check_decision(before: &[Band], cost: u64, decision: &Decision) {
    let allowed = all_allow(before, cost);
    let verdict = decision.verdict;
    assert_eq!(verdict.limited, !allowed);
    match &decision.taken {
        Some(after) => {
            assert!(allowed && cost > 0);
            assert_eq!(after.len(), before.len());
            for (old, new) in before.iter().zip(after) {
                // Allowed never takes a token that is not there.
                assert!(i128::from(old.tokens()) >= i128::from(cost));
                assert_eq!(
                    i128::from(new.tokens()),
                    i128::from(old.tokens()) - i128::from(cost)
                );
                assert_eq!(new.level().fraction, old.level().fraction);
                assert_eq!(new.limit(), old.limit());
                check_band(new);
            }
        }
        None => assert!(!allowed || cost == 0),
    }
    let bands = decision.taken.as_deref().unwrap_or(before);
    // Every field from one binding band: allowed, the first with the fewest
    // tokens left; limited, the first that can never hold `cost`, else the
    // first that waits longest.
    let binding = if allowed {
        let fewest = bands.iter().map(Band::tokens).min().expect("one band");
        bands.iter().position(|b| b.tokens() == fewest)
    } else {
        bands
            .iter()
            .position(|b| b.wait_for(cost).is_none())
            .or_else(|| {
                let longest = bands.iter().filter_map(|b| b.wait_for(cost)).max();
                bands.iter().position(|b| b.wait_for(cost) == longest)
            })
    }
    .expect("one band");
    let band = bands[binding];
    assert_eq!(verdict.remaining, band.remaining());
    assert_eq!(verdict.limit, band.limit().capacity());

    let never = bands.iter().any(|b| cost > b.limit().capacity());
    match verdict.retry_after_ms {
        None => assert!(allowed || never),
        Some(wait) => {
            assert!(!allowed && !never);
            assert!(wait >= 1);
            if wait < MAX_PARAM {
                let then: Vec<Band> = bands.iter().map(|b| b.refilled(wait)).collect();
                assert!(all_allow(&then, cost), "still limited after retry-after");
            }
            let sooner: Vec<Band> = bands.iter().map(|b| b.refilled(wait - 1)).collect();
            assert!(!all_allow(&sooner, cost), "retry-after not the earliest");
        }
    }

    let reset = verdict.reset_after_ms;
    if reset < MAX_PARAM {
        assert!(band.refilled(reset).is_full());
    }
    if reset == 0 {
        assert!(band.is_full());
    } else {
        assert!(!band.refilled(reset - 1).is_full());
    }
}

/// Reads fuzz input as bytes and numbers; past the end every read is 0 or
/// `None`.
pub struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader(data)
    }

    pub fn byte(&mut self) -> Option<u8> {
        let (&byte, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(byte)
    }

    fn word(&mut self) -> u64 {
        let n = self.0.len().min(8);
        let mut bytes = [0u8; 8];
        bytes[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        u64::from_le_bytes(bytes)
    }

    /// A number at a scale the first byte picks (small values are the
    /// interesting ones, huge ones the dangerous ones).
    pub fn number(&mut self) -> u64 {
        let scale = self.byte().unwrap_or(0);
        let word = self.word();
        match scale % 5 {
            0 => word % 8,
            1 => word % 1_000,
            2 => word % 1_000_000,
            3 => word % (1 << 40),
            _ => word,
        }
    }

    /// A limit: out-of-range parameters are refused, then clamped.
    pub fn limit(&mut self) -> Limit {
        let (capacity, refill, period) = (self.number(), self.number(), self.number());
        let in_range = |v: u64| (1..=MAX_PARAM).contains(&v);
        let limit = Limit::new(capacity, refill, period);
        assert_eq!(
            limit.is_some(),
            in_range(capacity) && in_range(refill) && in_range(period)
        );
        let clamp = |v: u64| v.clamp(1, MAX_PARAM);
        limit.unwrap_or_else(|| {
            Limit::new(clamp(capacity), clamp(refill), clamp(period)).expect("clamped")
        })
    }
}

fn limits(reader: &mut Reader) -> Vec<Limit> {
    let count = usize::from(reader.byte().unwrap_or(0) % 5) + 1;
    (0..count).map(|_| reader.limit()).collect()
}

/// Algebra of one band: refill is continuous and exact, a change of limits
/// or a refund never creates tokens beyond what it should.
fn check_band_algebra(band: &Band, reader: &mut Reader) {
    let (a, b) = (reader.number(), reader.number());
    let limit = reader.limit();
    let tokens = reader.number();

    let later = band.refilled(a);
    check_band(&later);
    assert!(units(&later) >= units(band));
    if let Some(sum) = a.checked_add(b) {
        assert_eq!(
            later.refilled(b),
            band.refilled(sum),
            "refill is not additive"
        );
    }
    if a <= b {
        assert!(units(&band.refilled(a)) <= units(&band.refilled(b)));
    }

    let moved = band.with_limit(limit);
    check_band(&moved);
    assert_eq!(moved.limit(), limit);
    assert_eq!(
        i128::from(moved.tokens()),
        i128::from(band.tokens()).min(i128::from(limit.capacity()))
    );
    let back = moved.with_limit(band.limit());
    assert!(
        units(&back) <= units(band),
        "a change of limits created tokens"
    );

    let refunded = band.refunded(tokens);
    check_band(&refunded);
    let want = i128::from(band.tokens()) + i128::from(tokens);
    if want >= i128::from(band.limit().capacity()) {
        assert!(refunded.is_full());
    } else {
        assert_eq!(
            refunded.level(),
            Level {
                // Below the capacity, so it fits.
                tokens: want as i64,
                fraction: band.level().fraction
            }
        );
    }
}

/// A random life of one bucket, driven the way the commands drive it, with
/// the clock jumping forwards and backwards: after every step each band is
/// valid, every decision is exact, and a clock step back creates nothing.
///
/// Operations (one byte, `% 7`): 0 clock forward, 1 clock back, 2 RATE
/// with a cost, 3 REFUND, 4 new limits for later RATEs, 5 PEEK with a cost,
/// 6 band algebra on the stored bands.
pub fn core(data: &[u8]) {
    let mut reader = Reader::new(data);
    let mut call_limits = limits(&mut reader);
    let mut now = (reader.number() % (1 << 50)) as i64;
    let mut stored: Option<Bucket> = None;
    let mut steps = 0;
    while let Some(op) = reader.byte() {
        steps += 1;
        if steps > 4096 {
            break;
        }
        match op % 8 {
            0 => now = now.saturating_add_unsigned(reader.number()),
            1 => now = now.saturating_sub_unsigned(reader.number()),
            2 => {
                let cost = reader.number();
                let before = match &stored {
                    Some(bucket) => token_bucket::under_limits(&bucket.bands_at(now), &call_limits),
                    None => call_limits.iter().copied().map(Band::full).collect(),
                };
                // The pure decision, checked against the bands...
                let pure = bucket::decide_rate(stored.as_ref(), &call_limits, cost, now);
                check_decision(&before, cost, &pure);
                // ...and what the command runs (in place) agrees with it.
                let was = stored.clone();
                let (verdict, change) = bucket::rate(stored.as_mut(), &call_limits, cost, now);
                assert_eq!(verdict, pure.verdict);
                match (change, pure.taken) {
                    (Change::None, None) => {
                        assert_eq!(stored, was, "a call that took nothing changed the bucket")
                    }
                    (Change::Updated, Some(taken)) => {
                        let (bucket, was) =
                            (stored.as_ref().expect("updated"), was.expect("was stored"));
                        assert_eq!(bucket.bands(), &taken[..]);
                        assert_eq!(bucket.updated_at_ms(), was.updated_at_ms().max(now));
                    }
                    (Change::Created(bucket), Some(taken)) => {
                        assert!(was.is_none(), "created over a stored bucket");
                        assert_eq!(bucket.bands(), &taken[..]);
                        assert_eq!(bucket.updated_at_ms(), now.max(0));
                        stored = Some(bucket);
                    }
                    (change, taken) => {
                        panic!("rate changed {change:?}, the decision took {taken:?}")
                    }
                }
            }
            3 => {
                let tokens = reader.number().clamp(1, MAX_PARAM);
                if let Some(bucket) = &mut stored {
                    let before = bucket.bands_at(now);
                    let want: Vec<Band> = before.iter().map(|b| b.refunded(tokens)).collect();
                    for (old, new) in before.iter().zip(&want) {
                        assert!(new.tokens() >= old.tokens());
                    }
                    let was = bucket.updated_at_ms();
                    let remaining = bucket.refund(tokens, now);
                    assert_eq!(bucket.bands(), &want[..]);
                    assert_eq!(bucket.updated_at_ms(), was.max(now));
                    assert_eq!(Some(remaining), want.iter().map(Band::remaining).min());
                    if bucket.is_full() {
                        // The command deletes a full bucket.
                        stored = None;
                    }
                }
            }
            4 => call_limits = limits(&mut reader),
            5 => {
                let cost = reader.number();
                if let Some(bucket) = &stored {
                    let bands = bucket.bands_at(now);
                    let pure = token_bucket::decide(&bands, cost);
                    check_decision(&bands, cost, &pure);
                    assert_eq!(bucket.peek(cost, now), pure.verdict);
                }
            }
            6 => {
                // A reservation: with no wait allowed it is a decision; a
                // grant never waits longer than allowed; a refusal or a
                // reservation too deep to hold changes nothing.
                let cost = reader.number();
                let max_wait = reader.number() % (1 << 24);
                let was = stored.clone();
                match bucket::reserve(stored.as_mut(), &call_limits, cost, max_wait, now) {
                    Err(bucket::TooDeep) => assert_eq!(stored, was),
                    Ok((verdict, change)) => {
                        if max_wait == 0 {
                            let mut copy = was.clone();
                            let (by_rate, _) = bucket::rate(copy.as_mut(), &call_limits, cost, now);
                            assert_eq!(verdict, by_rate);
                        }
                        if !verdict.limited {
                            assert!(verdict.retry_after_ms.unwrap_or(0) <= max_wait);
                        }
                        match change {
                            Change::None => assert_eq!(stored, was),
                            Change::Created(bucket) => stored = Some(bucket),
                            Change::Updated => assert!(!verdict.limited && cost > 0),
                        }
                        if let Some(bucket) = &stored {
                            check_bucket(bucket);
                        }
                    }
                }
            }
            _ => {
                if let Some(bucket) = &stored {
                    for band in bucket.bands() {
                        check_band_algebra(&band, &mut reader);
                    }
                }
            }
        }
        if let Some(bucket) = &stored {
            // The clock behind the bucket: nothing is created.
            if now <= bucket.updated_at_ms() {
                assert_eq!(bucket.bands_at(now), bucket.bands());
            }
            for band in bucket.bands() {
                check_band(&band);
            }
        }
    }
    if let Some(bucket) = &stored {
        check_bucket(bucket);
    }
}
