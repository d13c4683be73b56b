//! A Redis Cluster on loopback for the tests: 3 masters and 3 replicas, the
//! module loaded on every node, created and resharded with the server's own
//! CLI (`CHARON_CLI_BIN`, default `/usr/bin/redis-cli`).

use crate::support::*;
use redis::cluster::{ClusterClient, ClusterConnection};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

pub const SLOTS: usize = 16384;

/// Small, so a crashed master is replaced in seconds; large enough that a
/// busy machine does not fail nodes over by accident.
const NODE_TIMEOUT_MS: &str = "2000";

/// One node as `CLUSTER NODES` describes it.
#[derive(Clone, Debug)]
pub struct Node {
    pub id: String,
    pub port: u16,
    /// The master's id when this node is a replica.
    pub master_id: Option<String>,
    pub failed: bool,
    /// Slot ranges it serves (inclusive).
    pub slots: Vec<(usize, usize)>,
}

impl Node {
    pub fn is_master(&self) -> bool {
        self.master_id.is_none()
    }
}

pub struct Cluster {
    servers: Vec<Server>,
    /// Ports of the nodes the test killed.
    dead: Vec<u16>,
    cli: PathBuf,
}

impl Cluster {
    /// Six nodes, joined by `--cluster create ... --cluster-replicas 1`,
    /// once every node agrees on who serves every slot.
    pub fn start() -> Cluster {
        let kind = ServerKind::from_env();
        let mut args = vec![
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            NODE_TIMEOUT_MS,
            // A replica's first sync starts at once (7.0+ waits 5 s).
            "--repl-diskless-sync-delay",
            "0",
        ];
        args.extend(loud_replica_args(&kind));
        let servers: Vec<Server> = (0..6).map(|_| start_node(&args)).collect();
        let cluster = Cluster {
            servers,
            dead: Vec::new(),
            cli: std::env::var("CHARON_CLI_BIN")
                .unwrap_or_else(|_| "/usr/bin/redis-cli".into())
                .into(),
        };
        let mut create = vec!["--cluster".to_string(), "create".to_string()];
        create.extend(
            cluster
                .servers
                .iter()
                .map(|s| format!("127.0.0.1:{}", s.port)),
        );
        create.extend(["--cluster-replicas", "1", "--cluster-yes"].map(String::from));
        cluster.cli(&create);
        cluster.wait_converged();
        assert_eq!(cluster.masters().len(), 3, "3 masters");
        cluster
    }

    /// Runs the CLI (`--cluster ...`); fails the test if it fails.
    pub fn cli(&self, args: &[String]) -> String {
        let output = Command::new(&self.cli)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.cli.display()));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success() && !stdout.contains("[ERR]"),
            "{} {args:?} failed ({}):\n{stdout}\n{}",
            self.cli.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    pub fn server(&self, port: u16) -> &Server {
        self.servers
            .iter()
            .find(|s| s.port == port)
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }

    fn alive(&self) -> impl Iterator<Item = &Server> {
        self.servers.iter().filter(|s| !self.dead.contains(&s.port))
    }

    /// Kills a node (`SIGKILL`): a crash.
    pub fn kill(&mut self, port: u16) {
        let server = self
            .servers
            .iter_mut()
            .find(|s| s.port == port)
            .unwrap_or_else(|| panic!("no node on port {port}"));
        server.kill();
        self.dead.push(port);
    }

    /// The cluster as one live node sees it (failed nodes included).
    pub fn nodes_seen_by(&self, server: &Server) -> Vec<Node> {
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query(&mut server.con())
            .expect("CLUSTER NODES");
        text.lines().filter_map(parse_node).collect()
    }

    /// The cluster as the first live node sees it.
    pub fn nodes(&self) -> Vec<Node> {
        self.nodes_seen_by(self.alive().next().expect("a live node"))
    }

    /// The masters that serve slots, in order of their first slot.
    pub fn masters(&self) -> Vec<Node> {
        let mut masters: Vec<Node> = self
            .nodes()
            .into_iter()
            .filter(|n| n.is_master() && !n.failed && !n.slots.is_empty())
            .collect();
        masters.sort_by_key(|n| n.slots[0].0);
        masters
    }

    /// The live replica of the master `master_id`.
    pub fn replica_of(&self, master_id: &str) -> Node {
        let nodes = self.nodes();
        nodes
            .iter()
            .find(|n| n.master_id.as_deref() == Some(master_id) && !n.failed)
            .cloned()
            .unwrap_or_else(|| panic!("no replica of {master_id} in {nodes:#?}"))
    }

    /// The port of the master serving each slot, once all agree.
    pub fn owners(&self) -> Vec<u16> {
        self.wait_converged();
        self.slot_map_of(&self.nodes())
    }

    /// Waits until the cluster is whole and settled: every live node says
    /// `cluster_state:ok`; all see the same master for every slot (a live
    /// one) and the same role for every live node; every node's INFO agrees
    /// with its role, and every replica's link to its master is up.
    pub fn wait_converged(&self) {
        wait_until("the cluster to converge", || self.converged());
    }

    fn converged(&self) -> bool {
        // Who serves each slot, and every live node's role.
        type View = (Vec<u16>, Vec<(u16, Option<u16>)>);
        let mut reference: Option<View> = None;
        for server in self.alive() {
            // `None` while the node does not answer.
            let Ok(mut con) = connect(server.port) else {
                return false;
            };
            let info: String = match redis::cmd("CLUSTER").arg("INFO").query(&mut con) {
                Ok(info) => info,
                Err(_) => return false,
            };
            if info_field(&info, "cluster_state").as_deref() != Some("ok") {
                return false;
            }
            let text: String = match redis::cmd("CLUSTER").arg("NODES").query(&mut con) {
                Ok(text) => text,
                Err(_) => return false,
            };
            let nodes: Vec<Node> = text.lines().filter_map(parse_node).collect();
            let view = (self.slot_map_of(&nodes), self.roles_of(&nodes));
            if view.0.contains(&0) {
                return false;
            }
            match &reference {
                None => reference = Some(view),
                Some(first) if *first != view => return false,
                Some(_) => {}
            }
            let Some(myself) = nodes.iter().find(|n| n.port == server.port) else {
                return false;
            };
            let replication: String = match redis::cmd("INFO").arg("replication").query(&mut con) {
                Ok(info) => info,
                Err(_) => return false,
            };
            let role = info_field(&replication, "role");
            if myself.is_master() {
                if role.as_deref() != Some("master") {
                    return false;
                }
            } else if role.as_deref() != Some("slave")
                || info_field(&replication, "master_link_status").as_deref() != Some("up")
            {
                return false;
            }
        }
        true
    }

    /// For every slot, the port of the live master serving it (0: none).
    fn slot_map_of(&self, nodes: &[Node]) -> Vec<u16> {
        let mut map = vec![0; SLOTS];
        for node in nodes {
            if node.is_master() && !node.failed && !self.dead.contains(&node.port) {
                for &(a, b) in &node.slots {
                    map[a..=b].fill(node.port);
                }
            }
        }
        map
    }

    /// Every live node's port and, for a replica, its master's port.
    fn roles_of(&self, nodes: &[Node]) -> Vec<(u16, Option<u16>)> {
        let port_of = |id: &str| nodes.iter().find(|n| n.id == id).map_or(0, |n| n.port);
        let mut roles: Vec<(u16, Option<u16>)> = nodes
            .iter()
            .filter(|n| !n.failed && !self.dead.contains(&n.port))
            .map(|n| (n.port, n.master_id.as_deref().map(port_of)))
            .collect();
        roles.sort();
        roles
    }

    /// A cluster client that knows every live node.
    pub fn client(&self) -> ClusterConnection {
        let urls: Vec<String> = self
            .alive()
            .map(|s| format!("redis://127.0.0.1:{}/", s.port))
            .collect();
        ClusterClient::builder(urls)
            .connection_timeout(Duration::from_secs(5))
            .response_timeout(Duration::from_secs(10))
            .build()
            .expect("cluster client")
            .get_connection()
            .expect("cluster connection")
    }
}

/// A node. Its cluster bus listens on its port + 10000, which nothing
/// reserved: a client connection may hold it (loopback connections take
/// their local ports from the same range). The server then exits at start,
/// saying so; another port is tried.
fn start_node(args: &[&str]) -> Server {
    let mut attempts = 0;
    loop {
        match std::panic::catch_unwind(|| Server::start_with(args)) {
            Ok(server) => return server,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .unwrap_or_default();
                attempts += 1;
                if attempts == 5 || !message.contains("(cluster), aborting") {
                    std::panic::resume_unwind(panic);
                }
                eprintln!("cluster bus port in use: starting the node on another port");
            }
        }
    }
}

/// One line of `CLUSTER NODES`:
/// `<id> <ip:port@bus[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`
fn parse_node(line: &str) -> Option<Node> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 8 {
        return None;
    }
    let address = fields[1].split(['@', ',']).next()?;
    let port = address.rsplit(':').next()?.parse().ok()?;
    let flags: Vec<&str> = fields[2].split(',').collect();
    let replica = flags.contains(&"slave") || flags.contains(&"replica");
    let slots = fields[8..]
        .iter()
        // `[slot->-id]` / `[slot-<-id]`: a migration in progress, not owned.
        .filter(|s| !s.starts_with('['))
        .filter_map(|s| match s.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => s.parse().ok().map(|x| (x, x)),
        })
        .collect();
    Some(Node {
        id: fields[0].to_string(),
        port,
        master_id: replica.then(|| fields[3].to_string()),
        failed: flags.contains(&"fail") || flags.contains(&"noaddr"),
        slots,
    })
}

/// The slot of a key: CRC16 (XMODEM) of the key, or of its hash tag (the
/// part between the first `{` and the next `}`, when not empty), mod 16384.
pub fn keyslot(key: &[u8]) -> usize {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    let mut crc: u16 = 0;
    for &byte in hashed {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    usize::from(crc) % SLOTS
}

/// Groups keys by the port of the master serving them.
pub fn by_owner<'k>(owners: &[u16], keys: &'k [String]) -> HashMap<u16, Vec<&'k String>> {
    let mut groups: HashMap<u16, Vec<&String>> = HashMap::new();
    for key in keys {
        groups
            .entry(owners[keyslot(key.as_bytes())])
            .or_default()
            .push(key);
    }
    groups
}
