//! Primaries and replicas: starting a replica, waiting until it has
//! everything, and comparing what it holds with its primary.

use crate::support::commands::{dbsize, digest};
use crate::support::harness::{info_field, info_u64, skip, Server, ServerKind};
use crate::support::wait::wait_until;
use redis::Connection;

/// Configuration that makes a replica fail loudly: with
/// `propagation-error-behavior panic` (7.0+), a state command it fails to
/// apply kills it. Older servers have no such setting: says so, and
/// answers none.
pub fn loud_replica_args(kind: &ServerKind) -> &'static [&'static str] {
    if kind.is_7_or_newer() {
        &["--propagation-error-behavior", "panic"]
    } else {
        skip("propagation-error-behavior needs 7.0: replica errors show in digests only");
        &[]
    }
}

/// A replica of the server on `port`, failing loudly where it can, with
/// `extra` configuration after the rest; answered once its link is up.
pub fn start_replica(port: u16, extra: &[&str]) -> Server {
    let port = port.to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", port.as_str()];
    args.extend(loud_replica_args(&ServerKind::from_env()));
    args.extend(extra);
    let replica = Server::start_with(&args);
    wait_until("replica link up", || {
        info_field(&replica.info("replication"), "master_link_status").as_deref() == Some("up")
    });
    replica
}

/// Waits until every replica has applied everything the primary has sent
/// (chained replicas share the primary's offsets).
pub fn wait_replicated(primary: &Server, replicas: &[&Server]) {
    let offset = info_u64(&primary.info("replication"), "master_repl_offset");
    for replica in replicas {
        wait_until(
            &format!("replica on port {} caught up", replica.port),
            || {
                let info = replica.info("replication");
                info_field(&info, "master_link_status").as_deref() == Some("up")
                    && info_u64(&info, "slave_repl_offset") >= offset
            },
        );
    }
}

/// `WAIT replicas` on the connection that wrote: how many acknowledged.
pub fn wait_acks(con: &mut Connection, replicas: usize) -> usize {
    redis::cmd("WAIT")
        .arg(replicas)
        .arg(10_000)
        .query(con)
        .expect("WAIT")
}

/// Asserts that `keys` have the same digest on `replica` as on `primary`
/// (and that the key counts match).
pub fn assert_digest_equal(primary: &Server, replica: &Server, keys: &[String], what: &str) {
    let (mut a, mut b) = (primary.con(), replica.con());
    assert_eq!(
        dbsize(&mut b),
        dbsize(&mut a),
        "{what}: key count on port {} vs port {}",
        replica.port,
        primary.port
    );
    for key in keys {
        let expected = digest(&mut a, key);
        assert_eq!(digest(&mut b, key), expected, "{what}: digest of {key}");
    }
}

/// The commands a server has run, lowercased (`cmdstat_charon.rate:...`).
pub fn command_stats(server: &Server) -> String {
    server.info("commandstats").to_lowercase()
}
