//! A guard against C stack overflow. With a PEP 523 hook installed, CPython 3.11 no longer runs
//! Python-to-Python calls inside one C frame of the interpreter: every call nests
//! `_PyEval_Vector -> hook -> tier` on the C stack. With the default recursion limit that fits
//! easily; with a high `sys.setrecursionlimit` the C stack would overflow where stock CPython
//! succeeds, so the hook refuses to go deeper once little stack is left.

use std::cell::Cell;

/// Stack to keep free for what runs below a frame (helpers, C extensions, signal handlers): a
/// quarter of the thread's stack, at most 256 KiB. A fixed reserve would leave no room at all on
/// threads started with a small `threading.stack_size()` (test_threading uses 256 KiB).
pub const MAX_RESERVE: usize = 256 * 1024;

/// The reserve for a stack of `size` bytes.
pub fn reserve_for(size: usize) -> usize {
    (size / 4).min(MAX_RESERVE)
}

thread_local! {
    /// The lowest usable address of this thread's stack plus its reserve; 0 until computed.
    static LIMIT: Cell<usize> = const { Cell::new(0) };
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

/// Whether the calling thread is within its reserve of the end of its C stack.
#[inline]
pub fn nearly_exhausted() -> bool {
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    let limit = LIMIT.with(|l| {
        if l.get() == 0 {
            // Unknown bounds: never report exhaustion (usize::MAX would be wrong, 1 is "below").
            let computed = stack_bounds().map_or(1, |(low, size)| low + reserve_for(size));
            l.set(computed);
        }
        l.get()
    });
    here < limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_scales_with_small_stacks() {
        assert_eq!(reserve_for(8 << 20), MAX_RESERVE);
        assert_eq!(reserve_for(256 << 10), 64 << 10);
        assert_eq!(reserve_for(0), 0);
    }

    #[test]
    fn a_fresh_thread_with_a_small_stack_is_not_exhausted() {
        let t = std::thread::Builder::new().stack_size(256 << 10).spawn(nearly_exhausted).unwrap();
        assert!(!t.join().unwrap());
        assert!(!nearly_exhausted());
    }
}
