//! Starts real servers with the module loaded, on free loopback ports, each in
//! its own directory, and stops them (also when a test fails).
//!
//! Which server: `CHARON_SERVER_BIN` (default `/usr/bin/redis-server`), named
//! `CHARON_SERVER_NAME` (default `redis-7.0`), whose INFO must report
//! `CHARON_SERVER_VERSION` (default `7.0.15`): a silently different server
//! fails loudly. `make test` sets these from `servers/matrix.tsv`.

use redis::{Connection, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct ServerKind {
    pub name: String,
    pub binary: PathBuf,
    pub version: String,
}

impl ServerKind {
    pub fn from_env() -> ServerKind {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        ServerKind {
            name: var("CHARON_SERVER_NAME", "redis-7.0"),
            binary: var("CHARON_SERVER_BIN", "/usr/bin/redis-server").into(),
            version: var("CHARON_SERVER_VERSION", "7.0.15"),
        }
    }

    pub fn is_valkey(&self) -> bool {
        self.name.starts_with("valkey")
    }

    /// The server's version as (major, minor): Valkey's own numbering for
    /// Valkey.
    pub fn major_minor(&self) -> (u32, u32) {
        let mut parts = self.version.split('.').map(|p| p.parse().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    }

    /// Redis 7.0+ or any Valkey: command info, PEXPIRETIME,
    /// propagation-error-behavior, enable-debug-command.
    pub fn is_7_or_newer(&self) -> bool {
        self.is_valkey() || self.major_minor() >= (7, 0)
    }
}

/// Says on stderr why a check is skipped on this server (never silently).
pub fn skip(reason: &str) {
    eprintln!("skipped on {}: {reason}", ServerKind::from_env().name);
}

/// The module under test: next to the test binary's profile directory, or
/// `CHARON_MODULE`.
pub fn module_path() -> PathBuf {
    if let Ok(path) = std::env::var("CHARON_MODULE") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test binary>
    let profile_dir = exe.parent().and_then(Path::parent).expect("profile dir");
    let path = profile_dir.join("libcharon.so");
    assert!(path.exists(), "module not built: {}", path.display());
    path
}

fn free_port() -> u16 {
    // Cluster nodes also use port + 10000: keep below 55535.
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("local addr").port();
        if port < 55_000 {
            return port;
        }
    }
}

fn scratch_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "charon-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create server dir");
    dir
}

pub struct Server {
    pub kind: ServerKind,
    pub port: u16,
    pub dir: PathBuf,
    extra: Vec<String>,
    /// A configuration file to start from (it loads the module itself).
    config: Option<PathBuf>,
    child: Option<Child>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// A server with extra configuration (`["appendonly", "yes"]` pairs are
    /// passed as `--appendonly yes`).
    pub fn start_with(extra: &[&str]) -> Server {
        Server::start_from(None, extra)
    }

    /// A server started from a configuration file (as `make run` does), on
    /// its own port and directory.
    pub fn start_from_config(config: &Path) -> Server {
        Server::start_from(Some(config.to_path_buf()), &[])
    }

    fn start_from(config: Option<PathBuf>, extra: &[&str]) -> Server {
        let mut server = Server {
            kind: ServerKind::from_env(),
            port: free_port(),
            dir: scratch_dir(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            config,
            child: None,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let mut args: Vec<String> = Vec::new();
        if let Some(config) = &self.config {
            // The configuration loads ./target/release/libcharon.so relative
            // to where the server runs: put the module under test there.
            let link = self.dir.join("target/release/libcharon.so");
            if !link.exists() {
                std::fs::create_dir_all(link.parent().unwrap()).unwrap();
                std::os::unix::fs::symlink(module_path(), &link).unwrap();
            }
            args.push(config.display().to_string());
        }
        args.extend([
            "--port".into(),
            self.port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            self.dir.display().to_string(),
            "--logfile".into(),
            self.dir.join("server.log").display().to_string(),
            "--save".into(),
            "".into(),
        ]);
        if self.config.is_none() {
            args.extend(["--loadmodule".into(), module_path().display().to_string()]);
        }
        if self.kind.is_7_or_newer() {
            args.extend(["--enable-debug-command".into(), "yes".into()]);
        }
        args.extend(self.extra.iter().cloned());
        let child = Command::new(&self.kind.binary)
            .args(&args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.kind.binary.display()));
        self.child = Some(child);
        self.wait_ready();
        self.check_version();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "server exited ({status}) during start:\n{}",
                        self.log_tail()
                    );
                }
            }
            if let Ok(mut con) = connect(self.port) {
                // LOADING answers an error until the dataset is in memory.
                if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("server did not answer in time:\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn check_version(&self) {
        let info = self.info("server");
        let field = if self.kind.is_valkey() {
            "valkey_version"
        } else {
            "redis_version"
        };
        let found = info_field(&info, field).unwrap_or_default();
        assert_eq!(
            found, self.kind.version,
            "{} reports {field}:{found}, expected {}",
            self.kind.name, self.kind.version
        );
    }

    pub fn con(&self) -> Connection {
        connect(self.port).expect("connect to the server")
    }

    pub fn info(&self, section: &str) -> String {
        redis::cmd("INFO")
            .arg(section)
            .query(&mut self.con())
            .expect("INFO")
    }

    /// The server log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The last 40 lines of the server log.
    pub fn log_tail(&self) -> String {
        let log = self.log_text();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Stops the server the way an operator would: `SHUTDOWN` (saving if
    /// persistence is configured), waiting for the process to end.
    pub fn shutdown(&mut self, save: bool) {
        let mut con = self.con();
        let _ = redis::cmd("SHUTDOWN")
            .arg(if save { "SAVE" } else { "NOSAVE" })
            .query::<Value>(&mut con);
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("server did not shut down in time:\n{}", self.log_tail());
        }
    }

    /// Kills the process (`SIGKILL`): a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same server again, on the same port and directory.
    pub fn restart(&mut self) {
        self.launch();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- {} log ({}) ---\n{}",
                self.kind.name,
                self.dir.display(),
                self.log_tail()
            );
        }
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A new connection to the server on `port` of this machine.
pub fn connect(port: u16) -> redis::RedisResult<Connection> {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))?
        .get_connection_with_timeout(Duration::from_secs(5))
}

pub fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(|value| value.trim().to_string())
}

pub fn info_u64(info: &str, field: &str) -> u64 {
    info_field(info, field)
        .unwrap_or_else(|| panic!("no {field} in INFO:\n{info}"))
        .parse()
        .expect("integer INFO field")
}
