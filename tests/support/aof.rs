//! A server's append-only file: one `appendonly.aof` in the data directory
//! before Redis 7.0; from 7.0 (and in Valkey) a directory, `appendonlydir/`,
//! whose manifest names the files.

use crate::support::harness::Server;

/// The text of every AOF file (one file before 7.0, a directory after).
pub fn aof_text(server: &Server) -> String {
    let mut paths = vec![server.dir.join("appendonly.aof")];
    if let Ok(entries) = std::fs::read_dir(server.dir.join("appendonlydir")) {
        paths.extend(entries.flatten().map(|e| e.path()));
    }
    paths
        .iter()
        .filter_map(|path| std::fs::read(path).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .collect()
}

/// Writes `commands` as the server's whole append-only file (on 7.0+, one
/// incremental file and no base).
pub fn write_aof(server: &Server, commands: &[u8]) {
    let _ = std::fs::remove_file(server.dir.join("appendonly.aof"));
    let _ = std::fs::remove_dir_all(server.dir.join("appendonlydir"));
    if server.kind.is_7_or_newer() {
        let dir = server.dir.join("appendonlydir");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("appendonly.aof.1.incr.aof"), commands).unwrap();
        std::fs::write(
            dir.join("appendonly.aof.manifest"),
            "file appendonly.aof.1.incr.aof seq 1 type i\n",
        )
        .unwrap();
    } else {
        std::fs::write(server.dir.join("appendonly.aof"), commands).unwrap();
    }
}
