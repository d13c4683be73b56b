//! 1,000 corrupted DUMP payloads of buckets, each with a valid footer so the
//! server hands it to the module's loader: every one is refused with an
//! error or loads a valid bucket, and the server never goes down.
//!
//! A DUMP payload is `[type][module id][value][EOF] [RDB version: 2 bytes LE]
//! [CRC64 of all before: 8 bytes LE]`. The type is 7 (module, format 2); the
//! module id packs the type name (9 characters of 6 bits) and the encver (10
//! bits); each value the module saves is an opcode (2: unsigned) and the
//! value, both in the RDB length encoding; opcode 0 ends the value. A signed
//! value (encver 2's `tokens`, below zero while turns are reserved, and the
//! time) is saved as the unsigned of its two's complement.

use crate::common::*;
use crate::support::*;
use redis::{Connection, Value};

const SEED: u64 = 0x00c4_a50e_5eed_0002;
const PAYLOADS: usize = 1_000;
const PIPELINE: usize = 100;

/// The encoding the module writes (encver 1 still loads).
const ENCVER: u64 = 2;

/// The module type format of a module value in an RDB (`RDB_TYPE_MODULE_2`).
const RDB_TYPE_MODULE_2: u8 = 7;
const OPCODE_EOF: u64 = 0;
const OPCODE_UINT: u64 = 2;
/// Redis's `ModuleTypeNameCharSet`.
const NAME_CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A DUMP payload taken apart.
#[derive(Clone, Debug, PartialEq)]
struct Dump {
    kind: u8,
    module_id: u64,
    /// (opcode, value) pairs, as the module saved them.
    items: Vec<(u64, u64)>,
    eof: bool,
    rdb_version: [u8; 2],
}

/// Reads one RDB length (`rdbLoadLen`): 00xxxxxx, 01xxxxxx xxxxxxxx,
/// 0x80 + 4 bytes big endian, 0x81 + 8 bytes big endian.
fn read_len(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *bytes.get(*pos)?;
    *pos += 1;
    let mut take = |n: usize| -> Option<u64> {
        let chunk = bytes.get(*pos..*pos + n)?;
        *pos += n;
        Some(chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    };
    match first >> 6 {
        0 => Some(u64::from(first & 0x3f)),
        1 => Some((u64::from(first & 0x3f) << 8) | take(1)?),
        _ if first == 0x80 => take(4),
        _ if first == 0x81 => take(8),
        _ => None,
    }
}

/// Writes one RDB length, in its shortest form (`rdbSaveLen`).
fn write_len(out: &mut Vec<u8>, value: u64) {
    if value < 1 << 6 {
        out.push(value as u8);
    } else if value < 1 << 14 {
        out.extend_from_slice(&[0x40 | (value >> 8) as u8, value as u8]);
    } else if value <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(value as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// The type name and encver a module id carries.
fn module_type(module_id: u64) -> (String, u64) {
    let name = (0..9)
        .map(|i| NAME_CHARSET[((module_id >> (10 + 6 * (8 - i))) & 63) as usize] as char)
        .collect();
    (name, module_id & 1023)
}

impl Dump {
    /// Takes a real payload apart, checking its footer and that nothing is
    /// left over: what `body` puts back together is the same bytes.
    fn parse(payload: &[u8]) -> Dump {
        let (body, footer) = payload.split_at(payload.len() - 10);
        let crc = u64::from_le_bytes(footer[2..].try_into().unwrap());
        assert_eq!(
            crc64(&payload[..payload.len() - 8]),
            crc,
            "the CRC64 of a real DUMP payload"
        );
        let mut pos = 1;
        let module_id = read_len(body, &mut pos).expect("module id");
        let mut items = Vec::new();
        loop {
            let opcode = read_len(body, &mut pos).expect("opcode");
            if opcode == OPCODE_EOF {
                break;
            }
            items.push((opcode, read_len(body, &mut pos).expect("value")));
        }
        assert_eq!(pos, body.len(), "bytes after the EOF opcode");
        let dump = Dump {
            kind: body[0],
            module_id,
            items,
            eof: true,
            rdb_version: [footer[0], footer[1]],
        };
        assert_eq!(dump.body(), body, "the payload does not re-encode");
        dump
    }

    fn body(&self) -> Vec<u8> {
        let mut out = vec![self.kind];
        write_len(&mut out, self.module_id);
        for &(opcode, value) in &self.items {
            write_len(&mut out, opcode);
            write_len(&mut out, value);
        }
        if self.eof {
            write_len(&mut out, OPCODE_EOF);
        }
        out
    }

    fn values(&self) -> Vec<u64> {
        self.items.iter().map(|&(_, value)| value).collect()
    }
}

/// A payload with a footer the server accepts: `body`, the RDB version,
/// and the CRC64 of both.
fn seal(body: &[u8], rdb_version: [u8; 2]) -> Vec<u8> {
    let mut payload = body.to_vec();
    payload.extend_from_slice(&rdb_version);
    let crc = crc64(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    payload
}

const INTERESTING: [u64; 14] = [
    0,
    1,
    2,
    16,
    17,
    63,
    64,
    16_383,
    16_384,
    u32::MAX as u64,
    i64::MAX as u64 - 1,
    i64::MAX as u64,
    i64::MAX as u64 + 1,
    u64::MAX,
];

fn interesting(rng: &mut Rng) -> u64 {
    if rng.chance(25) {
        rng.next()
    } else {
        *rng.pick(&INTERESTING)
    }
}

/// One structural mutation: values, counts, opcodes, the module id, the
/// end marker.
fn mutate_structure(rng: &mut Rng, dump: &mut Dump) {
    let len = dump.items.len();
    match rng.below(11) {
        0 if len > 0 => {
            let i = rng.index(len);
            dump.items[i].1 = interesting(rng);
        }
        1 if len > 0 => {
            // The band count alone: the bands do not follow.
            dump.items[0].1 = *rng.pick(&[0, 2, 3, 16, 17, 1_000, u64::MAX]);
        }
        2 if len > 6 => {
            // The band count with bands to match (up to one too many).
            let bands = 1 + rng.index(17);
            let band: Vec<(u64, u64)> = dump.items[1..6].to_vec();
            let time = dump.items[len - 1];
            dump.items = vec![(OPCODE_UINT, bands as u64)];
            for _ in 0..bands {
                dump.items.extend_from_slice(&band);
            }
            dump.items.push(time);
        }
        3 if len > 0 => {
            let keep = rng.index(len);
            dump.items.truncate(keep);
        }
        4 => dump.eof = false,
        5 => {
            let extra = 1 + rng.index(3);
            for _ in 0..extra {
                dump.items.push((OPCODE_UINT, interesting(rng)));
            }
        }
        6 if len > 0 => {
            // Another opcode: EOF too early, signed, float, double, string,
            // unknown.
            let i = rng.index(len);
            dump.items[i].0 = *rng.pick(&[0, 1, 3, 4, 5, 6, 99, u64::MAX]);
        }
        7 => {
            // Another encver, the type name kept: encver 1 carries
            // `tokens` unsigned, so a level below zero must not load as a
            // huge one.
            let encver = *rng.pick(&[0, 1, 1, 3, 1023]);
            dump.module_id = (dump.module_id & !1023) | encver;
        }
        8 => {
            // Another type name: a module that is not loaded.
            let bit = 10 + rng.below(54);
            dump.module_id ^= 1 << bit;
        }
        9 if len > 5 => {
            // Impossible levels: tokens above capacity, fraction at the
            // period, a time before 1970, levels far below zero.
            match rng.below(5) {
                0 => dump.items[4].1 = dump.items[1].1 + 1 + rng.below(3),
                1 => dump.items[5].1 = dump.items[3].1 + rng.below(2),
                2 => {
                    dump.items[4].1 = *rng.pick(&[
                        i64::MIN as u64,
                        i64::MIN as u64 + 1,
                        (-(1i64 << 62)) as u64,
                        u64::MAX,
                    ])
                }
                3 => {
                    // Deeper than the capacity many times over.
                    let depth = dump.items[1].1.saturating_mul(1 + rng.below(1 << 20));
                    dump.items[4].1 = (depth as i64).wrapping_neg() as u64;
                }
                _ => {
                    let last = dump.items.len() - 1;
                    dump.items[last].1 = (-(1 + rng.below(1_000) as i64)) as u64;
                }
            }
        }
        _ => {
            if rng.chance(50) {
                // The pre-GA module format, or a string.
                dump.kind = *rng.pick(&[6, 0, 2, 255]);
            } else if len > 0 {
                let i = rng.index(len);
                dump.items[i].1 = rng.below(1 << 20);
            }
        }
    }
}

/// One byte-level mutation of an encoded body: bit flips, truncation,
/// inserted bytes, bad length encodings.
fn mutate_bytes(rng: &mut Rng, body: &mut Vec<u8>) {
    if body.len() < 2 {
        return;
    }
    // Byte 0 (the type) mostly kept: the point is the module's loader.
    let at = 1 + rng.index(body.len() - 1);
    match rng.below(5) {
        0 => {
            for _ in 0..1 + rng.index(3) {
                let i = 1 + rng.index(body.len() - 1);
                body[i] ^= 1 << rng.below(8);
            }
        }
        1 => body.truncate(at),
        2 => {
            let n = 1 + rng.index(9);
            let bytes = rng.bytes(n);
            body.splice(at..at, bytes);
        }
        3 => body[at] = *rng.pick(&[0xc0, 0xc1, 0xc2, 0xc3, 0x82, 0xbf, 0xff]),
        _ => {
            let end = (at + 1 + rng.index(8)).min(body.len());
            body.drain(at..end);
        }
    }
}

fn corrupt(rng: &mut Rng, source: &Dump) -> Vec<u8> {
    let mut dump = source.clone();
    for _ in 0..1 + rng.index(2) {
        mutate_structure(rng, &mut dump);
    }
    let mut body = dump.body();
    if rng.chance(35) {
        mutate_bytes(rng, &mut body);
    }
    seal(&body, dump.rdb_version)
}

/// The fields of a DUMPed bucket are a bucket the contract allows,
/// checked from the numbers alone.
fn assert_valid_state(values: &[u64], what: &str) {
    let count = values[0] as usize;
    assert!(
        (1..=16).contains(&count),
        "{what}: {count} bands: {values:?}"
    );
    assert_eq!(values.len(), 1 + 5 * count + 1, "{what}: {values:?}");
    for band in values[1..1 + 5 * count].chunks(5) {
        let [capacity, refill, period, tokens, fraction] = band.try_into().unwrap();
        // Encver 2: signed, below zero while turns are reserved.
        let tokens = tokens as i64;
        let held = |limit: u64| tokens < 0 || (tokens as u64) < limit;
        let param = 1..=i64::MAX as u64;
        assert!(
            param.contains(&capacity) && param.contains(&refill) && param.contains(&period),
            "{what}: parameters out of range: {values:?}"
        );
        assert!(
            (tokens < 0 || tokens as u64 <= capacity)
                && fraction < period
                && (held(capacity) || fraction == 0),
            "{what}: impossible level: {values:?}"
        );
    }
    assert!(
        (values[1 + 5 * count] as i64) >= 0,
        "{what}: negative time: {values:?}"
    );
}

fn dump(con: &mut Connection, key: &str) -> Vec<u8> {
    redis::cmd("DUMP")
        .arg(key)
        .query(con)
        .unwrap_or_else(|e| panic!("DUMP {key}: {e}"))
}

/// Buckets of every shape to corrupt: one band, huge parameters, several
/// bands, the most bands; and holding reservations (a band below zero,
/// alone, among others, deep).
fn sources(con: &mut Connection) -> Vec<Dump> {
    for (key, args) in [
        ("reserved", &["10", "1", "1h", "10", "MAXWAIT", "0"][..]),
        ("reserved", &["10", "1", "1h", "7", "MAXWAIT", "86400000"]),
        (
            "reserved-bands",
            &[
                "5", "2", "1h", "4", "LIMIT", "100", "1", "1s", "MAXWAIT", "0",
            ],
        ),
        (
            "reserved-bands",
            &[
                "5", "2", "1h", "5", "LIMIT", "100", "1", "1s", "MAXWAIT", "86400000",
            ],
        ),
        (
            "reserved-deep",
            &["1000000", "1", "1ms", "1000000", "MAXWAIT", "0"],
        ),
        (
            "reserved-deep",
            &["1000000", "1", "1ms", "1000000", "MAXWAIT", "86400000"],
        ),
    ] {
        let reply: Vec<i64> = redis::cmd("CHARON.RESERVE")
            .arg(key)
            .arg(args)
            .query(con)
            .unwrap_or_else(|e| panic!("CHARON.RESERVE {key} {args:?}: {e}"));
        assert_eq!(reply[0], 0, "CHARON.RESERVE {key} {args:?}: {reply:?}");
    }
    rate(con, "one", &["10", "3", "1s", "4"]);
    rate(
        con,
        "huge",
        &["1000000000000", "1000000", "3650d", "999999999999"],
    );
    let now = now_ms(con).to_string();
    let band = ["100", "1", "86400000", "7", "12345"];
    for (key, bands) in [("multi", 3), ("most", 16)] {
        let mut cmd = redis::cmd("CHARON.SETSTATE");
        cmd.arg(key).arg(&now).arg(bands);
        for _ in 0..bands {
            cmd.arg(&band[..]);
        }
        let _: () = cmd.query(con).unwrap();
    }
    let keys = [
        "one",
        "huge",
        "multi",
        "most",
        "reserved",
        "reserved-bands",
        "reserved-deep",
    ];
    let dumps: Vec<Dump> = keys
        .iter()
        .map(|key| {
            let dump = Dump::parse(&self::dump(con, key));
            assert_eq!(dump.kind, RDB_TYPE_MODULE_2);
            assert_eq!(module_type(dump.module_id), ("charon-tb".into(), ENCVER));
            assert!(dump.items.iter().all(|&(op, _)| op == OPCODE_UINT));
            assert_valid_state(&dump.values(), key);
            dump
        })
        .collect();
    // The reserved ones hold a band below zero.
    for dump in &dumps[4..] {
        let values = dump.values();
        assert!(
            values[1..values.len() - 1]
                .chunks(5)
                .any(|band| (band[3] as i64) < 0),
            "no band below zero: {values:?}"
        );
    }
    dumps
}

#[test]
fn dump_layout_is_understood() {
    let server = Server::start();
    let mut con = server.con();
    let dumps = sources(&mut con);
    // What `seal` builds from a real payload's parts is that payload, and
    // the server takes it back.
    for (i, source) in dumps.iter().enumerate() {
        let payload = seal(&source.body(), source.rdb_version);
        let key = format!("copy:{i}");
        let _: () = redis::cmd("RESTORE")
            .arg(&key)
            .arg(0)
            .arg(&payload)
            .query(&mut con)
            .unwrap();
        assert_eq!(Dump::parse(&dump(&mut con, &key)), *source);
    }
}

#[test]
fn corrupt_dump_payloads() {
    let mut server = Server::start();
    let mut con = server.con();
    let dumps = sources(&mut con);
    // Buckets that some payloads try to REPLACE: a refused payload must
    // leave them exactly as they were.
    let victims: Vec<String> = (0..4).map(|i| format!("victim:{i}")).collect();
    for victim in &victims {
        rate(&mut con, victim, &["50", "1", "1d", "9"]);
    }
    let victim_digests: Vec<String> = victims.iter().map(|v| digest(&mut con, v)).collect();

    let mut rng = Rng::new(SEED);
    let mut loaded = Vec::new();
    let mut refused = std::collections::BTreeMap::<String, usize>::new();
    let mut other_types = 0;
    for batch in 0..PAYLOADS / PIPELINE {
        let mut commands = Vec::new();
        for j in 0..PIPELINE {
            let i = batch * PIPELINE + j;
            let source = rng.pick(&dumps).clone();
            let payload = corrupt(&mut rng, &source);
            let replace = rng.chance(10);
            let key = if replace {
                rng.pick(&victims).clone()
            } else {
                format!("r:{i}")
            };
            let mut argv = vec![
                b"RESTORE".to_vec(),
                key.into_bytes(),
                b"0".to_vec(),
                payload,
            ];
            if replace {
                argv.push(b"REPLACE".to_vec());
            }
            commands.push(argv);
        }
        let replies = pipeline(&mut con, &commands);
        for (argv, reply) in commands.iter().zip(&replies) {
            let key = String::from_utf8(argv[1].clone()).unwrap();
            match error_text(reply) {
                Some(error) => {
                    // Refused by the loader, not by the footer check.
                    assert!(
                        error.starts_with("ERR") && !error.contains("checksum"),
                        "RESTORE {key}: {error}"
                    );
                    *refused.entry(error).or_default() += 1;
                }
                None => {
                    assert!(matches!(reply, Value::Okay), "RESTORE {key}: {reply:?}");
                    let kind: String = redis::cmd("TYPE").arg(&key).query(&mut con).unwrap();
                    if kind == "charon-tb" {
                        loaded.push(key);
                    } else {
                        other_types += 1;
                    }
                }
            }
        }
        assert_standing(
            &mut server,
            &format!("after {} payloads", (batch + 1) * PIPELINE),
        );
    }
    let refusals: usize = refused.values().sum();
    eprintln!(
        "{PAYLOADS} corrupt payloads: {refusals} refused {refused:?}, {} loaded as buckets, {other_types} as other types",
        loaded.len()
    );
    assert!(
        refusals > PAYLOADS / 2,
        "too few payloads refused: {refusals}"
    );

    // Every bucket that loaded is a valid one, and works.
    for key in &loaded {
        assert_valid_state(&Dump::parse(&dump(&mut con, key)).values(), key);
        assert_peek_sound(&mut con, key.as_bytes());
        digest(&mut con, key);
        let reply: Value = redis::cmd("CHARON.RATE")
            .arg(key)
            .arg(&["5", "1", "1s"])
            .query(&mut con)
            .unwrap();
        check_verdict(&reply).unwrap_or_else(|e| panic!("RATE {key}: {e}"));
    }
    // A victim is either untouched or replaced by a valid bucket.
    for (victim, before) in victims.iter().zip(&victim_digests) {
        if digest(&mut con, victim) != *before {
            assert!(
                loaded.contains(victim),
                "{victim} changed by a refused RESTORE"
            );
        }
    }
    // Everything that loaded survives a save and load.
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut con).unwrap();
    assert_standing(&mut server, "after DEBUG RELOAD");
    assert!(
        server.log_text().contains("charon: cannot load a bucket"),
        "the module did not log why it refused a payload"
    );
}
