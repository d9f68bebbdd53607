//! The C stack under the hook. With a PEP 523 hook installed, CPython 3.11 no longer runs
//! Python-to-Python calls inside one C frame of the interpreter: every call nests
//! `_PyEval_Vector -> hook -> tier` on the C stack. With the default recursion limit that fits
//! easily; with a high `sys.setrecursionlimit` the thread's stack would overflow where stock
//! CPython succeeds. So when a frame would start within the reserve at the end of the stack, the
//! hook runs it on a fresh stack segment ([`call_on_fresh_segment`]), and the recursion limit
//! stays what ends deep recursion, as in stock CPython.

use std::cell::Cell;
use std::ffi::c_void;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Stack to keep free for what runs below a frame (helpers, C extensions, signal handlers): a
/// quarter of the thread's stack, at most 256 KiB. A fixed reserve would leave no room at all on
/// threads started with a small `threading.stack_size()` (test_threading uses 256 KiB).
pub const MAX_RESERVE: usize = 256 * 1024;

/// The reserve for a stack of `size` bytes.
pub fn reserve_for(size: usize) -> usize {
    (size / 4).min(MAX_RESERVE)
}

thread_local! {
    /// The lowest usable address of the stack in use (the thread's own or a segment) plus its
    /// reserve; 0 until computed.
    static LIMIT: Cell<usize> = const { Cell::new(0) };
    /// Segments not in use, kept for the next switch (a recursion that oscillates around a
    /// segment boundary must not map and unmap memory on every call).
    static SPARE: std::cell::RefCell<Spare> = const { std::cell::RefCell::new(Spare(Vec::new())) };
    /// Bytes of segments mapped by this thread (in use or spare).
    static MAPPED: Cell<usize> = const { Cell::new(0) };
}

/// Size of one stack segment: room for tens of thousands of nested calls. Memory is mapped
/// lazily by the kernel, so only the part a recursion touches is committed.
pub const SEGMENT_SIZE: usize = 64 << 20;

/// Mapped segments per thread at most (4 GiB); past that the hook raises RecursionError.
pub const MAX_MAPPED: usize = 64 * SEGMENT_SIZE;

/// Segments kept after use, per thread.
const MAX_SPARE: usize = 2;

/// A stack segment: `size` bytes mapped at `base`, the lowest page a guard (no access), so an
/// overflow faults instead of writing over other memory.
struct Segment {
    base: usize,
    size: usize,
}

impl Segment {
    fn map(size: usize) -> Option<Segment> {
        // SAFETY: a fresh anonymous private mapping, owned by the returned Segment alone.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return None;
            }
            if libc::mprotect(p, page_size(), libc::PROT_NONE) != 0 {
                libc::munmap(p, size);
                return None;
            }
            Some(Segment { base: p as usize, size })
        }
    }

    /// The first address above the segment, 16-byte aligned: the initial stack pointer.
    fn top(&self) -> usize {
        (self.base + self.size) & !15
    }

    /// The lowest address a frame may start at: above the guard page and the reserve.
    fn limit(&self) -> usize {
        self.base + page_size() + reserve_for(self.size)
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: the segment is not in use (only spare segments are dropped) and was mapped by us.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.size);
        }
        let _ = MAPPED.try_with(|m| m.set(m.get().saturating_sub(self.size)));
    }
}

/// The spare segments of a thread; unmapped when the thread ends.
struct Spare(Vec<Segment>);

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

/// The current thread's stack bounds (low address, size), if the C library can tell.
fn stack_bounds() -> Option<(usize, usize)> {
    // SAFETY: pthread_getattr_np fills `attr` for the calling thread; it is destroyed after use.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        ok.then_some((addr as usize, size))
    }
}

/// Whether the calling thread is within the reserve at the end of the stack in use.
#[inline]
pub fn nearly_exhausted() -> bool {
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    here < limit()
}

/// The last thread that asked for its limit, and that limit, for [`limit`]: a thread-local in a
/// shared library costs a call (`__tls_get_addr`) per read, and the hook asks at every frame,
/// almost always from the same thread. `SEQ` is a sequence lock: odd while a writer changes the
/// pair, so a reader that sees the same even value before and after its reads has a consistent
/// pair. The key is the thread pointer ([`thread_pointer`]), unique among live threads; a thread
/// that reuses a dead one's thread control block reuses its stack too (the C library keeps the
/// block at the top of the thread's stack).
static CACHE_SEQ: AtomicUsize = AtomicUsize::new(0);
static CACHE_THREAD: AtomicUsize = AtomicUsize::new(0);
static CACHE_LIMIT: AtomicUsize = AtomicUsize::new(0);

/// Where machine code reads the cache [`limit`] reads: the sequence word, the thread pointer
/// and the limit (`usize` each), the thread pointer being `%fs:0`.
///
/// Machine code holding the GIL may read the limit and then the thread, without the sequence
/// word: every writer but a thread's exit holds the GIL (the hook and the segment switches run
/// under it), so the only write that can race with such a reader is another thread's exit
/// storing (0, 0), thread word first; x86-64 makes stores visible in order and does not
/// reorder loads, so a reader that finds its own thread after reading the limit read its own
/// limit, and one that read the exit's 0 finds 0 for the thread and declines.
pub fn cache_addrs() -> (*const usize, *const usize, *const usize) {
    (CACHE_SEQ.as_ptr() as *const usize, CACHE_THREAD.as_ptr() as *const usize, CACHE_LIMIT.as_ptr() as *const usize)
}

/// The calling thread's limit: the lowest address a frame may start at on the stack in use.
#[inline]
fn limit() -> usize {
    let me = thread_pointer();
    let seq = CACHE_SEQ.load(Ordering::Acquire);
    let thread = CACHE_THREAD.load(Ordering::Relaxed);
    let limit = CACHE_LIMIT.load(Ordering::Relaxed);
    std::sync::atomic::fence(Ordering::Acquire);
    if thread == me && seq & 1 == 0 && CACHE_SEQ.load(Ordering::Relaxed) == seq {
        return limit;
    }
    limit_slow(me)
}

/// Forgets the cached pair when its thread ends: a thread started later may get the same
/// thread control block address with a stack of another size (a stack the C library mapped
/// anew where the old one was), and must not read the dead thread's limit.
struct ForgetOnExit;

impl Drop for ForgetOnExit {
    fn drop(&mut self) {
        if CACHE_THREAD.load(Ordering::Relaxed) == thread_pointer() {
            remember(0, 0);
        }
    }
}

thread_local! {
    /// Registered (touched) by every thread that puts its limit in the cache.
    static FORGET_ON_EXIT: ForgetOnExit = const { ForgetOnExit };
}

/// [`limit`] from the thread-local, remembered for the next call.
#[cold]
fn limit_slow(me: usize) -> usize {
    let limit = LIMIT.with(|l| {
        if l.get() == 0 {
            // Unknown bounds: never report exhaustion (usize::MAX would be wrong, 1 is "below").
            let computed = stack_bounds().map_or(1, |(low, size)| low + reserve_for(size));
            l.set(computed);
        }
        l.get()
    });
    remember_mine(me, limit);
    limit
}

/// Caches the calling thread's (`me`) limit, if its exit will forget it: a thread whose
/// thread-locals are already being torn down is not cached.
fn remember_mine(me: usize, limit: usize) {
    if FORGET_ON_EXIT.try_with(|_| ()).is_ok() {
        remember(me, limit);
    }
}

/// Sets the calling thread's limit (entering or leaving a segment), in the thread-local and the
/// cache; returns the previous one.
fn set_limit(limit: usize) -> usize {
    let previous = LIMIT.with(|l| l.replace(limit));
    remember_mine(thread_pointer(), limit);
    previous
}

/// The calling thread's thread pointer: the x86-64 ELF TLS ABI keeps the address of the thread
/// control block at `%fs:0`, so one load identifies the thread (`pthread_self()` is the same
/// value behind a call into the C library).
#[inline(always)]
fn thread_pointer() -> usize {
    let tp: usize;
    // SAFETY: reads the first word of the thread control block, which the TLS ABI requires to
    // hold its own address; no memory is written, the stack is not touched.
    unsafe { std::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly, preserves_flags)) };
    tp
}

/// Makes (`me`, `limit`) the cached pair; skipped while another thread writes it (which then
/// leaves its own key there, so a skipped write never leaves a stale pair for `me`).
fn remember(me: usize, limit: usize) {
    let seq = CACHE_SEQ.load(Ordering::Relaxed);
    if seq & 1 != 0
        || CACHE_SEQ.compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed).is_err()
    {
        return;
    }
    // A reader that sees either new value then sees the odd sequence number.
    std::sync::atomic::fence(Ordering::Release);
    CACHE_THREAD.store(me, Ordering::Relaxed);
    CACHE_LIMIT.store(limit, Ordering::Relaxed);
    CACHE_SEQ.store(seq + 2, Ordering::Release);
}

/// Why [`call_on_fresh_segment`] could not switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentError {
    /// The thread already has [`MAX_MAPPED`] bytes of segments.
    TooDeep,
    /// mmap failed.
    NoMemory,
}

/// The signature run on a segment: the eval-frame contract, with arguments passed through.
pub type SegmentFn = unsafe extern "C" fn(*mut c_void, *mut c_void, c_int) -> *mut c_void;

/// Calls `f(a, b, c)` on a fresh stack segment and returns its result, the segment's limit in
/// force for [`nearly_exhausted`] meanwhile.
///
/// # Safety
/// `f` must be safe to call with these arguments, must not unwind, and must not switch stacks
/// in a way that outlives the call (greenlet's stack copying assumes one contiguous stack per
/// thread; the hook does not switch while greenlet is loaded).
pub unsafe fn call_on_fresh_segment(
    f: SegmentFn,
    a: *mut c_void,
    b: *mut c_void,
    c: c_int,
) -> Result<*mut c_void, SegmentError> {
    let segment = match SPARE.with(|s| s.borrow_mut().0.pop()) {
        Some(seg) => seg,
        None => {
            if MAPPED.with(|m| m.get()) + SEGMENT_SIZE > MAX_MAPPED {
                return Err(SegmentError::TooDeep);
            }
            let seg = Segment::map(SEGMENT_SIZE).ok_or(SegmentError::NoMemory)?;
            MAPPED.with(|m| m.set(m.get() + seg.size));
            seg
        }
    };
    log::debug!("running a frame on a fresh C stack segment at {:#x}", segment.base);
    let outer_limit = set_limit(segment.limit());
    // SAFETY: the segment is mapped, writable above its guard page, and used by this call alone;
    // `top` is 16-byte aligned as the ABI requires before a call. The caller vouches for `f`.
    let result = unsafe { call_with_stack(a, b, c, f, segment.top() as *mut u8) };
    set_limit(outer_limit);
    SPARE.with(|s| {
        let mut spare = s.borrow_mut();
        if spare.0.len() < MAX_SPARE {
            spare.0.push(segment);
        }
        // else dropped here: unmapped
    });
    Ok(result)
}

/// Calls `f(a, b, c)` with the stack pointer set to `stack_top`, and restores the stack pointer
/// afterwards. System V: a, b, c arrive in rdi, rsi, edx and stay there for `f`; `f` in rcx,
/// `stack_top` in r8. rbp (callee-saved, so `f` preserves it) keeps the old stack pointer.
#[unsafe(naked)]
unsafe extern "C" fn call_with_stack(
    a: *mut c_void,
    b: *mut c_void,
    c: c_int,
    f: SegmentFn,
    stack_top: *mut u8,
) -> *mut c_void {
    std::arch::naked_asm!(
        "push rbp",
        "mov rbp, rsp",
        "mov rsp, r8",
        "call rcx",
        "mov rsp, rbp",
        "pop rbp",
        "ret",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests that use the limit cache run one at a time: each asserts what the one shared entry
    /// holds.
    static CACHE_USERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        CACHE_USERS.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[test]
    fn reserve_scales_with_small_stacks() {
        assert_eq!(reserve_for(8 << 20), MAX_RESERVE);
        assert_eq!(reserve_for(256 << 10), 64 << 10);
        assert_eq!(reserve_for(0), 0);
    }

    unsafe extern "C" fn where_am_i(a: *mut c_void, b: *mut c_void, c: c_int) -> *mut c_void {
        let marker = 0u8;
        let here = std::hint::black_box(&marker) as *const u8 as usize;
        assert!(!nearly_exhausted());
        (here ^ (a as usize) ^ (b as usize) ^ (c as usize)) as *mut c_void
    }

    #[test]
    fn a_call_on_a_fresh_segment_runs_on_that_segment_and_returns() {
        let _serial = serial();
        let marker = 0u8;
        let outer = std::hint::black_box(&marker) as *const u8 as usize;
        let limit_before = LIMIT.with(|l| l.get());
        // SAFETY: where_am_i is a plain function that does not unwind.
        let r = unsafe { call_on_fresh_segment(where_am_i, 8 as _, 16 as _, 32) }.unwrap() as usize;
        let inner = r ^ 8 ^ 16 ^ 32;
        assert!(inner.abs_diff(outer) > SEGMENT_SIZE / 2, "ran at {inner:#x}, caller at {outer:#x}");
        assert_eq!(LIMIT.with(|l| l.get()), limit_before);
        // The segment is kept and reused.
        let again = unsafe { call_on_fresh_segment(where_am_i, 8 as _, 16 as _, 32) }.unwrap() as usize;
        assert!((again ^ 56).abs_diff(inner) < 4096);
    }

    #[test]
    fn a_fresh_thread_with_a_small_stack_is_not_exhausted() {
        let _serial = serial();
        let t = std::thread::Builder::new().stack_size(256 << 10).spawn(nearly_exhausted).unwrap();
        assert!(!t.join().unwrap());
        assert!(!nearly_exhausted());
    }

    #[test]
    fn the_thread_pointer_is_the_thread_control_block() {
        let _serial = serial();
        // SAFETY: no preconditions.
        assert_eq!(thread_pointer(), unsafe { libc::pthread_self() } as usize);
        let other = std::thread::spawn(thread_pointer).join().unwrap();
        assert_ne!(other, thread_pointer());
    }

    #[test]
    fn each_thread_gets_its_own_limit_from_the_cache() {
        let _serial = serial();
        // Alternate between two threads so the one-entry cache changes hands every time; each
        // must still see the limit of its own stack.
        let mine = limit();
        let (to_other, from_main) = std::sync::mpsc::channel::<()>();
        let (to_main, from_other) = std::sync::mpsc::channel::<usize>();
        let t = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || {
                for _ in 0..50 {
                    from_main.recv().unwrap();
                    to_main.send(limit()).unwrap();
                }
            })
            .unwrap();
        let mut theirs = Vec::new();
        for _ in 0..50 {
            assert_eq!(limit(), mine);
            to_other.send(()).unwrap();
            theirs.push(from_other.recv().unwrap());
        }
        t.join().unwrap();
        assert!(theirs.iter().all(|&l| l == theirs[0]));
        assert_ne!(theirs[0], mine);
        assert_eq!(limit(), mine);
    }

    #[test]
    fn a_thread_that_ends_leaves_no_limit_in_the_cache() {
        let _serial = serial();
        // A thread started later may get the same thread pointer with another stack.
        let (tp, cached_while_alive) = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| {
                let _ = limit();
                (thread_pointer(), CACHE_THREAD.load(Ordering::Relaxed) == thread_pointer())
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(cached_while_alive);
        assert_ne!(CACHE_THREAD.load(Ordering::Relaxed), tp);
    }
}
