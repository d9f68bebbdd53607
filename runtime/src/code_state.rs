//! Per-code-object JIT state, kept in the code object's `co_extra` slot.
//!
//! The state is allocated the first time the hook sees a code object and freed by the `co_extra`
//! free function when the code object dies, so compiled code lives exactly as long as its code.
//! It is read and written only with the GIL held (the hook, the Python API, the free function),
//! which is why it uses `Cell`/`RefCell` rather than atomics. The optimizer's background thread will
//! never touch it directly: results come back through a GIL-side installation step.

use crate::compile_error::CompileError;
use crate::cpython::{self, ffi, EvalFrameFn};
use crate::stats::STATS;
use crate::tier::Tier;
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::sync::atomic::{AtomicIsize, Ordering};

/// Machine code a tier produced for one code object.
pub trait CompiledCode: Send {
    fn tier(&self) -> Tier;
    /// The entry point, called like a PEP 523 frame-evaluation function.
    fn entry(&self) -> EvalFrameFn;
    /// Bytes of machine code.
    fn code_bytes(&self) -> usize;
    /// For tools (disassembly) that need the concrete type.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// What a tier did with a code object.
pub enum Slot {
    NotTried,
    Compiled(Box<dyn CompiledCode>),
    Refused(CompileError),
}

impl Slot {
    pub fn is_compiled(&self) -> bool {
        matches!(self, Slot::Compiled(_))
    }
}

/// The JIT's state for one code object.
pub struct CodeState {
    /// Calls (and, once the baseline counts them, loop iterations) seen so far; saturates.
    entries: Cell<u32>,
    /// The code has a loop: it is compiled on its first entry, since the interpreter cannot count
    /// the iterations of a long loop in a function called once.
    has_loop: bool,
    /// Entry of the best compiled tier and that tier, cached so the hook reads one field.
    entry: Cell<Option<(EvalFrameFn, Tier)>>,
    baseline: RefCell<Slot>,
    optimized: RefCell<Slot>,
}

impl CodeState {
    fn new(has_loop: bool) -> Self {
        CodeState {
            entries: Cell::new(0),
            has_loop,
            entry: Cell::new(None),
            baseline: RefCell::new(Slot::NotTried),
            optimized: RefCell::new(Slot::NotTried),
        }
    }

    /// Counts one entry and returns the count before it.
    #[inline]
    pub fn count_entry(&self) -> u32 {
        let n = self.entries.get();
        self.entries.set(n.saturating_add(1));
        n
    }

    pub fn entries(&self) -> u32 {
        self.entries.get()
    }

    pub fn has_loop(&self) -> bool {
        self.has_loop
    }

    /// The entry point of the best compiled tier and that tier, if any.
    #[inline]
    pub fn entry(&self) -> Option<(EvalFrameFn, Tier)> {
        self.entry.get()
    }

    fn slot(&self, tier: Tier) -> Option<&RefCell<Slot>> {
        match tier {
            Tier::Interpreter => None,
            Tier::Baseline => Some(&self.baseline),
            Tier::Optimized => Some(&self.optimized),
        }
    }

    /// Whether `tier` has not been tried for this code object yet.
    pub fn not_tried(&self, tier: Tier) -> bool {
        self.slot(tier).is_some_and(|s| matches!(*s.borrow(), Slot::NotTried))
    }

    /// Why `tier` refused this code object, if it did.
    pub fn refusal(&self, tier: Tier) -> Option<CompileError> {
        match &*self.slot(tier)?.borrow() {
            Slot::Refused(e) => Some(e.clone()),
            _ => None,
        }
    }

    /// Runs `f` on the compiled code of `tier`, if there is any.
    pub fn with_compiled<R>(&self, tier: Tier, f: impl FnOnce(&dyn CompiledCode) -> R) -> Option<R> {
        match &*self.slot(tier)?.borrow() {
            Slot::Compiled(code) => Some(f(code.as_ref())),
            _ => None,
        }
    }

    /// The highest tier with compiled code, `Interpreter` if none.
    pub fn tier(&self) -> Tier {
        if self.optimized.borrow().is_compiled() {
            Tier::Optimized
        } else if self.baseline.borrow().is_compiled() {
            Tier::Baseline
        } else {
            Tier::Interpreter
        }
    }

    /// Records a tier's compile result and updates the cached entry point.
    pub fn install(&self, tier: Tier, result: Result<Box<dyn CompiledCode>, CompileError>) {
        let Some(slot) = self.slot(tier) else { return };
        *slot.borrow_mut() = match result {
            Ok(code) => Slot::Compiled(code),
            Err(e) => Slot::Refused(e),
        };
        let best = [&self.optimized, &self.baseline].into_iter().find_map(|s| match &*s.borrow() {
            Slot::Compiled(code) => Some((code.entry(), code.tier())),
            _ => None,
        });
        self.entry.set(best);
    }
}

/// Whether `code`'s canonical bytecode has a loop.
///
/// # Safety
/// GIL held; `code` is a live code object.
unsafe fn code_has_loop(code: *mut ffi::PyObject) -> bool {
    // SAFETY: per the contract; PyCode_GetCode returns a new reference to bytes, or null.
    unsafe {
        let bytes = cpython::PyCode_GetCode(code as *mut cpython::CodeObject);
        if bytes.is_null() {
            ffi::PyErr_Clear();
            return false;
        }
        let data = std::slice::from_raw_parts(ffi::PyBytes_AsString(bytes) as *const u8, ffi::PyBytes_Size(bytes) as usize);
        let found = crate::bytecode::has_loop(data);
        ffi::Py_DECREF(bytes);
        found
    }
}

/// The `co_extra` index requested from CPython, or -1 before [`init_code_extra_index`].
static CODE_EXTRA_INDEX: AtomicIsize = AtomicIsize::new(-1);

/// Frees a [`CodeState`] when its code object dies (called by CPython with the GIL held).
unsafe extern "C" fn free_code_state(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    // A panic must not unwind into CPython; dropping compiled code does not panic, but be sure.
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: `ptr` was produced by `Box::into_raw` in `CodeState::get_or_create` and CPython
        // calls this exactly once, when the code object is deallocated.
        drop(unsafe { Box::from_raw(ptr as *mut CodeState) });
        STATS.live_code_states.add_with_gil(u64::MAX); // wrapping decrement
    });
}

/// Requests our `co_extra` slot. Called once at module initialisation with the GIL held; later
/// calls return the same index.
pub fn init_code_extra_index() -> Result<isize, String> {
    let current = CODE_EXTRA_INDEX.load(Ordering::Relaxed);
    if current >= 0 {
        return Ok(current);
    }
    // SAFETY: called with the GIL held; the free function is a plain `extern "C"` fn that lives as
    // long as the process (CPython never unloads extension modules).
    let index = unsafe { cpython::_PyEval_RequestCodeExtraIndex(free_code_state) };
    if index < 0 {
        return Err("CPython has no free co_extra slot (more than 255 users)".to_string());
    }
    CODE_EXTRA_INDEX.store(index, Ordering::Relaxed);
    Ok(index)
}

impl CodeState {
    /// The state of `code` if the JIT has seen it, without creating one.
    ///
    /// # Safety
    /// GIL held; `code` is a live code object. The reference is valid while the code object lives.
    pub unsafe fn existing<'a>(code: *mut ffi::PyObject) -> Option<&'a CodeState> {
        let index = CODE_EXTRA_INDEX.load(Ordering::Relaxed);
        if index < 0 {
            return None;
        }
        let mut extra: *mut c_void = std::ptr::null_mut();
        // SAFETY: caller guarantees a live code object and the GIL.
        if unsafe { cpython::_PyCode_GetExtra(code, index, &mut extra) } != 0 {
            // SAFETY: GIL held; drop the error GetExtra raised (not a code object).
            unsafe { ffi::PyErr_Clear() };
            return None;
        }
        // SAFETY: a non-null extra at our index is always a `CodeState` we allocated.
        unsafe { (extra as *const CodeState).as_ref() }
    }

    /// The state of `code`, created on first use. `None` when CPython cannot store it (out of
    /// memory); the caller then runs the frame in the interpreter.
    ///
    /// # Safety
    /// As for [`CodeState::existing`].
    pub unsafe fn get_or_create<'a>(code: *mut ffi::PyObject) -> Option<&'a CodeState> {
        // SAFETY: forwarded from the caller.
        if let Some(state) = unsafe { Self::existing(code) } {
            return Some(state);
        }
        let index = CODE_EXTRA_INDEX.load(Ordering::Relaxed);
        if index < 0 {
            return None;
        }
        // SAFETY: GIL held, live code object.
        let has_loop = unsafe { code_has_loop(code) };
        let ptr = Box::into_raw(Box::new(CodeState::new(has_loop)));
        // SAFETY: GIL held, live code object; on success CPython owns `ptr` until it calls
        // `free_code_state`.
        if unsafe { cpython::_PyCode_SetExtra(code, index, ptr as *mut c_void) } != 0 {
            // SAFETY: CPython did not take `ptr`; reclaim it and drop the MemoryError.
            unsafe {
                drop(Box::from_raw(ptr));
                ffi::PyErr_Clear();
            }
            return None;
        }
        STATS.live_code_states.add_with_gil(1);
        // SAFETY: just stored; lives until the code object dies.
        Some(unsafe { &*ptr })
    }
}
