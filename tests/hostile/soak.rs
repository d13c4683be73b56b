//! A bounded load test (ignored by default; `make soak`): 50 connections for
//! 60 seconds, a mix of RATE (one band or two), PEEK, REFUND, INSPECT,
//! RESERVE (MAXWAIT up to a period) and ACQUIRE (TIMEOUT 0) over 100,000 keys whose
//! buckets refill within 6 seconds (4, and up to 2 in line). No error, no crash, and once every
//! bucket has expired, `used_memory` is back within 1 MiB of where it
//! started: idle buckets hold no memory.
//!
//! `CHARON_SOAK_SECONDS` shortens or lengthens the load (default 60).

use crate::common::*;
use crate::support::*;
use redis::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 50;
const KEYS: u64 = 100_000;
const PIPELINE: usize = 64;
/// How far `used_memory` may end above its baseline.
const TOLERANCE_BYTES: u64 = 1 << 20;

/// A key's parameters, fixed per key: capacity 1-10, refill half the
/// capacity or all of it, period 200-2000 ms, so a bucket is full (and
/// gone) at most two periods after its last request.
fn params(key: u64) -> [String; 3] {
    let capacity = 1 + key % 10;
    let refill = if key.is_multiple_of(3) {
        capacity.div_ceil(2)
    } else {
        capacity
    };
    let period = 200 + (key * 7919) % 1801;
    [capacity.to_string(), refill.to_string(), period.to_string()]
}

fn command(rng: &mut Rng) -> Vec<Vec<u8>> {
    let n = rng.below(KEYS);
    let key = format!("soak:{n}").into_bytes();
    let roll = rng.below(100);
    let mut argv = if roll < 70 {
        let name: &[u8] = match roll {
            0..=49 => b"CHARON.RATE",
            50..=61 => b"CHARON.RESERVE",
            _ => b"CHARON.ACQUIRE",
        };
        let mut argv = vec![name.to_vec(), key];
        let params = params(n);
        argv.extend(params.clone().map(String::into_bytes));
        argv.push(rng.below(4).to_string().into_bytes());
        if rng.chance(30) {
            // A second band, slower and larger: full again within the
            // same bound.
            let [capacity, refill, period] = params;
            argv.push(b"LIMIT".to_vec());
            argv.push(format!("{}", capacity.parse::<u64>().unwrap() * 2).into_bytes());
            argv.push(refill.into_bytes());
            argv.push(period.into_bytes());
        }
        match name {
            b"CHARON.RESERVE" => {
                // At most a period in line: below zero, full again soon.
                argv.push(b"MAXWAIT".to_vec());
                argv.push(rng.below(2000).to_string().into_bytes());
            }
            b"CHARON.ACQUIRE" => {
                // Never blocks: answered at once, as RESERVE MAXWAIT 0.
                argv.push(b"TIMEOUT".to_vec());
                argv.push(b"0".to_vec());
            }
            _ => {}
        }
        argv
    } else if roll < 75 {
        vec![b"CHARON.INSPECT".to_vec(), key]
    } else if roll < 90 {
        vec![b"CHARON.PEEK".to_vec(), key]
    } else {
        vec![b"CHARON.REFUND".to_vec(), key]
    };
    if argv[0] == b"CHARON.REFUND" {
        argv.push((1 + rng.below(3)).to_string().into_bytes());
    }
    argv
}

fn valid(argv: &[Vec<u8>], reply: &Value) -> bool {
    match argv[0].as_slice() {
        b"CHARON.RATE" => check_verdict(reply).is_ok(),
        b"CHARON.PEEK" => *reply == Value::Nil || check_verdict(reply).is_ok(),
        b"CHARON.RESERVE" | b"CHARON.ACQUIRE" => match reply {
            Value::Array(items) => {
                let fields: Vec<i64> = items
                    .iter()
                    .filter_map(|v| match v {
                        Value::Int(n) => Some(*n),
                        _ => None,
                    })
                    .collect();
                matches!(fields[..], [limited, limit, remaining, wait, reset]
                    if (0..=1).contains(&limited) && limit >= 1
                        && (0..=limit).contains(&remaining)
                        && (wait == -1 || wait >= 1) && reset >= 0)
            }
            _ => false,
        },
        b"CHARON.INSPECT" => matches!(reply, Value::Nil | Value::Array(_)),
        _ => matches!(reply, Value::Nil | Value::Int(0..)),
    }
}

fn used_memory(server: &Server) -> u64 {
    info_u64(&server.info("memory"), "used_memory")
}

#[test]
#[ignore = "a 60 s load test: make soak"]
fn soak() {
    let seconds: u64 = std::env::var("CHARON_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut server = Server::start();
    // Settle, then the baseline: the server with the module, no bucket.
    std::thread::sleep(Duration::from_millis(500));
    let baseline = used_memory(&server);

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let commands = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let mut con = server.con();
            let (commands, errors) = (commands.clone(), errors.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(0x50ac_0000 + i as u64);
                while Instant::now() < deadline {
                    let batch: Vec<Vec<Vec<u8>>> =
                        (0..PIPELINE).map(|_| command(&mut rng)).collect();
                    let replies = pipeline(&mut con, &batch);
                    for (argv, reply) in batch.iter().zip(&replies) {
                        if !valid(argv, reply) && errors.fetch_add(1, Ordering::Relaxed) < 10 {
                            eprintln!("{}: {reply:?}", show(argv));
                        }
                    }
                    commands.fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let (mut peak_keys, mut peak_memory) = (0, 0);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        assert_standing(&mut server, "during the load");
        let keys: u64 = redis::cmd("DBSIZE").query(&mut server.con()).unwrap();
        peak_keys = peak_keys.max(keys);
        peak_memory = peak_memory.max(used_memory(&server));
    }
    for worker in workers {
        worker.join().expect("a load connection failed");
    }
    let total = commands.load(Ordering::Relaxed);
    let errors = errors.load(Ordering::Relaxed);
    eprintln!(
        "{total} commands in {seconds} s over {CONNECTIONS} connections, {errors} bad replies; \
         peak {peak_keys} buckets, used_memory {peak_memory} (baseline {baseline})"
    );
    assert_eq!(errors, 0);
    assert!(
        peak_keys > 1_000,
        "the load created few buckets: {peak_keys}"
    );

    // Every bucket is full within 6 s of its last request, and its key
    // expires then: wait for the last one (bounded).
    let drained = Instant::now() + Duration::from_secs(60);
    loop {
        let keys: u64 = redis::cmd("DBSIZE").query(&mut server.con()).unwrap();
        let buckets = info_u64(&server.info("charon"), "charon_buckets");
        if keys == 0 && buckets == 0 {
            break;
        }
        assert!(
            Instant::now() < drained,
            "{keys} keys, {buckets} buckets left a minute after the load"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // The server shrinks its emptied hash tables in its cron.
    let settled = Instant::now() + Duration::from_secs(10);
    let mut after = used_memory(&server);
    while after > baseline + TOLERANCE_BYTES && Instant::now() < settled {
        std::thread::sleep(Duration::from_millis(200));
        after = used_memory(&server);
    }
    eprintln!(
        "used_memory after expiry: {after} (baseline {baseline}, tolerance {TOLERANCE_BYTES})"
    );
    assert!(
        after <= baseline + TOLERANCE_BYTES,
        "used_memory {after} stays above the baseline {baseline}"
    );
    assert_standing(&mut server, "after the load");
}
