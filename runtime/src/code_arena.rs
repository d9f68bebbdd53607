//! One executable arena for the machine code of every compiled code object (issue 10).
//!
//! Why one arena: a mapping per code object rounds each up to whole pages (a page and a half of
//! machine code costs two resident pages, and the page tables and `vm_area`s of thousands of
//! mappings besides), and starts every code object at a page boundary, where their entries all
//! compete for the same few sets of the instruction cache. Here code objects are packed at
//! cache-line granularity into one reservation of address space, made once near this library's
//! own code, so that machine code can call the library's helpers with a 5-byte `call rel32`
//! (see [`reachable`] and [`install`]'s `calls`).
//!
//! W^X: pages are never writable and executable at once. [`install`] makes the pages it writes
//! read-write, copies and patches the code, and makes them read-execute again. While it does,
//! other code sharing those pages cannot run, which is safe because compiled code only runs on
//! a thread holding the GIL, and installing (and releasing, when a code object dies) also holds
//! it: the only thread that could run that code is the one installing, which is in this module.
//! A tier that compiles without the GIL (tier 2's background thread) must install under it.
//!
//! Space of a code object that dies returns to a free list (coalesced, best fit), pages left
//! wholly free are given back to the kernel (`MADV_DONTNEED`), and a free range at the top of
//! the used part lowers it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// Address space reserved once: no memory is committed until code is written into a page.
const RESERVATION: usize = 1 << 30;

/// Blocks start on cache lines (and so keep any alignment up to 64 that code asks of its
/// offsets).
pub const ALIGN: usize = 64;

/// How far a `call rel32` reaches, with room for the length of the arena (see [`reachable`]).
const REL32_REACH: usize = (i32::MAX as usize) - (1 << 20);

/// A `call rel32` (or `jmp rel32`) in code about to be installed: the offset just after its
/// 4-byte displacement, and the absolute address it must reach.
#[derive(Clone, Copy, Debug)]
pub struct RelCall {
    pub end: usize,
    pub target: usize,
}

/// Why code could not be installed.
#[derive(Debug)]
pub enum ArenaError {
    /// The address space could not be reserved at all.
    Reserve(std::io::Error),
    /// Every byte of the reservation is in use by live code.
    Full { requested: usize },
    /// Changing a page's protection failed.
    Protect(String),
    /// A `call rel32` cannot reach its target from where the code was placed.
    OutOfReach { target: usize },
}

impl std::fmt::Display for ArenaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArenaError::Reserve(e) => write!(f, "could not reserve {} MiB of address space for machine code: {e}", RESERVATION >> 20),
            ArenaError::Full { requested } => {
                write!(f, "the code arena is full ({} MiB of live machine code; {requested} bytes requested)", RESERVATION >> 20)
            }
            ArenaError::Protect(e) => write!(f, "could not change the protection of code memory: {e}"),
            ArenaError::OutOfReach { target } => write!(f, "a call from the code arena cannot reach {target:#x}"),
        }
    }
}

impl std::error::Error for ArenaError {}

/// Where a code object's machine code lives. Dropping it returns the space to the arena: the
/// code must not be running or entered again (its code object is being freed).
#[derive(Debug)]
pub struct CodeBlock {
    addr: usize,
    /// The code's own length.
    len: usize,
    /// The space taken, a multiple of [`ALIGN`].
    span: usize,
}

impl CodeBlock {
    pub fn addr(&self) -> usize {
        self.addr
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The machine code as installed.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the block's pages stay mapped and readable (read-execute, or read-write while
        // this thread installs other code, which it is not doing while it reads) as long as the
        // block lives; nothing writes this block's bytes after `install`.
        unsafe { std::slice::from_raw_parts(self.addr as *const u8, self.len) }
    }
}

impl Drop for CodeBlock {
    fn drop(&mut self) {
        let mut arena = ARENA.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Ok(arena)) = arena.as_mut() {
            arena.live -= self.span;
            arena.blocks -= 1;
            let offset = self.addr - arena.base;
            arena.give_back(offset, self.span);
        }
    }
}

/// The arena's occupancy, for `stats()` and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArenaUsage {
    pub base: usize,
    pub reserved: usize,
    /// Bytes below the top of the used part: live blocks and free ranges between them.
    pub used: usize,
    /// Bytes taken by live blocks.
    pub live: usize,
    pub blocks: usize,
    /// Bytes in free ranges below the top.
    pub free: usize,
}

struct Arena {
    base: usize,
    len: usize,
    /// Offset of the first byte never handed out (or handed out and given back at the top).
    top: usize,
    /// Free ranges below `top`: offset -> length, and (length, offset) for best fit.
    free_at: BTreeMap<usize, usize>,
    free_by_size: BTreeSet<(usize, usize)>,
    live: usize,
    blocks: usize,
}

/// `None` until first used; then the arena, or why it could not be reserved.
static ARENA: Mutex<Option<Result<Arena, String>>> = Mutex::new(None);

fn page_size() -> usize {
    region::page::size()
}

/// Reserves the arena, preferring addresses from which a `call rel32` reaches both this library
/// and libpython (the helpers compiled code calls).
fn reserve() -> Result<Arena, std::io::Error> {
    let ours = reserve as *const () as usize;
    let python = crate::cpython::_PyEval_EvalFrameDefault as *const () as usize;
    let (lo, hi) = (ours.min(python), ours.max(python));
    let granule = 1usize << 26;
    let mut candidates = Vec::new();
    if hi - lo < REL32_REACH - RESERVATION {
        // Below the lower of the two first (where the kernel puts new mappings anyway), then
        // above the higher, stepping away until a candidate leaves the reach of either.
        let mut at = (lo & !(granule - 1)).saturating_sub(RESERVATION + granule);
        while at > 0 && hi - at < REL32_REACH {
            candidates.push(at);
            at = at.saturating_sub(granule);
        }
        let mut at = (hi + granule) & !(granule - 1);
        while at + RESERVATION - lo < REL32_REACH && at < (1usize << 47) - RESERVATION {
            candidates.push(at);
            at += granule;
        }
    }
    candidates.push(0); // anywhere: calls then go through trampolines
    let mut last_error = None;
    for hint in candidates {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | if hint != 0 { libc::MAP_FIXED_NOREPLACE } else { 0 };
        // SAFETY: a fresh anonymous mapping with no access; MAP_FIXED_NOREPLACE fails rather than
        // replace anything mapped at the hint.
        let p = unsafe { libc::mmap(hint as *mut libc::c_void, RESERVATION, libc::PROT_NONE, flags, -1, 0) };
        if p == libc::MAP_FAILED {
            last_error = Some(std::io::Error::last_os_error());
            continue;
        }
        if hint != 0 && p as usize != hint {
            // A kernel older than 4.17 treats the flag as a hint only.
            // SAFETY: unmapping the mapping just made, which nothing else knows of.
            unsafe { libc::munmap(p, RESERVATION) };
            continue;
        }
        log::debug!("code arena: {RESERVATION:#x} bytes at {:#x}", p as usize);
        return Ok(Arena {
            base: p as usize,
            len: RESERVATION,
            top: 0,
            free_at: BTreeMap::new(),
            free_by_size: BTreeSet::new(),
            live: 0,
            blocks: 0,
        });
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no address tried")))
}

fn with_arena<T>(f: impl FnOnce(&mut Arena) -> Result<T, ArenaError>) -> Result<T, ArenaError> {
    let mut guard = ARENA.lock().unwrap_or_else(|e| e.into_inner());
    match guard.get_or_insert_with(|| reserve().map_err(|e| e.to_string())) {
        Ok(arena) => f(arena),
        Err(e) => Err(ArenaError::Reserve(std::io::Error::other(e.clone()))),
    }
}

/// The address range of the arena, reserving it on first use.
fn range() -> Option<(usize, usize)> {
    with_arena(|a| Ok((a.base, a.base + a.len))).ok()
}

/// Whether a `call rel32` placed anywhere in the arena reaches `target`: then code may call it
/// directly (listing the call in [`install`]'s `calls`), else through a trampoline of its own.
pub fn reachable(target: usize) -> bool {
    match range() {
        Some((lo, hi)) => target.abs_diff(lo) < REL32_REACH && target.abs_diff(hi) < REL32_REACH,
        None => false,
    }
}

/// Copies `code` into the arena, patches each of `calls` for where it landed, and returns the
/// block, executable. `code` must be position-independent apart from `calls`.
pub fn install(code: &[u8], calls: &[RelCall]) -> Result<CodeBlock, ArenaError> {
    with_arena(|arena| {
        let span = code.len().max(1).div_ceil(ALIGN) * ALIGN;
        let offset = arena.take(span).ok_or(ArenaError::Full { requested: code.len() })?;
        let addr = arena.base + offset;
        let result = write(addr, code, calls);
        if result.is_err() {
            arena.give_back(offset, span);
        }
        result.map(|()| {
            arena.live += span;
            arena.blocks += 1;
            CodeBlock { addr, len: code.len(), span }
        })
    })
}

/// Writes and patches the code at `addr` under W^X (the arena's lock held).
fn write(addr: usize, code: &[u8], calls: &[RelCall]) -> Result<(), ArenaError> {
    for call in calls {
        let from = addr + call.end;
        let rel = call.target as i64 - from as i64;
        if i32::try_from(rel).is_err() || call.end < 4 || call.end > code.len() {
            return Err(ArenaError::OutOfReach { target: call.target });
        }
    }
    let page = page_size();
    let start = addr & !(page - 1);
    let end = (addr + code.len().max(1)).div_ceil(page) * page;
    // SAFETY: the pages lie in the arena's reservation and hold only arena blocks, none of which
    // runs while this thread (holding the GIL and the arena's lock) is here (module comment).
    unsafe {
        region::protect(start as *const u8, end - start, region::Protection::READ_WRITE).map_err(|e| ArenaError::Protect(e.to_string()))?;
        let dst = addr as *mut u8;
        std::ptr::copy_nonoverlapping(code.as_ptr(), dst, code.len());
        for call in calls {
            let rel = (call.target as i64 - (addr + call.end) as i64) as i32;
            std::ptr::write_unaligned(dst.add(call.end - 4) as *mut i32, rel);
        }
        region::protect(start as *const u8, end - start, region::Protection::READ_EXECUTE).map_err(|e| ArenaError::Protect(e.to_string()))?;
    }
    Ok(())
}

/// The arena's occupancy (all zero before any code was installed).
pub fn usage() -> ArenaUsage {
    let guard = ARENA.lock().unwrap_or_else(|e| e.into_inner());
    match guard.as_ref() {
        Some(Ok(a)) => ArenaUsage { base: a.base, reserved: a.len, used: a.top, live: a.live, blocks: a.blocks, free: a.free_at.values().sum() },
        _ => ArenaUsage::default(),
    }
}

impl Arena {
    /// Space for `span` bytes: the smallest free range that fits, else from the top.
    fn take(&mut self, span: usize) -> Option<usize> {
        if let Some(&(len, offset)) = self.free_by_size.range((span, 0)..).next() {
            self.free_by_size.remove(&(len, offset));
            self.free_at.remove(&offset);
            if len > span {
                self.insert_free(offset + span, len - span);
            }
            return Some(offset);
        }
        if self.top + span > self.len {
            return None;
        }
        let offset = self.top;
        self.top += span;
        Some(offset)
    }

    fn insert_free(&mut self, offset: usize, len: usize) {
        self.free_at.insert(offset, len);
        self.free_by_size.insert((len, offset));
    }

    fn remove_free(&mut self, offset: usize) -> usize {
        let len = self.free_at.remove(&offset).expect("a free range");
        self.free_by_size.remove(&(len, offset));
        len
    }

    /// Returns space `take` handed out: a dead block's, or one whose write failed.
    fn give_back(&mut self, offset: usize, span: usize) {
        let (mut start, mut end) = (offset, offset + span);
        if let Some((&before, &len)) = self.free_at.range(..start).next_back() {
            if before + len == start {
                self.remove_free(before);
                start = before;
            }
        }
        if self.free_at.contains_key(&end) {
            end += self.remove_free(end);
        }
        let at_top = end == self.top;
        if at_top {
            self.top = start;
        } else {
            self.insert_free(start, end - start);
        }
        // Whole pages no block uses any more go back to the kernel (at the top, the page the
        // range ends in has nothing above it). Their next use reads zeroes until written, and
        // `write` always writes a block before it can run.
        let page = page_size();
        let first = start.div_ceil(page) * page;
        let last = if at_top { end.div_ceil(page) * page } else { end & !(page - 1) };
        if last > first {
            // SAFETY: whole pages inside the reservation that hold no live block.
            unsafe { libc::madvise((self.base + first) as *mut libc::c_void, last - first, libc::MADV_DONTNEED) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests share the process's arena: one at a time, so placements are predictable.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn blocks_are_packed_reused_and_coalesced() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let ret = [0xC3u8; 100];
        let start = usage();
        let a = install(&ret, &[]).unwrap();
        let b = install(&ret, &[]).unwrap();
        assert_eq!(b.addr() - a.addr(), 128, "two 100-byte blocks take two 64-byte lines each");
        assert_eq!(a.bytes(), &ret[..]);
        let c = install(&ret[..10], &[]).unwrap();
        let (a_addr, before) = (a.addr(), usage());
        drop(a);
        let after = usage();
        assert_eq!(before.live - after.live, 128);
        let d = install(&ret[..60], &[]).unwrap();
        assert_eq!(d.addr(), a_addr, "the freed space is reused");
        drop((b, c, d));
        let end = usage();
        assert_eq!((end.live, end.blocks, end.used), (start.live, start.blocks, start.used), "the top comes back down: {end:?}");
    }

    #[test]
    fn calls_are_patched_relative_to_the_placement() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // mov eax, 7 ; ret, and a `call rel32` to it from another block.
        let callee = install(&[0xB8, 7, 0, 0, 0, 0xC3], &[]).unwrap();
        assert!(reachable(callee.addr()));
        let caller = install(&[0xE8, 0, 0, 0, 0, 0xC3], &[RelCall { end: 5, target: callee.addr() }]).unwrap();
        // SAFETY: the caller block is `call callee; ret`, a function of no arguments returning
        // what the callee left in eax.
        let f: extern "C" fn() -> i32 = unsafe { std::mem::transmute(caller.addr()) };
        assert_eq!(f(), 7);
    }
}
