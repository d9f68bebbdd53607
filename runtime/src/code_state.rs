//! Per-code-object JIT state, kept in the code object's `co_extra` slot.
//!
//! The state is allocated the first time the hook sees a code object; the `co_extra` free function
//! releases it (and the compiled code it owns) when the code object dies.
//!
//! A released state is not returned to the allocator: CPython leaves our pointer in the dying code
//! object's extras while it calls the *other* `co_extra` users' free functions, and those may run
//! Python code on that very code object (test_code's ctypes free function does). So states live in
//! a pool: a released one drops its compiled code, forgets its owner and waits on a free list to
//! be reused, and every lookup checks that the state's owner is the code object asking. A stale
//! pointer then reads "not yours" instead of freed memory. The pool is bounded by the peak number
//! of live code objects.
//! It is read and written only with the GIL held (the hook, the Python API, the free function),
//! which is why it uses `Cell`/`RefCell` rather than atomics. The optimizer's background thread will
//! never touch it directly: results come back through a GIL-side installation step.

use crate::compile_error::CompileError;
use crate::cpython::{self, ffi, EvalFrameFn};
use crate::exits::{ExitReason, ExitSites};
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
    /// The entry for frames that compiled code pushed itself and enters from a direct call,
    /// sharing the caller's `_PyCFrame` as ceval's inline calls do (`frame->is_entry` 0); 0
    /// where the tier has none. Not a C-ABI function: see `baseline::direct_entry`.
    fn direct_entry(&self) -> usize {
        0
    }
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

/// ceval's `QUICKENING_WARMUP_DELAY`: RESUMEs plus JUMP_BACKWARDs before it quickens a code
/// object, after which each specializable instruction specializes on its next execution.
pub const WARMUP_DELAY: u32 = 8;

/// The two counters of a [`CodeState`] that stand for the interpreter's `co_warmup` (see
/// `jit::specialize::Site::is_warm`), for compiled code to read and bump in place.
#[derive(Clone, Copy)]
pub struct WarmthCounters {
    pub entries: *const u32,
    /// Subtracted from `entries`: creating a generator runs no RESUME.
    pub generator_creations: *const u32,
    pub backward_jumps: *mut u32,
    /// Set to 1 the first time the code is found warm (warmth never goes back): compiled code
    /// tests this one byte and computes the whole condition only while it is 0.
    pub warm_latch: *mut u8,
}

/// The JIT's state for one code object.
pub struct CodeState {
    /// The code object this state belongs to; null while the state is on the free list.
    owner: Cell<*mut ffi::PyObject>,
    /// Calls (and, once the baseline counts them, loop iterations) seen so far; saturates.
    entries: Cell<u32>,
    /// Backward jumps executed in compiled code, counted up to [`WARMUP_DELAY`]. With `entries`
    /// it stands for the interpreter's `co_warmup`, which decides when ceval specializes this
    /// code's instructions; compiled code follows the specialized forms' observable behaviour
    /// only once warm (see `jit::specialize`). A `u32` so compiled code can bump it
    /// in place.
    backward_jumps: Cell<u32>,
    /// Entries that only created a generator or coroutine (saturating, as `entries`, so never
    /// more than it): they count towards the tier thresholds but not towards warm-up, since
    /// creating one runs RETURN_GENERATOR and no RESUME, which is what `co_warmup` counts. (Not
    /// capped at [`WARMUP_DELAY`]: warm-up is `entries - generator_creations`.)
    generator_creations: Cell<u32>,
    /// 1 once the code was found warm (see [`WarmthCounters::warm_latch`]). Every input of the
    /// condition only moves towards warm (entries and backward jumps only grow, a generator
    /// creation is counted with its entry, the interpreter never un-quickens a code object), so
    /// a latch set once stays exact.
    warm_latch: Cell<u8>,
    /// The code has a loop: it is compiled on its first entry, since the interpreter cannot count
    /// the iterations of a long loop in a function called once.
    has_loop: Cell<bool>,
    /// Entry of the best compiled tier and that tier, cached so the hook reads one field.
    entry: Cell<Option<(EvalFrameFn, Tier)>>,
    /// For machine code (direct calls): the address of the baseline's entry while it is the best
    /// tier, else 0.
    baseline_entry: Cell<usize>,
    /// For machine code: the baseline's direct-call entry ([`CompiledCode::direct_entry`]) while
    /// the baseline is the best tier, else 0.
    direct_entry: Cell<usize>,
    /// For machine code: 1 once the optimizing tier was tried (compiled or refused), after which
    /// its threshold no longer sends frames to the hook.
    optimizer_tried: Cell<u8>,
    baseline: RefCell<Slot>,
    optimized: RefCell<Slot>,
    /// Where frames of this code left compiled code, or never entered it, and why
    /// (`peregrine.exits`). Allocated on the first exit, freed with the state.
    exits: RefCell<ExitSites>,
}

impl CodeState {
    fn new() -> Self {
        CodeState {
            owner: Cell::new(std::ptr::null_mut()),
            entries: Cell::new(0),
            backward_jumps: Cell::new(0),
            generator_creations: Cell::new(0),
            warm_latch: Cell::new(0),
            has_loop: Cell::new(false),
            entry: Cell::new(None),
            baseline_entry: Cell::new(0),
            direct_entry: Cell::new(0),
            optimizer_tried: Cell::new(0),
            baseline: RefCell::new(Slot::NotTried),
            optimized: RefCell::new(Slot::NotTried),
            exits: RefCell::new(ExitSites::default()),
        }
    }

    /// Makes a pooled state new for `owner`.
    fn claim(&self, owner: *mut ffi::PyObject, has_loop: bool) {
        self.owner.set(owner);
        self.entries.set(0);
        self.backward_jumps.set(0);
        self.generator_creations.set(0);
        self.warm_latch.set(0);
        self.has_loop.set(has_loop);
    }

    /// Drops everything the state owns (compiled code included) and forgets its owner.
    fn release(&self) {
        self.owner.set(std::ptr::null_mut());
        self.entry.set(None);
        self.baseline_entry.set(0);
        self.direct_entry.set(0);
        self.optimizer_tried.set(0);
        self.baseline.replace(Slot::NotTried);
        self.optimized.replace(Slot::NotTried);
        self.exits.borrow_mut().clear(&STATS.exit_sites);
    }

    /// Counts one entry and returns the count before it.
    #[inline]
    pub fn count_entry(&self) -> u32 {
        let n = self.entries.get();
        self.entries.set(n.saturating_add(1));
        n
    }

    /// Counts an entry that only creates a generator or coroutine (see `generator_creations`).
    #[inline]
    pub fn count_generator_creation(&self) {
        self.generator_creations.set(self.generator_creations.get().saturating_add(1));
    }

    /// Where compiled code counts backward jumps (it stops at [`WARMUP_DELAY`]) and reads the
    /// entries, to tell whether the code is warm. Valid as long as the state: states are pooled,
    /// never freed.
    pub fn warmth_counters(&self) -> WarmthCounters {
        WarmthCounters {
            entries: self.entries.as_ptr(),
            generator_creations: self.generator_creations.as_ptr(),
            backward_jumps: self.backward_jumps.as_ptr(),
            warm_latch: self.warm_latch.as_ptr(),
        }
    }

    pub fn entries(&self) -> u32 {
        self.entries.get()
    }

    /// Counts an exit at code unit `unit` (see `exits::count`). GIL held; no Python code runs
    /// while the record is borrowed.
    pub fn count_exit_at(&self, unit: u32, reason: ExitReason) {
        let recorded = self.exits.borrow_mut().record(unit, reason, &STATS.exit_sites, STATS.generation());
        if !recorded {
            STATS.exit_sites_dropped.add_with_gil(1);
        }
    }

    /// This code's exits since the last `reset_stats()`: `(code unit, reason, count)`, sorted.
    pub fn exit_sites(&self) -> Vec<(u32, ExitReason, u32)> {
        self.exits.borrow_mut().snapshot(&STATS.exit_sites, STATS.generation())
    }

    pub fn has_loop(&self) -> bool {
        self.has_loop.get()
    }

    /// The entry point of the best compiled tier and that tier, if any.
    #[inline]
    pub fn entry(&self) -> Option<(EvalFrameFn, Tier)> {
        self.entry.get()
    }

    #[inline]
    fn slot(&self, tier: Tier) -> Option<&RefCell<Slot>> {
        match tier {
            Tier::Interpreter => None,
            Tier::Baseline => Some(&self.baseline),
            Tier::Optimized => Some(&self.optimized),
        }
    }

    /// Whether `tier` has not been tried for this code object yet.
    #[inline]
    pub fn not_tried(&self, tier: Tier) -> bool {
        self.slot(tier).is_some_and(|s| matches!(*s.borrow(), Slot::NotTried))
    }

    /// Whether tier 2 is due after `seen` entries: its threshold is on and reached, and it was
    /// never tried for this code object.
    #[inline]
    pub fn optimize_due(&self, seen: u32) -> bool {
        crate::options::OPTIMIZE_THRESHOLD.get().is_some_and(|t| seen >= t) && self.not_tried(Tier::Optimized)
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
            Slot::Compiled(code) => Some((code.entry(), code.tier(), code.direct_entry())),
            _ => None,
        });
        self.entry.set(best.map(|(entry, tier, _)| (entry, tier)));
        let (baseline, direct) = match best {
            Some((entry, Tier::Baseline, direct)) => (entry as usize, direct),
            _ => (0, 0),
        };
        self.baseline_entry.set(baseline);
        self.direct_entry.set(direct);
        self.optimizer_tried.set(!matches!(*self.optimized.borrow(), Slot::NotTried) as u8);
    }
}

/// Where machine code finds a [`CodeState`]'s fields (direct calls read them in place; `Cell`
/// is laid out as its contents).
pub mod offsets {
    use super::CodeState;
    use std::mem::offset_of;
    /// The owner (`*mut PyObject`): the code object, or null for a released state.
    pub const OWNER: i32 = offset_of!(CodeState, owner) as i32;
    /// Entries seen (`u32`, saturating).
    pub const ENTRIES: i32 = offset_of!(CodeState, entries) as i32;
    /// Of them, entries that only created a generator or coroutine (`u32`, saturating).
    pub const GENERATOR_CREATIONS: i32 = offset_of!(CodeState, generator_creations) as i32;
    /// The baseline's entry address while it is the best tier, else 0 (`usize`).
    pub const BASELINE_ENTRY: i32 = offset_of!(CodeState, baseline_entry) as i32;
    /// The baseline's direct-call entry while it is the best tier, else 0 (`usize`).
    pub const DIRECT_ENTRY: i32 = offset_of!(CodeState, direct_entry) as i32;
    /// 1 once the optimizing tier was tried (`u8`).
    pub const OPTIMIZER_TRIED: i32 = offset_of!(CodeState, optimizer_tried) as i32;
}

/// Where machine code reads our `co_extra` index (`isize`, negative until initialised) and
/// whether the extras layout was verified (`bool`), so that it may read the slot in place.
pub fn extra_slot_addrs() -> (*const isize, *const bool) {
    (CODE_EXTRA_INDEX.as_ptr() as *const isize, TRIM_EXTRAS.as_ptr() as *const bool)
}

/// What our `co_extra` slot of a code object holds.
enum Lookup<'a> {
    /// The state of this code object.
    Found(&'a CodeState),
    /// Nothing yet.
    Empty,
    /// A released state: the code object is being deallocated.
    Stale,
    /// No index (not initialised) or not a code object.
    Unavailable,
}

/// Reads our `co_extra` slot of `code`.
///
/// # Safety
/// GIL held; `code` is a live (or being deallocated) code object.
#[inline(always)]
unsafe fn lookup<'a>(code: *mut ffi::PyObject) -> Lookup<'a> {
    let index = CODE_EXTRA_INDEX.load(Ordering::Relaxed);
    if index < 0 {
        return Lookup::Unavailable;
    }
    let mut extra: *mut c_void = std::ptr::null_mut();
    if TRIM_EXTRAS.load(Ordering::Relaxed) {
        // The extras layout was verified at initialisation: read the slot as `_PyCode_GetExtra`
        // does, without its call and type check (the hook and direct calls run this for every
        // frame).
        // SAFETY: caller guarantees the GIL and a code object; the array holds `ce_size` slots.
        unsafe {
            let extras = (*(code as *mut cpython::CodeObject)).co_extra as *const CodeObjectExtra;
            if !extras.is_null() && index < (*extras).ce_size {
                extra = *(std::ptr::addr_of!((*extras).ce_extras) as *const *mut c_void).offset(index);
            }
        }
    } else {
        // SAFETY: forwarded from the caller.
        match unsafe { extra_through_api(code, index) } {
            Some(e) => extra = e,
            None => return Lookup::Unavailable,
        }
    }
    // SAFETY: a non-null extra at our index is always a pooled `CodeState`, never freed.
    match unsafe { (extra as *const CodeState).as_ref() } {
        None => Lookup::Empty,
        // A state whose owner is not `code` was released (and maybe reused by another code object).
        Some(state) if state.owner.get() == code => Lookup::Found(state),
        Some(_) => Lookup::Stale,
    }
}

/// Our `co_extra` slot through `_PyCode_GetExtra`, where the extras layout is not verified;
/// `None` when it raised (not a code object).
///
/// # Safety
/// As for [`lookup`].
#[cold]
#[inline(never)]
unsafe fn extra_through_api(code: *mut ffi::PyObject, index: ffi::Py_ssize_t) -> Option<*mut c_void> {
    let mut extra: *mut c_void = std::ptr::null_mut();
    // SAFETY: caller guarantees the GIL and a code object.
    if unsafe { cpython::_PyCode_GetExtra(code, index, &mut extra) } != 0 {
        // SAFETY: GIL held; drop the error GetExtra raised (not a code object).
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    Some(extra)
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

/// Whether the extras array of a code object may be trimmed to our slot (see `trim_extras`);
/// set once the layout check at initialisation passed.
static TRIM_EXTRAS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `_PyCodeObjectExtra` (Objects/codeobject.c; private, so not in the installed headers): the
/// number of slots, then the slots. `verify_extras_layout` checks it on a live code object.
#[repr(C)]
struct CodeObjectExtra {
    ce_size: ffi::Py_ssize_t,
    ce_extras: [*mut c_void; 1],
}

/// CPython sizes a code object's extras array for every registered co_extra user and, when the
/// code object dies, calls every user's free function for every slot, NULL or not. So merely
/// attaching our state would make other users' free functions run for code objects they never
/// touched (test_code's, a Python function, then runs during its own teardown and crashes).
/// When we are the first to attach extras to a code object, the array is trimmed to end at our
/// slot; CPython grows it again (filling with NULL) if another user attaches something later.
///
/// # Safety
/// GIL held; `code` is a live code object whose extras array we just created.
unsafe fn trim_extras(code: *mut ffi::PyObject, index: isize) {
    // SAFETY: per the contract; the layout was verified at initialisation.
    unsafe {
        let extra = (*(code as *mut cpython::CodeObject)).co_extra as *mut CodeObjectExtra;
        if !extra.is_null() && (*extra).ce_size > index + 1 {
            (*extra).ce_size = index + 1;
        }
    }
}

/// Checks `CodeObjectExtra` against a real code object: after our state is attached, the array
/// must hold it at our index within `ce_size`. Only then is trimming switched on.
///
/// # Safety
/// GIL held, after the index was requested.
unsafe fn verify_extras_layout(index: isize) -> bool {
    // SAFETY: per the contract; the probe code object is ours and freed at the end.
    unsafe {
        let code = ffi::PyCode_NewEmpty(c"peregrine".as_ptr(), c"co_extra_layout_check".as_ptr(), 1);
        if code.is_null() {
            ffi::PyErr_Clear();
            return false;
        }
        let codep = code as *mut ffi::PyObject;
        let ok = match CodeState::get_or_create(codep) {
            Some(state) => {
                let extra = (*(code as *mut cpython::CodeObject)).co_extra as *const CodeObjectExtra;
                !extra.is_null()
                    && (*extra).ce_size > index
                    && (*extra).ce_size < 256
                    && *(std::ptr::addr_of!((*extra).ce_extras) as *const *mut c_void).offset(index)
                        == state as *const CodeState as *mut c_void
            }
            None => false,
        };
        ffi::Py_DECREF(codep);
        ok
    }
}

/// Frees a [`CodeState`] when its code object dies (called by CPython with the GIL held).
unsafe extern "C" fn free_code_state(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    // A panic must not unwind into CPython; dropping compiled code does not panic, but be sure.
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: a non-null extra at our index is a pooled `CodeState` (never deallocated).
        let state = unsafe { &*(ptr as *const CodeState) };
        if state.owner.get().is_null() {
            return; // already released
        }
        state.release();
        STATS.live_code_states.add_with_gil(u64::MAX); // wrapping decrement
        free_list().push(ptr as usize);
    });
}

/// Released states waiting to be reused (addresses of leaked `Box<CodeState>`s). Touched only
/// with the GIL held; the mutex just makes the static sound.
fn free_list() -> std::sync::MutexGuard<'static, Vec<usize>> {
    static FREE: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());
    FREE.lock().unwrap_or_else(|e| e.into_inner())
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
    // SAFETY: GIL held, index requested.
    let layout_ok = unsafe { verify_extras_layout(index) };
    TRIM_EXTRAS.store(layout_ok, Ordering::Relaxed);
    if !layout_ok {
        log::warn!("co_extra layout check failed: other co_extra users' free functions will be called for every code object the JIT sees");
    }
    Ok(index)
}

impl CodeState {
    /// The state of `code` if the JIT has seen it, without creating one.
    ///
    /// # Safety
    /// GIL held; `code` is a live code object. The reference is valid while the code object lives.
    #[inline]
    pub unsafe fn existing<'a>(code: *mut ffi::PyObject) -> Option<&'a CodeState> {
        // SAFETY: forwarded from the caller.
        match unsafe { lookup(code) } {
            Lookup::Found(state) => Some(state),
            Lookup::Empty | Lookup::Stale | Lookup::Unavailable => None,
        }
    }

    /// The state of `code`, created on first use. `None` when CPython cannot store it (out of
    /// memory); the caller then runs the frame in the interpreter.
    ///
    /// # Safety
    /// As for [`CodeState::existing`].
    #[inline]
    pub unsafe fn get_or_create<'a>(code: *mut ffi::PyObject) -> Option<&'a CodeState> {
        // SAFETY: forwarded from the caller.
        match unsafe { lookup(code) } {
            Lookup::Found(state) => Some(state),
            // A stale state (code object being deallocated) gets no new one: setting one would
            // make CPython free ours twice.
            Lookup::Stale | Lookup::Unavailable => None,
            // SAFETY: forwarded from the caller.
            Lookup::Empty => unsafe { Self::create(code) },
        }
    }

    /// The part of [`CodeState::get_or_create`] that makes a new state.
    ///
    /// # Safety
    /// As for [`CodeState::existing`]; `code` has no state yet.
    #[cold]
    unsafe fn create<'a>(code: *mut ffi::PyObject) -> Option<&'a CodeState> {
        let index = CODE_EXTRA_INDEX.load(Ordering::Relaxed);
        // SAFETY: GIL held, live code object.
        let has_loop = unsafe { code_has_loop(code) };
        let reused = free_list().pop();
        let ptr = reused.map_or_else(|| Box::into_raw(Box::new(CodeState::new())), |p| p as *mut CodeState);
        // SAFETY: `ptr` is a pooled state nobody owns.
        unsafe { (*ptr).claim(code, has_loop) };
        // SAFETY: GIL held, live code object.
        let first_extras = unsafe { (*(code as *mut cpython::CodeObject)).co_extra.is_null() };
        // SAFETY: GIL held, live code object; on success CPython owns `ptr` until it calls
        // `free_code_state`.
        if unsafe { cpython::_PyCode_SetExtra(code, index, ptr as *mut c_void) } != 0 {
            // SAFETY: CPython did not take `ptr`: back to the pool; drop the MemoryError.
            unsafe {
                (*ptr).release();
                ffi::PyErr_Clear();
            }
            free_list().push(ptr as usize);
            return None;
        }
        if first_extras && TRIM_EXTRAS.load(Ordering::Relaxed) {
            // SAFETY: we just created this code object's extras array.
            unsafe { trim_extras(code, index) };
        }
        STATS.live_code_states.add_with_gil(1);
        // SAFETY: just stored; lives until the code object dies.
        Some(unsafe { &*ptr })
    }
}
