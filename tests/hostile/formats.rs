//! `%s%n%x` in keys and arguments through every error and log path: bad
//! arguments, wrong arity, wrong type, a corrupt RESTORE that the module
//! logs. Nothing reaches a printf format: the server stays up, replies and
//! the log carry the literal text. (The panic path, whose log line holds the
//! key, is in `panic.rs`.)

use crate::common::*;
use crate::support::*;
use redis::Value;

const DIRECTIVES: [&[u8]; 4] = [
    b"%s%n%x",
    b"%n%n%n%n%n%n%n%n",
    b"%p%p%p%99999999s",
    b"%s\x00%n",
];

#[test]
fn printf_directives_reach_no_format() {
    let mut server = Server::start();
    let mut con = server.con();
    let mut commands: Vec<Vec<Vec<u8>>> = Vec::new();
    for text in DIRECTIVES {
        let wrong_type = [b"str:".as_slice(), text].concat();
        let _: () = redis::cmd("SET")
            .arg(&wrong_type)
            .arg("v")
            .query(&mut con)
            .unwrap();
        let t = text.to_vec();
        for argv in [
            // Bad arguments, each position.
            vec![
                b"CHARON.RATE".to_vec(),
                t.clone(),
                t.clone(),
                b"1".to_vec(),
                b"1s".to_vec(),
            ],
            vec![
                b"CHARON.RATE".to_vec(),
                t.clone(),
                b"1".to_vec(),
                t.clone(),
                b"1s".to_vec(),
            ],
            vec![
                b"CHARON.RATE".to_vec(),
                t.clone(),
                b"1".to_vec(),
                b"1".to_vec(),
                t.clone(),
            ],
            vec![
                b"CHARON.RATE".to_vec(),
                t.clone(),
                b"1".to_vec(),
                b"1".to_vec(),
                b"1s".to_vec(),
                t.clone(),
            ],
            vec![b"CHARON.PEEK".to_vec(), t.clone(), t.clone()],
            vec![b"CHARON.REFUND".to_vec(), t.clone(), t.clone()],
            vec![b"CHARON.SETSTATE".to_vec(), t.clone(), t.clone()],
            [
                vec![b"CHARON.SETSTATE".to_vec(), t.clone()],
                vec![t.clone(); 7],
            ]
            .concat(),
            // Wrong arity.
            vec![b"CHARON.RATE".to_vec(), t.clone()],
            vec![b"CHARON.PEEK".to_vec(), t.clone(), t.clone(), t.clone()],
            vec![b"CHARON.REFUND".to_vec(), t.clone()],
            vec![b"CHARON.SETSTATE".to_vec(), t.clone(), t.clone(), t.clone()],
            // Wrong type.
            vec![
                b"CHARON.RATE".to_vec(),
                wrong_type.clone(),
                b"1".to_vec(),
                b"1".to_vec(),
                b"1s".to_vec(),
            ],
            vec![b"CHARON.PEEK".to_vec(), wrong_type.clone()],
            vec![b"CHARON.REFUND".to_vec(), wrong_type.clone(), b"1".to_vec()],
        ] {
            commands.push(argv);
        }
    }
    let replies = pipeline(&mut con, &commands);
    for (argv, reply) in commands.iter().zip(&replies) {
        let error =
            error_text(reply).unwrap_or_else(|| panic!("{}: answered {reply:?}", show(argv)));
        assert!(
            error.starts_with("ERR ") || error.starts_with("WRONGTYPE "),
            "{}: {error}",
            show(argv)
        );
        // What a format would have made of a directive.
        for garbage in ["(null)", "(nil)", "0x7f", "0x5"] {
            assert!(!error.contains(garbage), "{}: {error}", show(argv));
        }
    }

    // The keys work as keys.
    for text in DIRECTIVES {
        let reply: Value = redis::cmd("CHARON.RATE")
            .arg(text)
            .arg(&["3", "1", "1h"])
            .query(&mut con)
            .unwrap();
        check_verdict(&reply).unwrap();
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg(text).query(&mut con).unwrap();
        assert!(keys.iter().any(|k| k == text), "{keys:?}");
    }

    // A corrupt RESTORE under such a key: the module logs why it refused.
    let payload: Vec<u8> = redis::cmd("DUMP")
        .arg(DIRECTIVES[0])
        .query(&mut con)
        .unwrap();
    let mut body = payload[..payload.len() - 10].to_vec();
    // One band of capacity 3: tokens (the 9th byte from the end of the
    // body: opcode, tokens, opcode, fraction, opcode, 0x81 + 8 bytes of
    // time, EOF) set to 4.
    let tokens = body.len() - 1 - 9 - 1 - 1 - 1 - 1;
    assert_eq!(body[tokens], 2, "tokens left after one request");
    body[tokens] = 4;
    let mut sealed = body.clone();
    sealed.extend_from_slice(&payload[payload.len() - 10..payload.len() - 8]);
    let crc = crc64(&sealed);
    sealed.extend_from_slice(&crc.to_le_bytes());
    for text in DIRECTIVES {
        let key = [b"restore:".as_slice(), text].concat();
        let mut restore = redis::cmd("RESTORE");
        restore.arg(&key).arg(0).arg(&sealed);
        let error = call(&mut con, &restore).expect_err("RESTORE of a corrupt bucket");
        assert!(error.starts_with("ERR Bad data format"), "{error}");
    }
    assert_standing(&mut server, "after printf directives");
    let log = server.log_text();
    assert!(
        log.contains(
            "charon: cannot load a bucket: invalid bucket: tokens must not exceed capacity, and the fraction must be below the period (and 0 when full)"
        ),
        "the refusal is not in the log, literally:\n{}",
        server.log_tail()
    );
}
