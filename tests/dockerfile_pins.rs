//! The Dockerfile's pins and wiring, checked without a Docker engine.
//!
//! Every base image is pinned by digest, the Redis tarball by sha256 (each
//! value written once and checked with `sha256sum -c` before it is unpacked),
//! the module is built `--locked`, the configuration loads the module from the
//! path the image copies it to, the health check asks `MODULE LIST`, and the
//! server does not run as root.

use std::fs;
use std::path::{Path, PathBuf};

const DOCKERFILE: &str = "Dockerfile";
const MODULE_FILE: &str = "libcharon.so";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path: PathBuf = repo().join(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// One Dockerfile instruction: its keyword (upper case), its arguments with
/// line continuations joined, and the line it starts on.
#[derive(Debug, Clone)]
struct Instr {
    keyword: String,
    args: String,
    line: usize,
}

fn instructions(text: &str) -> Vec<Instr> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        // Comment lines are dropped, also inside a continued instruction.
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        let (continues, body) = match trimmed.strip_suffix('\\') {
            Some(b) => (true, b.trim_end()),
            None => (false, trimmed),
        };
        let (start, mut acc) = current.take().unwrap_or((i + 1, String::new()));
        if !acc.is_empty() && !body.is_empty() {
            acc.push(' ');
        }
        acc.push_str(body);
        if continues {
            current = Some((start, acc));
        } else if !acc.is_empty() {
            let (keyword, args) = acc
                .split_once(char::is_whitespace)
                .unwrap_or((acc.as_str(), ""));
            out.push(Instr {
                keyword: keyword.to_ascii_uppercase(),
                args: args.trim().to_string(),
                line: start,
            });
        }
    }
    if let Some((start, acc)) = current {
        panic!("{DOCKERFILE}:{start}: instruction ends in a line continuation: {acc}");
    }
    out
}

fn dockerfile() -> (String, Vec<Instr>) {
    let text = read(DOCKERFILE);
    let instrs = instructions(&text);
    assert!(!instrs.is_empty(), "{DOCKERFILE} has no instructions");
    (text, instrs)
}

/// The instructions of the last stage (after the last FROM).
fn final_stage(instrs: &[Instr]) -> &[Instr] {
    let last_from = instrs
        .iter()
        .rposition(|i| i.keyword == "FROM")
        .unwrap_or_else(|| panic!("{DOCKERFILE} has no FROM"));
    &instrs[last_from..]
}

/// Arguments without leading `--flag` / `--flag=value` options.
fn positional(args: &str) -> Vec<&str> {
    args.split_whitespace()
        .skip_while(|w| w.starts_with("--"))
        .collect()
}

/// The strings of a JSON-array (exec form) argument list, e.g. `CMD ["a", "b"]`.
fn exec_form(args: &str) -> Option<Vec<String>> {
    let inner = args.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut items = Vec::new();
    let mut chars = inner.chars();
    loop {
        match chars.by_ref().find(|c| !c.is_whitespace() && *c != ',') {
            None => return Some(items),
            Some('"') => {}
            Some(_) => return None,
        }
        let mut item = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => item.push(chars.next()?),
                c => item.push(c),
            }
        }
        items.push(item);
    }
}

/// The value of `ARG name=value` (the one that carries a value).
fn arg_value(instrs: &[Instr], name: &str) -> String {
    let prefix = format!("{name}=");
    let values: Vec<&str> = instrs
        .iter()
        .filter(|i| i.keyword == "ARG")
        .filter_map(|i| i.args.strip_prefix(prefix.as_str()))
        .collect();
    assert_eq!(
        values.len(),
        1,
        "{DOCKERFILE}: expected exactly one `ARG {name}=<value>`, found {values:?}"
    );
    values[0].trim_matches('"').to_string()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn every_from_is_pinned_by_digest() {
    let (_, instrs) = dockerfile();
    let froms: Vec<&Instr> = instrs.iter().filter(|i| i.keyword == "FROM").collect();
    assert!(!froms.is_empty(), "{DOCKERFILE} has no FROM");
    for from in froms {
        let image = positional(&from.args).first().copied().unwrap_or("");
        let digest = image.split_once("@sha256:").map(|(_, d)| d);
        assert!(
            digest.is_some_and(|d| is_hex(d, 64)),
            "{DOCKERFILE}:{}: `FROM {}` is not pinned: the image must end in @sha256:<64 lowercase hex digits>",
            from.line,
            from.args
        );
    }
}

#[test]
fn redis_version_is_written_once() {
    let (text, instrs) = dockerfile();
    let version = arg_value(&instrs, "REDIS_VERSION");
    let parts: Vec<&str> = version.split('.').collect();
    assert!(
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
        "{DOCKERFILE}: REDIS_VERSION={version} is not an exact x.y.z release"
    );
    let count = text.matches(version.as_str()).count();
    assert_eq!(count, 1, "{DOCKERFILE}: the Redis version {version} appears {count} times; write it once (ARG REDIS_VERSION) and use ${{REDIS_VERSION}}");
    assert!(
        text.contains("redis-${REDIS_VERSION}.tar.gz"),
        "{DOCKERFILE}: the Redis tarball URL must be built from ${{REDIS_VERSION}}"
    );
    assert!(
        text.contains("v=${REDIS_VERSION}"),
        "{DOCKERFILE}: the build must check that `redis-server --version` reports v=${{REDIS_VERSION}}"
    );
}

#[test]
fn redis_sha256_is_written_once() {
    let (text, instrs) = dockerfile();
    let sha = arg_value(&instrs, "REDIS_SHA256");
    assert!(
        is_hex(&sha, 64),
        "{DOCKERFILE}: REDIS_SHA256={sha} is not 64 lowercase hex digits"
    );
    let count = text.matches(sha.as_str()).count();
    assert_eq!(
        count, 1,
        "{DOCKERFILE}: the Redis sha256 appears {count} times; write it once (ARG REDIS_SHA256)"
    );
}

#[test]
fn tarball_is_checked_before_it_is_unpacked() {
    let (_, instrs) = dockerfile();
    let run = instrs
        .iter()
        .find(|i| i.keyword == "RUN" && i.args.contains("sha256sum -c"))
        .unwrap_or_else(|| {
            panic!("{DOCKERFILE}: no RUN checks the Redis tarball with `sha256sum -c`")
        });
    assert!(
        run.args.contains("${REDIS_SHA256}"),
        "{DOCKERFILE}:{}: the `sha256sum -c` must check against ${{REDIS_SHA256}}",
        run.line
    );
    let check = run.args.find("sha256sum -c").unwrap();
    let unpack = run.args.find("tar ").unwrap_or_else(|| {
        panic!(
            "{DOCKERFILE}:{}: the RUN that checks the tarball must also unpack it (tar)",
            run.line
        )
    });
    assert!(
        check < unpack,
        "{DOCKERFILE}:{}: the tarball is unpacked before its sha256 is checked",
        run.line
    );
    let fetch = run.args.find("redis-${REDIS_VERSION}.tar.gz");
    assert!(
        fetch.is_some_and(|f| f < check),
        "{DOCKERFILE}:{}: the RUN that checks the tarball must be the one that downloads it",
        run.line
    );
}

#[test]
fn module_is_built_locked() {
    let (_, instrs) = dockerfile();
    let builds: Vec<&Instr> = instrs
        .iter()
        .filter(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
        .collect();
    assert!(
        !builds.is_empty(),
        "{DOCKERFILE}: no RUN builds the module with `cargo build`"
    );
    for b in builds {
        assert!(
            b.args.contains("--locked") && b.args.contains("--release"),
            "{DOCKERFILE}:{}: `{}` must use --release --locked",
            b.line,
            b.args
        );
    }
}

/// The destination of the final stage's `COPY --from=module ... libcharon.so`.
fn module_copy(stage: &[Instr]) -> String {
    let copies: Vec<&Instr> = stage
        .iter()
        .filter(|i| i.keyword == "COPY" && i.args.split_whitespace().any(|w| w == "--from=module"))
        .filter(|i| positional(&i.args).iter().any(|w| w.ends_with(MODULE_FILE)))
        .collect();
    assert_eq!(
        copies.len(),
        1,
        "{DOCKERFILE}: the final stage must have one `COPY --from=module ... {MODULE_FILE} <dest>`"
    );
    let words = positional(&copies[0].args);
    let dest = words.last().unwrap().to_string();
    assert!(
        dest.ends_with(&format!("/{MODULE_FILE}")),
        "{DOCKERFILE}:{}: copy the module to a full file path ending in /{MODULE_FILE}, not `{dest}`",
        copies[0].line
    );
    dest
}

fn config_words(conf: &str, directive: &str) -> Vec<String> {
    conf.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once(char::is_whitespace)?;
            k.eq_ignore_ascii_case(directive)
                .then(|| v.trim().to_string())
        })
        .collect()
}

#[test]
fn configuration_loads_the_module_from_where_it_is_copied() {
    let (_, instrs) = dockerfile();
    let stage = final_stage(&instrs);
    let module_dest = module_copy(stage);

    let cmd = stage
        .iter()
        .rfind(|i| i.keyword == "CMD")
        .unwrap_or_else(|| panic!("{DOCKERFILE}: the final stage has no CMD"));
    let argv = exec_form(&cmd.args).unwrap_or_else(|| {
        panic!(
            "{DOCKERFILE}:{}: CMD must be in exec form: [\"redis-server\", ...]",
            cmd.line
        )
    });
    assert_eq!(
        argv.first().map(String::as_str),
        Some("redis-server"),
        "{DOCKERFILE}:{}: CMD must run redis-server",
        cmd.line
    );

    // Module paths the server is told to load: --loadmodule on the command
    // line, and loadmodule in the configuration file CMD names.
    let mut loaded: Vec<String> = argv
        .windows(2)
        .filter(|w| w[0] == "--loadmodule")
        .map(|w| w[1].clone())
        .collect();
    if let Some(conf_path) = argv.get(1).filter(|a| !a.starts_with("--")) {
        let copy = stage
            .iter()
            .filter(|i| i.keyword == "COPY" && !i.args.contains("--from="))
            .find(|i| positional(&i.args).last() == Some(&conf_path.as_str()))
            .unwrap_or_else(|| {
                panic!("{DOCKERFILE}:{}: CMD reads {conf_path}, but no COPY from the repo puts a file there", cmd.line)
            });
        let words = positional(&copy.args);
        assert_eq!(
            words.len(),
            2,
            "{DOCKERFILE}:{}: copy the configuration file alone",
            copy.line
        );
        let conf = read(words[0]);
        loaded.extend(
            config_words(&conf, "loadmodule")
                .iter()
                .map(|v| v.split_whitespace().next().unwrap_or("").to_string()),
        );
    }
    assert!(
        !loaded.is_empty(),
        "{DOCKERFILE}: neither CMD nor its configuration file loads a module"
    );
    for path in &loaded {
        assert_eq!(
            path, &module_dest,
            "the server loads the module from {path}, but the image copies it to {module_dest}"
        );
    }
}

#[test]
fn healthcheck_asks_module_list_for_charon() {
    let (_, instrs) = dockerfile();
    let hc = final_stage(&instrs)
        .iter()
        .rfind(|i| i.keyword == "HEALTHCHECK")
        .unwrap_or_else(|| panic!("{DOCKERFILE}: the final stage has no HEALTHCHECK"));
    assert!(
        hc.args.contains("MODULE LIST") && hc.args.contains("charon"),
        "{DOCKERFILE}:{}: the HEALTHCHECK must check that `MODULE LIST` names charon: {}",
        hc.line,
        hc.args
    );
}

#[test]
fn server_does_not_run_as_root() {
    let (_, instrs) = dockerfile();
    let user = final_stage(&instrs)
        .iter()
        .rfind(|i| i.keyword == "USER")
        .unwrap_or_else(|| {
            panic!("{DOCKERFILE}: the final stage has no USER, so the server would run as root")
        });
    let name = user.args.split(':').next().unwrap_or("").trim();
    assert!(
        !name.is_empty() && name != "root" && name != "0",
        "{DOCKERFILE}:{}: `USER {}` runs the server as root",
        user.line,
        user.args
    );
}

#[test]
fn parser_reads_continuations_and_exec_form() {
    let instrs = instructions(
        "FROM a@sha256:x AS b\n# c\nRUN one \\\n  # inner comment\n  two\nCMD [\"x\", \"y z\"]\n",
    );
    let kinds: Vec<&str> = instrs.iter().map(|i| i.keyword.as_str()).collect();
    assert_eq!(kinds, ["FROM", "RUN", "CMD"]);
    assert_eq!(instrs[1].args, "one two");
    assert_eq!(instrs[1].line, 3);
    assert_eq!(
        exec_form(&instrs[2].args),
        Some(vec!["x".to_string(), "y z".to_string()])
    );
    assert_eq!(exec_form("redis-server /etc/x.conf"), None);
}
