//! The connection table (`conns`, `BPF_F_MMAPABLE`) mapped into this process, so that
//! userspace reads and writes its sets as the program does (`xdp::install`).
//!
//! Contract:
//! * [`ConnsMap::new`] maps the map's `sets` × 320 bytes, rounded up to whole pages, shared,
//!   for reading and writing; the mapping is removed on drop. An mmapable array's values are
//!   contiguous from its first page: set `i` is at `320 i` (`abi::ConnSet`).
//! * Every access goes through atomics over the mapping, since the program reads and writes
//!   the same bytes on other CPUs (`ebpf/lib/conntrack.h`): [`SetRef::claim`] takes the set's
//!   claim as the program does (compare-and-exchange of `busy` from 0 to 1, at most
//!   `abi::CONN_CLAIM_TRIES` attempts, a spin hint between them); [`SetRef::release`] frees
//!   it with a swap to 0 (Release: every write made under the claim is visible before the
//!   set is free). Ways are read and written as four 64-bit words of their bytes in memory
//!   order, the header's fields at their widths.

use std::io;
use std::marker::PhantomData;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

use crate::abi::{self, ConnSet, ConnWay};
use crate::packet::conntable::{Order, SetHead, WAYS};

/// Bytes of one set.
const SET_BYTES: usize = size_of::<ConnSet>();
/// Bytes of one way (key and entry).
const WAY_BYTES: usize = size_of::<ConnWay>();

/// The mapping (see the module doc).
#[derive(Debug)]
pub(crate) struct ConnsMap {
    base: NonNull<u8>,
    len: usize,
    sets: u32,
}

// SAFETY: the mapping is process memory owned by this value until drop; every access to it
// goes through atomics (`SetRef`), so sharing it between threads is sound.
unsafe impl Send for ConnsMap {}
// SAFETY: as above.
unsafe impl Sync for ConnsMap {}

impl ConnsMap {
    /// Maps the `conns` map behind `fd`, of `sets` sets (see the module doc).
    pub(crate) fn new(fd: BorrowedFd<'_>, sets: u32) -> io::Result<ConnsMap> {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .map_err(|_| io::Error::other("no page size"))?;
        let len = (sets as usize * SET_BYTES).div_ceil(page) * page;
        // SAFETY: a new mapping (the kernel chooses the address) of a descriptor valid for
        // the call; the kernel checks the length and protection against the map.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        Ok(ConnsMap { base, len, sets })
    }

    /// Set `index`, or `None` past the last.
    pub(crate) fn set(&self, index: u32) -> Option<SetRef<'_>> {
        (index < self.sets).then(|| SetRef {
            // SAFETY: index < sets, so the set lies inside the mapping.
            base: unsafe { self.base.as_ptr().add(index as usize * SET_BYTES) },
            _map: PhantomData,
        })
    }
}

impl Drop for ConnsMap {
    fn drop(&mut self) {
        // SAFETY: base and len are the mapping made in `new`, and no SetRef outlives self.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// One set of the mapping (see the module doc).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SetRef<'a> {
    base: *mut u8,
    _map: PhantomData<&'a ConnsMap>,
}

impl SetRef<'_> {
    /// The `u32` at byte `offset` of the set.
    fn u32_at(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset & 3 == 0 && offset + 4 <= SET_BYTES);
        // SAFETY: inside the set, 4-aligned (sets are 64-aligned: the mapping is
        // page-aligned, the stride 320), valid while the mapping is; accessed atomically only.
        unsafe { AtomicU32::from_ptr(self.base.add(offset).cast()) }
    }

    /// The `u64` at byte `offset` of the set.
    fn u64_at(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset & 7 == 0 && offset + 8 <= SET_BYTES);
        // SAFETY: as `u32_at`, 8-aligned.
        unsafe { AtomicU64::from_ptr(self.base.add(offset).cast()) }
    }

    fn tag(&self, w: usize) -> &AtomicU8 {
        // SAFETY: as `u32_at`; one byte of the tag array.
        unsafe { AtomicU8::from_ptr(self.base.add(offset_of!(ConnSet, tag) + w)) }
    }

    fn seq(&self, w: usize) -> &AtomicU16 {
        let offset = offset_of!(ConnSet, seq) + 2 * w;
        // SAFETY: as `u32_at`, 2-aligned.
        unsafe { AtomicU16::from_ptr(self.base.add(offset).cast()) }
    }

    fn busy(&self) -> &AtomicU32 {
        self.u32_at(offset_of!(ConnSet, busy))
    }

    fn order(&self) -> &AtomicU32 {
        self.u32_at(offset_of!(ConnSet, order))
    }

    fn seen(&self, w: usize) -> &AtomicU32 {
        self.u32_at(offset_of!(ConnSet, seen) + 4 * w)
    }

    /// Word `i` (0..4) of way `w`.
    fn way_word(&self, w: usize, i: usize) -> &AtomicU64 {
        self.u64_at(offset_of!(ConnSet, way) + WAY_BYTES * w + 8 * i)
    }

    /// Takes the set's claim (see the module doc); false when it stayed held.
    pub(crate) fn claim(&self) -> bool {
        for _ in 0..abi::CONN_CLAIM_TRIES {
            let taken = self
                .busy()
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed);
            if taken.is_ok() {
                return true;
            }
            std::hint::spin_loop();
        }
        false
    }

    /// Frees the claim (see the module doc).
    pub(crate) fn release(&self) {
        self.busy().swap(0, Ordering::Release);
    }

    /// Holds or frees the claim without waiting (a test's stand-in for another CPU).
    pub(crate) fn set_busy(&self, held: bool) {
        self.busy().store(u32::from(held), Ordering::SeqCst);
    }

    /// The order word, tags and `seen` words.
    pub(crate) fn head(&self) -> SetHead {
        SetHead {
            order: Order(self.order().load(Ordering::Relaxed)),
            tags: std::array::from_fn(|w| self.tag(w).load(Ordering::Relaxed)),
            seen: std::array::from_fn(|w| self.seen(w).load(Ordering::Relaxed)),
        }
    }

    /// Whether way `w` holds `key`.
    pub(crate) fn holds(&self, w: usize, key: &[u8; 16]) -> bool {
        (0..2).all(|i| {
            let want = u64::from_ne_bytes(key[8 * i..8 * i + 8].try_into().expect("8 bytes"));
            self.way_word(w, i).load(Ordering::Relaxed) == want
        })
    }

    /// Writes way `w` as the program's record does, under the claim: key and entry, tag,
    /// write count + 1, `seen`; then makes `w` the most recently used way with its half-open
    /// mark (one compare-and-exchange per attempt, as a racing lookup's use may change the
    /// word meanwhile).
    pub(crate) fn write(&self, w: usize, way: &[u8; 32], tag: u8, seen: u32, half_open: bool) {
        for i in 0..4 {
            let word = u64::from_ne_bytes(way[8 * i..8 * i + 8].try_into().expect("8 bytes"));
            self.way_word(w, i).store(word, Ordering::Relaxed);
        }
        self.tag(w).store(tag, Ordering::Relaxed);
        self.seq(w).fetch_add(1, Ordering::Relaxed);
        self.seen(w).store(seen, Ordering::Relaxed);
        let _ = self
            .order()
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                Some(Order(o).used(w, half_open).0)
            });
    }
}

/// Ways per set, as this module indexes them (the ABI's).
const _: () = assert!(WAYS == abi::CONN_WAYS && SET_BYTES == 320 && WAY_BYTES == 32);
