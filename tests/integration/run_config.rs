//! The repository's `redis.conf` (what `make run` starts) loads the module.

use crate::support::*;
use std::path::Path;

#[test]
fn repository_config_loads_the_module() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("redis.conf");
    let server = Server::start_from_config(&config);
    let mut con = server.con();
    assert_eq!(
        rate(&mut con, "user:1", &["10", "10", "1s"]),
        [0, 10, 9, -1, 100]
    );
}
