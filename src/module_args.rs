//! The module's arguments, given when it loads: `loadmodule libcharon.so
//! [NAME VALUE]...` (or `MODULE LOAD path [NAME VALUE]...`). Names and
//! values are case-insensitive. An unknown or malformed argument refuses
//! the load, with one log line naming it.
//!
//! | Name         | Values        | Default | Effect                          |
//! |--------------|---------------|---------|---------------------------------|
//! | `CLTHROTTLE` | `yes` or `no` | `no`    | registers `CL.THROTTLE`, the drop-in for redis-cell |

use redis_module::raw;
use std::ffi::c_int;

use crate::server::string_bytes;

/// What the module arguments asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModuleArgs {
    /// `CLTHROTTLE yes`: register `CL.THROTTLE`.
    pub cl_throttle: bool,
}

/// Every argument name, as the refusal of an unknown one lists them.
const KNOWN: &str = "CLTHROTTLE yes|no";

/// Parses the arguments (`NAME VALUE` pairs). The error is the one log line
/// that refuses the load.
pub fn parse(args: &[&[u8]]) -> Result<ModuleArgs, String> {
    let mut parsed = ModuleArgs::default();
    let mut cl_throttle_seen = false;
    let mut rest = args;
    while let [name, tail @ ..] = rest {
        if !name.eq_ignore_ascii_case(b"CLTHROTTLE") {
            return Err(refusal(format!(
                "unknown module argument {} (Charon takes: {KNOWN})",
                quoted(name)
            )));
        }
        let [value, tail @ ..] = tail else {
            return Err(refusal(
                "module argument CLTHROTTLE needs a value: yes or no".into(),
            ));
        };
        if cl_throttle_seen {
            return Err(refusal("module argument CLTHROTTLE is given twice".into()));
        }
        cl_throttle_seen = true;
        parsed.cl_throttle = yes_no(value).ok_or_else(|| {
            refusal(format!(
                "module argument CLTHROTTLE must be yes or no, not {}",
                quoted(value)
            ))
        })?;
        rest = tail;
    }
    Ok(parsed)
}

/// The arguments the server passed to `RedisModule_OnLoad`, parsed.
pub fn from_argv(
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> Result<ModuleArgs, String> {
    let count = usize::try_from(argc).unwrap_or(0);
    let args: Vec<&[u8]> = if argv.is_null() || count == 0 {
        Vec::new()
    } else {
        // SAFETY: the server passes `argc` strings at `argv`, alive for the
        // whole `RedisModule_OnLoad` call, which outlives this function.
        unsafe { std::slice::from_raw_parts(argv, count) }
            .iter()
            .map(|&arg| string_bytes(arg))
            .collect()
    };
    parse(&args)
}

fn yes_no(value: &[u8]) -> Option<bool> {
    if value.eq_ignore_ascii_case(b"yes") {
        Some(true)
    } else if value.eq_ignore_ascii_case(b"no") {
        Some(false)
    } else {
        None
    }
}

fn refusal(reason: String) -> String {
    format!("charon: refusing to load: {reason}")
}

/// An argument as a log line shows it: quoted, escaped, cut short.
fn quoted(arg: &[u8]) -> String {
    const SHOWN: usize = 64;
    let shown = &arg[..arg.len().min(SHOWN)];
    let more = if arg.len() > SHOWN { "..." } else { "" };
    format!("\"{}\"{more}", shown.escape_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Result<ModuleArgs, String> {
        let words: Vec<&[u8]> = text.split_whitespace().map(str::as_bytes).collect();
        parse(&words)
    }

    #[test]
    fn no_arguments_is_the_default() {
        assert_eq!(args(""), Ok(ModuleArgs { cl_throttle: false }));
    }

    #[test]
    fn clthrottle_takes_yes_or_no_in_any_case() {
        for (text, want) in [
            ("CLTHROTTLE yes", true),
            ("clthrottle YES", true),
            ("ClThrottle Yes", true),
            ("CLTHROTTLE no", false),
            ("CLTHROTTLE NO", false),
        ] {
            assert_eq!(args(text), Ok(ModuleArgs { cl_throttle: want }), "{text}");
        }
    }

    #[test]
    fn anything_else_refuses_the_load_naming_it() {
        for (text, names) in [
            ("BOGUS", "unknown module argument \"BOGUS\""),
            ("BOGUS yes", "unknown module argument \"BOGUS\""),
            (
                "CLTHROTTLE yes BOGUS no",
                "unknown module argument \"BOGUS\"",
            ),
            ("yes", "unknown module argument \"yes\""),
            ("CLTHROTTLE", "CLTHROTTLE needs a value"),
            (
                "CLTHROTTLE maybe",
                "CLTHROTTLE must be yes or no, not \"maybe\"",
            ),
            ("CLTHROTTLE 1", "CLTHROTTLE must be yes or no, not \"1\""),
            (
                "CLTHROTTLE true",
                "CLTHROTTLE must be yes or no, not \"true\"",
            ),
            ("CLTHROTTLE yes CLTHROTTLE no", "CLTHROTTLE is given twice"),
            ("CLTHROTTLE yes CLTHROTTLE", "CLTHROTTLE needs a value"),
        ] {
            let refusal = args(text).unwrap_err();
            assert!(
                refusal.starts_with("charon: refusing to load: "),
                "{refusal}"
            );
            assert!(refusal.contains(names), "{text}: {refusal}");
            assert!(!refusal.contains('\n'), "one line: {refusal}");
        }
    }

    #[test]
    fn odd_bytes_are_escaped_and_cut_short() {
        let refusal = parse(&[b"bad\n\xff\"arg"]).unwrap_err();
        assert!(refusal.contains(r#""bad\n\xff\"arg""#), "{refusal}");
        let long = vec![b'x'; 1000];
        let refusal = parse(&[&long]).unwrap_err();
        assert!(refusal.len() < 200, "{refusal}");
        assert!(refusal.contains("\"..."), "{refusal}");
        assert!(!refusal.contains('\n'));
    }
}
