//! The global allocator: the server's when the module runs inside one, the
//! system's otherwise.
//!
//! Inside Redis every allocation goes through `RedisModule_Alloc`, so the
//! server accounts for it (`used_memory`, `MEMORY USAGE`, `maxmemory`). The
//! same library is linked into unit tests, property tests and benchmarks,
//! where no server exists: there the system allocator serves. Nothing runs
//! before `RedisModule_OnLoad` fills in the server's functions, so the two
//! never mix within one process.

use std::alloc::{GlobalAlloc, Layout, System};

pub struct ModuleAlloc;

// SAFETY: both allocators return blocks of at least the size asked for,
// aligned to it (see `alloc`), and each block is freed by the allocator
// that made it (the two never mix within one process).
unsafe impl GlobalAlloc for ModuleAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match redis_module::raw::RedisModule_Alloc {
            // The server's allocator (jemalloc) aligns to the size class;
            // rounding the size up to the alignment keeps that true.
            Some(alloc) => alloc(layout.size().next_multiple_of(layout.align())).cast(),
            None => System.alloc(layout),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match redis_module::raw::RedisModule_Free {
            Some(free) => free(ptr.cast()),
            None => System.dealloc(ptr, layout),
        }
    }
}
