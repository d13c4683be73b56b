//! Every form a bucket takes outside memory, one file per form, each with
//! the version it writes. A change of a form adds a version and a decoder;
//! the decoders of every version ever written stay, so what an older
//! Charon wrote (an RDB file, a `DUMP` payload, a replication stream, an
//! AOF file) loads into a newer one.
//!
//! - `rdb`: the RDB and `DUMP` encoding, by the type's `encver`.
//! - `packed`: the one-argument state the primary replicates.
//! - `readable`: the decimal state AOF rewrite writes.

pub mod packed;
pub mod rdb;
pub mod readable;
