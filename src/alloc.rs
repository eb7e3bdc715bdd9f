//! The allocator: mimalloc, and when it gives freed memory back to the system.
//!
//! mimalloc instead of glibc malloc: the hit path allocates a few small buffers per request
//! (header maps, `Cache-Status`), and glibc's malloc/free showed up as ~7% of a node's CPU in
//! `perf` on 1 KiB hits; mimalloc's thread-local free lists make that cheaper.
//!
//! Freed memory goes back to the system ("purged") [`PURGE_DELAY_MS`] after it was freed, and a
//! node runs [`collector`], which purges what has waited that long at least every
//! [`COLLECT_EVERY`]. Both halves matter:
//! * Purging at once (`purge_delay` 0) made every buffer of 16 KiB or more that a request frees
//!   go back to the system and be faulted in again by the next request: page faults, zeroed
//!   pages and `madvise` were a quarter of the CPU of a 16 KiB remote hit (perf, 200 keys).
//! * mimalloc purges only when some thread allocates or collects. With `purge_delay` 10 ms and
//!   nothing allocating, memory freed just before the node went idle would stay with the
//!   process. With the collector it goes back within [`COLLECT_EVERY`] plus the delay, whatever
//!   else runs. `tests/proxy/slow_readers.rs` measures the memory returned after load: 100
//!   clients of 8 MiB objects gone, the node is back under its baseline + what is stored +
//!   48 MiB (measured 82 MiB with 46 MiB baseline and 32 MiB stored).

use std::time::Duration;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: 15 in the `mi_option_t` of both the v3 sources that
/// libmimalloc-sys 0.1.49 builds by default and its v2 sources (the crate's `extended` bindings
/// do not name it). Recheck when libmimalloc-sys changes.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// How long freed memory waits before it is given back (mimalloc's own default).
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// How often an idle node purges what has waited [`PURGE_DELAY_MS`].
pub const COLLECT_EVERY: Duration = Duration::from_millis(100);

extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    fn mi_collect(force: bool);
}

/// Sets the purge delay; call before anything is allocated on other threads.
pub fn configure() {
    // SAFETY: mi_option_set only stores an option value; any option number and value is valid.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
}

/// Purges, every [`COLLECT_EVERY`], the memory freed at least [`PURGE_DELAY_MS`] ago (mimalloc's
/// arenas are shared by all threads) and collects the free pages of the worker thread it runs
/// on. Runs until the runtime stops.
pub async fn collector() {
    let mut tick = tokio::time::interval(COLLECT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // SAFETY: mi_collect only walks this thread's heap and the shared arenas.
        unsafe { mi_collect(false) }
    }
}
