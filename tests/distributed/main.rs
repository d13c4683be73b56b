//! Distributed and durable: buckets in a Redis Cluster (routing, resharding,
//! failover, a master crash), in replication chains and resyncs, and
//! through crashes with AOF or RDB persistence.

#[path = "../support/mod.rs"]
#[allow(dead_code)]
mod support;

mod cluster;
mod crash_recovery;
mod in_cluster;
mod replication;
mod waiters;
