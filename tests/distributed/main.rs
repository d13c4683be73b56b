//! Distributed and durable: buckets in a Redis Cluster (routing, resharding,
//! failover, a master crash), in replication chains and resyncs, and
//! through crashes with AOF or RDB persistence.

#[path = "../integration/harness.rs"]
#[allow(dead_code)]
mod harness;

mod cluster;
mod crash_recovery;
mod in_cluster;
mod replication;
mod support;
