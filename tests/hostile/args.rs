//! 10,000 random argument vectors against every CHARON.* command (several
//! bands, reservations, `ACQUIRE` with `TIMEOUT` 0 or a millisecond or two,
//! so that no vector blocks for long), and more against `CL.THROTTLE` on a
//! server loaded with `CLTHROTTLE yes`: each reply is a well-formed result or
//! an error starting with ERR or WRONGTYPE, and the server never goes down.

use crate::common::*;
use crate::support::*;
use redis::Value;

const SEED: u64 = 0x00c4_a50e_5eed_0001;
const VECTORS: usize = 10_000;
const PIPELINE: usize = 250;

const COMMANDS: [&str; 7] = [
    "CHARON.RATE",
    "CHARON.PEEK",
    "CHARON.REFUND",
    "CHARON.SETSTATE",
    "CHARON.INSPECT",
    "CHARON.RESERVE",
    "CHARON.ACQUIRE",
];

/// The vectors of the `CL.THROTTLE` test: it, and the module's own commands
/// on the same keys.
const THROTTLE_SEED: u64 = 0x00c4_a50e_5eed_0003;
const THROTTLE_VECTORS: usize = 5_000;

/// Keywords of the grammar, in varied case, and near misses.
const KEYWORDS: [&str; 12] = [
    "LIMIT", "limit", "Limit", "MAXWAIT", "maxwait", "TIMEOUT", "timeout", "LIMITS", "MAXWAI",
    "LIMIT\0", "COST", "MaxWait",
];

/// Values for `MAXWAIT`: valid (0, small, a day, the bound), and not.
const MAXWAITS: [&str; 14] = [
    "0",
    "1",
    "1000",
    "86400000",
    "4611686018427387904",
    "4611686018427387905",
    "9223372036854775807",
    "9223372036854775808",
    "-1",
    "-0",
    "1.5",
    "",
    "1h",
    "99999999999999999999999",
];

/// Values for `TIMEOUT`: only ones that cannot block for more than 2 ms
/// (0, 1, 2, or refused), so that a pipeline never waits on a turn.
const TIMEOUTS: [&str; 12] = [
    "0",
    "0",
    "0",
    "1",
    "2",
    "-1",
    "4611686018427387905",
    "9223372036854775808",
    "99999999999999999999999",
    "1.5",
    "",
    "%s%n",
];

/// Keys the vectors reuse, so that buckets exist, get changed, refunded and
/// overwritten; two hold other types.
const KEYS: [&[u8]; 10] = [
    b"k0",
    b"k1",
    b"k2",
    b"k3",
    b"string",
    b"list",
    b"%s%n%x",
    b"\x00bin\xff\r\n",
    b"",
    b"user:1",
];

const PRINTF: [&str; 6] = [
    "%s%n%x",
    "%n%n%n%n%n%n%n%n",
    "%99999999999s",
    "%p%p%p%p",
    "%.*s%ls%hhn",
    "%s\0%n",
];

const EXTREMES: [&str; 16] = [
    "0",
    "-0",
    "1",
    "-1",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "1000000000000",
    "1000000000001",
    "4294967296",
    "2147483648",
    "315360000000",
    "99999999999999999999999999999999",
];

const MALFORMED: [&[u8]; 18] = [
    b"+1",
    b" 1",
    b"1 ",
    b"01",
    b"00",
    b"1.5",
    b"1e3",
    b"0x10",
    b"1_000",
    b"\xd9\xa1",
    b"1\x00",
    b"\t1",
    b"--1",
    b"- 1",
    b"inf",
    b"nan",
    b"\xc3\x28",
    b"\xff\xfe",
];

const UNITS: [&str; 16] = [
    "", "ms", "s", "m", "h", "d", "MS", "Ms", "S", "M", "H", "D", "w", "y", "sec", "mss",
];

const PERIODS: [&str; 10] = [
    "3650d",
    "366d",
    "106751991167301d",
    "106751991167300d",
    "9223372036854775807ms",
    "9223372036854775807s",
    "0s",
    "-1s",
    "1ms",
    "2562047788015215h",
];

fn decimal(rng: &mut Rng) -> Vec<u8> {
    let n = match rng.below(4) {
        0 => rng.below(10) as i64,
        1 => rng.below(1_000) as i64 + 1,
        2 => rng.next() as i64,
        _ => -(rng.below(1_000) as i64),
    };
    n.to_string().into_bytes()
}

/// One hostile argument.
fn hostile(rng: &mut Rng) -> Vec<u8> {
    match rng.below(13) {
        0 => {
            let len = rng.index(40);
            rng.bytes(len)
        }
        1 => Vec::new(),
        2 => rng.pick(&PRINTF).as_bytes().to_vec(),
        3 | 4 => decimal(rng),
        5 => rng.pick(&EXTREMES).as_bytes().to_vec(),
        6 => {
            // A long run of digits: far beyond any integer.
            let len = 21 + rng.index(400);
            let mut digits: Vec<u8> = (0..len).map(|_| b'0' + rng.below(10) as u8).collect();
            digits[0] = b'1' + rng.below(9) as u8;
            digits
        }
        7 => rng.pick(&MALFORMED).to_vec(),
        8 => {
            let mut period = decimal(rng);
            period.extend_from_slice(rng.pick(&UNITS).as_bytes());
            period
        }
        9 => rng.pick(&PERIODS).as_bytes().to_vec(),
        10 => rng.pick(&KEYS).to_vec(),
        11 => {
            let len = 1_000 + rng.index(4_000);
            rng.bytes(len)
        }
        _ => b"\xe6\x97\xa5\xe6\x9c\xac %s".to_vec(),
    }
}

/// A `LIMIT` group: valid, hostile values, or cut short.
fn limit_group(rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut group = vec![rng.pick(&KEYWORDS[..3]).as_bytes().to_vec()];
    match rng.below(5) {
        0 | 1 => group.extend(valid_rate_args(rng).into_iter().take(3)),
        2 => group.extend((0..3).map(|_| hostile(rng))),
        3 => {
            // An incomplete group.
            let n = rng.index(3);
            group.extend(valid_rate_args(rng).into_iter().take(n));
        }
        _ => {
            // A valid group with one hostile field.
            let mut fields: Vec<Vec<u8>> = valid_rate_args(rng).into_iter().take(3).collect();
            let i = rng.index(3);
            fields[i] = hostile(rng);
            group.extend(fields);
        }
    }
    group
}

/// A decision with several bands, and for RESERVE/ACQUIRE the wait
/// (`wait`: the keyword and the values to draw from) anywhere after the
/// cost: missing, twice, before, between or after the groups; a stray
/// keyword or value now and then.
fn banded_args(rng: &mut Rng, wait: Option<(&str, &[&str])>) -> Vec<Vec<u8>> {
    let mut args = if rng.chance(80) {
        valid_rate_args(rng)
    } else {
        (0..3 + rng.index(2)).map(|_| hostile(rng)).collect()
    };
    let bands = if rng.chance(5) {
        // Up to the most bands, and beyond.
        14 + rng.index(5)
    } else {
        rng.index(4)
    };
    let mut parts: Vec<Vec<Vec<u8>>> = (0..bands).map(|_| limit_group(rng)).collect();
    if let Some((keyword, values)) = wait {
        let times = match rng.below(10) {
            0 => 0,
            1 => 2,
            _ => 1,
        };
        for _ in 0..times {
            let word = if rng.chance(20) {
                keyword.to_lowercase()
            } else {
                keyword.to_string()
            };
            let at = rng.index(parts.len() + 1);
            let value = if keyword == "MAXWAIT" && rng.chance(10) {
                hostile(rng)
            } else {
                rng.pick(values).as_bytes().to_vec()
            };
            parts.insert(at, vec![word.into_bytes(), value]);
        }
    }
    if rng.chance(8) {
        // A stray word: a keyword alone, the other command's keyword
        // with a value (never a blocking one), or a second cost.
        let at = rng.index(parts.len() + 1);
        let stray = match rng.below(3) {
            0 => vec![rng.pick(&KEYWORDS).as_bytes().to_vec()],
            1 => vec![
                rng.pick(&["MAXWAIT", "TIMEOUT"]).as_bytes().to_vec(),
                b"0".to_vec(),
            ],
            _ => vec![rng.below(5).to_string().into_bytes()],
        };
        parts.insert(at, stray);
    }
    args.extend(parts.into_iter().flatten());
    args
}

fn valid_rate_args(rng: &mut Rng) -> Vec<Vec<u8>> {
    let capacity = 1 + rng.below(20);
    let mut args = vec![
        capacity.to_string().into_bytes(),
        (1 + rng.below(10)).to_string().into_bytes(),
        format!(
            "{}{}",
            1 + rng.below(500),
            rng.pick(&["", "ms", "s", "m", "h", "d"])
        )
        .into_bytes(),
    ];
    if rng.chance(60) {
        args.push(rng.below(capacity + 3).to_string().into_bytes());
    }
    args
}

/// A random band, valid or one token or millisecond beyond:
/// `[capacity, refill, period, tokens, fraction]`.
fn random_band(rng: &mut Rng) -> [u64; 5] {
    let capacity = 1 + rng.below(100);
    let period = 1 + rng.below(100_000);
    [
        capacity,
        1 + rng.below(100),
        period,
        rng.below(capacity + 2),
        rng.below(period + 2),
    ]
}

/// The packed form (`CHARON.SETSTATE key state`): format byte 1, then
/// varints; sometimes valid, sometimes damaged.
fn packed_state(rng: &mut Rng) -> Vec<u8> {
    let updated_at = 1_700_000_000_000 + rng.below(1 << 40);
    let bands: Vec<[u64; 5]> = (0..rng.below(18)).map(|_| random_band(rng)).collect();
    let mut state = packed(updated_at, &bands);
    match rng.below(6) {
        0 => {
            let len = rng.index(state.len() + 1);
            state.truncate(len);
        }
        1 => {
            let at = rng.index(state.len());
            state[at] ^= 1 << rng.below(8);
        }
        2 => {
            let extra = 1 + rng.index(4);
            state.extend(rng.bytes(extra));
        }
        3 => state[0] = rng.next() as u8,
        _ => {}
    }
    state
}

fn setstate_args(rng: &mut Rng) -> Vec<Vec<u8>> {
    if rng.chance(30) {
        return vec![packed_state(rng)];
    }
    let bands = rng.index(18);
    let declared = if rng.chance(80) {
        bands.to_string().into_bytes()
    } else {
        hostile(rng)
    };
    let updated_at = if rng.chance(70) {
        (1_700_000_000_000 + rng.below(1 << 40))
            .to_string()
            .into_bytes()
    } else {
        hostile(rng)
    };
    let mut args = vec![updated_at, declared];
    for _ in 0..bands {
        let mut fields = random_band(rng);
        if rng.chance(20) {
            // One impossible or hostile field.
            let i = rng.index(5);
            fields[i] = *rng.pick(&[0, u64::MAX, i64::MAX as u64, i64::MAX as u64 + 1]);
        }
        for field in fields {
            args.push(if rng.chance(3) {
                hostile(rng)
            } else {
                field.to_string().into_bytes()
            });
        }
    }
    args
}

/// One argument vector: mostly the command's own shape with hostile
/// values, sometimes any arity at all.
fn vector(rng: &mut Rng) -> Vec<Vec<u8>> {
    let command = rng.index(COMMANDS.len());
    let mut name = COMMANDS[command].to_string();
    if rng.chance(5) {
        name = name.to_lowercase();
    }
    let mut argv = vec![name.into_bytes()];
    let key = if rng.chance(90) {
        rng.pick(&KEYS).to_vec()
    } else {
        hostile(rng)
    };
    if rng.chance(25) {
        // Any arity, zero arguments included (`hostile` never makes the
        // word TIMEOUT: an ACQUIRE of these never blocks).
        let count = rng.index(13);
        argv.extend((0..count).map(|_| hostile(rng)));
        return argv;
    }
    argv.push(key);
    match command {
        0 if rng.chance(30) => argv.extend(valid_rate_args(rng)),
        0 if rng.chance(40) => argv.extend(banded_args(rng, None)),
        0 => {
            let count = 3 + rng.index(2);
            argv.extend((0..count).map(|_| hostile(rng)));
        }
        1 => {
            if rng.chance(70) {
                argv.push(if rng.chance(50) {
                    rng.below(30).to_string().into_bytes()
                } else {
                    hostile(rng)
                });
            }
        }
        2 => argv.push(if rng.chance(40) {
            (1 + rng.below(30)).to_string().into_bytes()
        } else {
            hostile(rng)
        }),
        3 => argv.extend(setstate_args(rng)),
        4 => {
            if rng.chance(10) {
                argv.push(hostile(rng));
            }
        }
        5 => argv.extend(banded_args(rng, Some(("MAXWAIT", &MAXWAITS)))),
        _ => argv.extend(banded_args(rng, Some(("TIMEOUT", &TIMEOUTS)))),
    }
    argv
}

/// A `CHARON.RESERVE`/`CHARON.ACQUIRE` reply: five integers, `remaining`
/// never negative; granted with `wait` -1 or at least 1, refused with
/// `retry` -1 or at least 1.
fn check_reservation(value: &Value) -> Result<(), String> {
    let [limited, limit, remaining, wait, reset] = five_integers(value)?;
    let ok = (0..=1).contains(&limited)
        && limit >= 1
        && (0..=limit).contains(&remaining)
        && (wait == -1 || wait >= 1)
        && reset >= 0;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "reservation out of range: {:?}",
            [limited, limit, remaining, wait, reset]
        ))
    }
}

/// A `CHARON.INSPECT` reply: null, or 1 to 16 bands of five integers
/// `[capacity refill period_ms tokens reset_after_ms]`, the tokens at most
/// the capacity (below zero while reserved).
fn check_inspect(value: &Value) -> Result<(), String> {
    let bands = match value {
        Value::Nil => return Ok(()),
        Value::Array(bands) => bands,
        other => return Err(format!("INSPECT answered {other:?}")),
    };
    if !(1..=16).contains(&bands.len()) {
        return Err(format!("{} bands: {value:?}", bands.len()));
    }
    for band in bands {
        let fields: Vec<i64> =
            redis::from_redis_value(band.clone()).map_err(|e| format!("band {band:?}: {e}"))?;
        let ok = matches!(fields[..], [capacity, refill, period, tokens, reset]
            if capacity >= 1 && refill >= 1 && period >= 1 && tokens <= capacity && reset >= 0);
        if !ok {
            return Err(format!("band out of range: {fields:?}"));
        }
    }
    Ok(())
}

/// Whether `reply` is one that `argv` may get.
fn check_reply(argv: &[Vec<u8>], reply: &Value) -> Result<(), String> {
    if let Some(error) = error_text(reply) {
        return if error.starts_with("ERR ") || error.starts_with("WRONGTYPE ") {
            Ok(())
        } else {
            Err(format!("error without ERR/WRONGTYPE: {error:?}"))
        };
    }
    match argv[0].to_ascii_uppercase().as_slice() {
        b"CHARON.RATE" => check_verdict(reply).map(drop),
        b"CHARON.PEEK" => match reply {
            Value::Nil => Ok(()),
            other => check_verdict(other).map(drop),
        },
        b"CHARON.REFUND" => match reply {
            Value::Nil => Ok(()),
            Value::Int(n) if *n >= 0 => Ok(()),
            other => Err(format!("REFUND answered {other:?}")),
        },
        b"CHARON.INSPECT" => check_inspect(reply),
        b"CHARON.RESERVE" | b"CHARON.ACQUIRE" => check_reservation(reply),
        b"CL.THROTTLE" => check_verdict(reply).map(drop),
        b"CHARON.SETSTATE" => match reply {
            Value::Okay => Ok(()),
            Value::SimpleString(s) if s == "OK" => Ok(()),
            other => Err(format!("SETSTATE answered {other:?}")),
        },
        _ => Err(format!("unexpected reply {reply:?}")),
    }
}

#[test]
fn random_argument_vectors() {
    let mut server = Server::start();
    let mut con = server.con();
    let _: () = redis::cmd("SET")
        .arg("string")
        .arg("v")
        .query(&mut con)
        .unwrap();
    let _: i64 = redis::cmd("RPUSH")
        .arg("list")
        .arg("a")
        .query(&mut con)
        .unwrap();

    let mut rng = Rng::new(SEED);
    let vectors: Vec<Vec<Vec<u8>>> = (0..VECTORS).map(|_| vector(&mut rng)).collect();
    let mut errors = 0;
    let mut results = 0;
    for (batch, commands) in vectors.chunks(PIPELINE).enumerate() {
        let replies = pipeline(&mut con, commands);
        for (i, (argv, reply)) in commands.iter().zip(&replies).enumerate() {
            if let Err(problem) = check_reply(argv, reply) {
                panic!(
                    "vector {} (seed {SEED:#x}): {}: {problem}",
                    batch * PIPELINE + i,
                    show(argv)
                );
            }
            if error_text(reply).is_some() {
                errors += 1;
            } else {
                results += 1;
            }
        }
        if batch % 10 == 9 {
            assert_standing(
                &mut server,
                &format!("after {} vectors", (batch + 1) * PIPELINE),
            );
        }
    }
    eprintln!("{VECTORS} vectors: {results} results, {errors} errors");
    // Both kinds were exercised.
    assert!(results > VECTORS / 10 && errors > VECTORS / 10);

    // The other types are untouched; every bucket left is sound.
    let value: String = redis::cmd("GET").arg("string").query(&mut con).unwrap();
    assert_eq!(value, "v");
    let length: i64 = redis::cmd("LLEN").arg("list").query(&mut con).unwrap();
    assert_eq!(length, 1);
    for key in KEYS {
        let kind: String = redis::cmd("TYPE").arg(key).query(&mut con).unwrap();
        if kind == "charon-tb" {
            assert_peek_sound(&mut con, key);
            let bands: Value = redis::cmd("CHARON.INSPECT")
                .arg(key)
                .query(&mut con)
                .unwrap();
            check_inspect(&bands).unwrap_or_else(|e| panic!("INSPECT {key:?}: {e}"));
        }
    }
    // Nobody is left waiting.
    assert_eq!(info_u64(&server.info("charon"), "charon_waiting"), 0);
    // Everything stored survives a save and load.
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut con).unwrap();
    assert_standing(&mut server, "at the end");
}

/// Arguments of `CL.THROTTLE` after the key: valid (quantity 0 included),
/// one hostile field, or any count of hostile values.
fn throttle_args(rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut args: Vec<Vec<u8>> = vec![
        rng.below(20).to_string().into_bytes(),
        (1 + rng.below(10)).to_string().into_bytes(),
        (1 + rng.below(100)).to_string().into_bytes(),
    ];
    if rng.chance(60) {
        args.push(rng.below(25).to_string().into_bytes());
    }
    match rng.below(4) {
        0 | 1 => {}
        2 => {
            let i = rng.index(args.len());
            args[i] = hostile(rng);
        }
        _ => {
            let count = rng.index(7);
            args = (0..count).map(|_| hostile(rng)).collect();
        }
    }
    args
}

/// `CL.THROTTLE` mixed with the module's commands on the same keys, some of
/// them redis-cell's state strings (converted in place) or other strings
/// (WRONGTYPE).
fn throttle_vector(rng: &mut Rng, now_ns: u64) -> Vec<Vec<u8>> {
    let key = if rng.chance(90) {
        rng.pick(&KEYS).to_vec()
    } else {
        hostile(rng)
    };
    match rng.below(10) {
        0..=5 => {
            let name = *rng.pick(&["CL.THROTTLE", "cl.throttle", "Cl.Throttle"]);
            let mut argv = vec![name.as_bytes().to_vec(), key];
            argv.extend(throttle_args(rng));
            argv
        }
        6 => {
            // redis-cell's own state: a theoretical arrival time in Unix
            // nanoseconds, near now or far off; or a string that is not one.
            let value = match rng.below(4) {
                0 => (now_ns + rng.below(100_000_000_000))
                    .to_string()
                    .into_bytes(),
                1 => now_ns
                    .saturating_sub(rng.below(100_000_000_000))
                    .to_string()
                    .into_bytes(),
                2 => rng.pick(&EXTREMES).as_bytes().to_vec(),
                _ => hostile(rng),
            };
            vec![b"SET".to_vec(), key, value]
        }
        _ => {
            let mut argv = vector(rng);
            if argv.len() > 1 {
                argv[1] = key;
            }
            argv
        }
    }
}

#[test]
fn random_throttle_vectors() {
    let mut throttled = Throttled::start();
    let server = &mut throttled.server;
    let mut con = server.con();
    let _: i64 = redis::cmd("RPUSH")
        .arg("list")
        .arg("a")
        .query(&mut con)
        .unwrap();
    let (seconds, micros): (u64, u64) = redis::cmd("TIME").query(&mut con).unwrap();
    let now_ns = seconds * 1_000_000_000 + micros * 1_000;

    let mut rng = Rng::new(THROTTLE_SEED);
    let vectors: Vec<Vec<Vec<u8>>> = (0..THROTTLE_VECTORS)
        .map(|_| throttle_vector(&mut rng, now_ns))
        .collect();
    let (mut throttles, mut throttle_results) = (0, 0);
    for (batch, commands) in vectors.chunks(PIPELINE).enumerate() {
        let replies = pipeline(&mut con, commands);
        for (i, (argv, reply)) in commands.iter().zip(&replies).enumerate() {
            let index = batch * PIPELINE + i;
            if argv[0].eq_ignore_ascii_case(b"SET") {
                continue;
            }
            if let Err(problem) = check_reply(argv, reply) {
                panic!(
                    "vector {index} (seed {THROTTLE_SEED:#x}): {}: {problem}",
                    show(argv)
                );
            }
            if argv[0].eq_ignore_ascii_case(b"CL.THROTTLE") {
                throttles += 1;
                if error_text(reply).is_none() {
                    throttle_results += 1;
                }
            }
        }
        assert_standing(server, &format!("after {} vectors", (batch + 1) * PIPELINE));
    }
    eprintln!("{THROTTLE_VECTORS} vectors: {throttles} CL.THROTTLE, {throttle_results} answered");
    assert!(throttle_results > throttles / 10 && throttle_results < throttles);

    // (The SETs overwrite keys of any type: only the buckets are checked.)
    for key in KEYS {
        let kind: String = redis::cmd("TYPE").arg(key).query(&mut con).unwrap();
        if kind == "charon-tb" {
            assert_peek_sound(&mut con, key);
        }
    }
    assert_eq!(info_u64(&server.info("charon"), "charon_waiting"), 0);
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut con).unwrap();
    assert_standing(server, "at the end");
}
