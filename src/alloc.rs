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
//! * Purging after 10 ms (mimalloc's documented default) did the same at a smaller scale: pages
//!   that requests' futures and buffers fill and empty went back between two bursts of
//!   requests and were faulted in again, 8,000 page faults and 600 `madvise` calls in a 4 s
//!   run of 1 KiB POSTs (`perf stat`, 50 clients); 250 ms outlasts such gaps.
//! * mimalloc purges only when some thread allocates or collects. With `purge_delay` and
//!   nothing allocating, memory freed just before the node went idle would stay with the
//!   process. With the collector it goes back within [`COLLECT_EVERY`] plus the delay, whatever
//!   else runs. `tests/proxy/slow_readers.rs` measures the memory returned after load: 100
//!   clients of 8 MiB objects gone, the node is back under its baseline + what is stored +
//!   48 MiB (measured 82 MiB with 46 MiB baseline and 32 MiB stored).
//!
//! Allocations go to mimalloc's plain `mi_malloc` family when their alignment is one it gives
//! every block anyway (at most 16 bytes, and no more than the size: the rule std's own system
//! allocator uses for `malloc`), to the `_aligned` family otherwise. The `mimalloc` crate's
//! allocator sends every allocation to the `_aligned` family, which for a block over 1 KiB
//! whose size class is not a power of two takes a slow path (an over-allocation fallback):
//! 2 to 4 of those per remote hit, a few hundred instructions each (callgrind).

use std::alloc::{GlobalAlloc, Layout};
use std::time::Duration;

/// mimalloc, as described in the module doc.
struct Mimalloc;

/// The alignment every `mi_malloc` block of at least this size has (mimalloc's
/// `MI_MAX_ALIGN_SIZE`: its size classes above one word are multiples of 16 bytes, and a
/// page's first block is 16-aligned).
const PLAIN_ALIGN: usize = 16;

fn plain(align: usize, size: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

// SAFETY: every block comes from mimalloc and goes back to it (`mi_free` takes blocks of both
// families); the plain family is used only where its blocks have the alignment asked for.
unsafe impl GlobalAlloc for Mimalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain(layout.align(), layout.size()) {
            mi_malloc(layout.size()).cast()
        } else {
            mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain(layout.align(), layout.size()) {
            mi_zalloc(layout.size()).cast()
        } else {
            mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi_free(ptr.cast());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if plain(layout.align(), new_size) {
            mi_realloc(ptr.cast(), new_size).cast()
        } else {
            mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
        }
    }
}

#[global_allocator]
static GLOBAL: Mimalloc = Mimalloc;

/// mimalloc's `mi_option_purge_delay`: 15 in the `mi_option_t` of both the v3 sources that
/// libmimalloc-sys 0.1.49 builds by default and its v2 sources (the crate's `extended` bindings
/// do not name it). Recheck when libmimalloc-sys changes.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// How long freed memory waits before it is given back.
const PURGE_DELAY_MS: std::ffi::c_long = 250;

/// How often an idle node purges what has waited [`PURGE_DELAY_MS`].
pub const COLLECT_EVERY: Duration = Duration::from_millis(100);

// mimalloc's own API, from the library libmimalloc-sys builds and links.
use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

// Not in libmimalloc-sys's default bindings (its `extended` feature would bring them).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_the_alignment_asked_for_through_alloc_and_realloc() {
        let a = Mimalloc;
        for (size, align) in [
            (1, 1),
            (8, 8),
            (24, 16),
            (8, 16),
            (1400, 1),
            (3000, 8),
            (64, 64),
            (100, 4096),
        ] {
            let layout = Layout::from_size_align(size, align).expect("a layout");
            // SAFETY: a non-zero layout; each block is freed once, with its layout.
            unsafe {
                let p = a.alloc(layout);
                assert!(
                    !p.is_null() && (p as usize).is_multiple_of(align),
                    "{size}/{align}"
                );
                p.write_bytes(0xab, size);
                let q = a.realloc(p, layout, size * 3);
                assert!(
                    !q.is_null() && (q as usize).is_multiple_of(align),
                    "realloc {size}/{align}"
                );
                assert_eq!(*q.add(size - 1), 0xab);
                a.dealloc(
                    q,
                    Layout::from_size_align(size * 3, align).expect("a layout"),
                );
                let z = a.alloc_zeroed(layout);
                assert!((z as usize).is_multiple_of(align) && (0..size).all(|i| *z.add(i) == 0));
                a.dealloc(z, layout);
            }
        }
    }
}
