//! 10,000 random argument vectors against every CHARON.* command: each reply
//! is a well-formed result or an error starting with ERR or WRONGTYPE, and
//! the server never goes down.

use crate::common::*;
use crate::support::*;
use redis::Value;

const SEED: u64 = 0x00c4_a50e_5eed_0001;
const VECTORS: usize = 10_000;
const PIPELINE: usize = 250;

const COMMANDS: [&str; 4] = [
    "CHARON.RATE",
    "CHARON.PEEK",
    "CHARON.REFUND",
    "CHARON.SETSTATE",
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
        // Any arity, zero arguments included.
        let count = rng.index(13);
        argv.extend((0..count).map(|_| hostile(rng)));
        return argv;
    }
    argv.push(key);
    match command {
        0 if rng.chance(40) => argv.extend(valid_rate_args(rng)),
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
        _ => argv.extend(setstate_args(rng)),
    }
    argv
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
        }
    }
    // Everything stored survives a save and load.
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut con).unwrap();
    assert_standing(&mut server, "at the end");
}
