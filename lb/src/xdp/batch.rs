//! `BPF_MAP_LOOKUP_BATCH` for array maps: many values per system call (aya 0.14 has no batch
//! operations; reading the connection table one set per call takes ~0.5 s for 262 144 sets).
//!
//! Contract: [`ArrayBatches::next`] returns the next values of the array in index order, up
//! to the buffer's length per call, an empty slice after the last one; `elem_flags` is passed
//! to the kernel for every element (e.g. `BPF_F_LOCK` for values with a spin lock).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `BPF_MAP_LOOKUP_BATCH` (uapi `enum bpf_cmd`).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// The `batch` member of uapi `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Successive batches of an array map's values (see the module doc).
pub(crate) struct ArrayBatches<'a, V> {
    fd: BorrowedFd<'a>,
    elem_flags: u64,
    /// The last index returned (the kernel's batch token), `None` before the first call.
    last: Option<u32>,
    done: bool,
    keys: Vec<u32>,
    values: Vec<V>,
}

impl<'a, V: Copy + Default> ArrayBatches<'a, V> {
    /// Batches of `per_call` values of the array map `fd` (whose value size is `V`'s).
    pub(crate) fn new(fd: BorrowedFd<'a>, per_call: usize, elem_flags: u64) -> Self {
        let per_call = per_call.max(1);
        ArrayBatches {
            fd,
            elem_flags,
            last: None,
            done: false,
            keys: vec![0; per_call],
            values: vec![V::default(); per_call],
        }
    }

    /// The next values, in index order; empty after the last.
    pub(crate) fn next(&mut self) -> io::Result<&[V]> {
        if self.done {
            return Ok(&[]);
        }
        let in_batch = self.last.unwrap_or(0);
        let mut out_batch = 0u32;
        let mut attr = BatchAttr {
            in_batch: match self.last {
                Some(_) => &in_batch as *const u32 as u64,
                None => 0,
            },
            out_batch: &mut out_batch as *mut u32 as u64,
            keys: self.keys.as_mut_ptr() as u64,
            values: self.values.as_mut_ptr() as u64,
            count: self.values.len() as u32,
            map_fd: self.fd.as_raw_fd() as u32,
            elem_flags: self.elem_flags,
            flags: 0,
        };
        // SAFETY: the attribute points at live buffers of `count` keys (u32, the array's key
        // size) and `count` values (`V`, the map's value size, checked by the caller's typed
        // map) and at two u32 batch tokens; the kernel writes no more than that.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &mut attr as *mut BatchAttr,
                std::mem::size_of::<BatchAttr>(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(e);
            }
            // ENOENT: the end of the array, with the last values (if any) filled in.
            self.done = true;
        }
        let n = (attr.count as usize).min(self.values.len());
        if n == 0 {
            self.done = true;
        }
        self.last = Some(out_batch);
        Ok(&self.values[..n])
    }
}
