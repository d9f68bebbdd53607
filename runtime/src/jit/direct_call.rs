//! Direct calls: compiled code calling a Python function whose code is compiled pushes the
//! callee's `_PyInterpreterFrame` itself and enters its machine code, without
//! `PyObject_Vectorcall`, `_PyEval_Vector` and the hook, the way stock 3.11 pushes a Python
//! callee's frame inline in CALL (`CALL_PY_EXACT_ARGS`, `CALL_PY_WITH_DEFAULTS`, the generic
//! CALL's `_PyEvalFramePushAndInit`): the frame steals the arguments and the callable from the
//! caller's stack, so a callee sees the reference counts stock shows (through vectorcall it saw
//! one more), and the caller's `prev_instr` moves to CALL's last cache unit once the frame is
//! pushed.
//!
//! libpython does not export its frame push, clear and pop (shared/design/cpython-3.11.md), so
//! they are written here against the layouts in `cpython::layout`: [`push_frame`],
//! [`clear_and_pop`] and, for a frame object that outlives its frame (a traceback or
//! `sys._getframe()` kept it), [`take_ownership`]. A callee whose code is not compiled (or while
//! tracing is on, or near the C stack's end) still gets its frame pushed here, and the
//! frame-evaluation function (the hook) runs it, as `_PyEval_Vector` would have. Everything this
//! does not handle goes the generic way and is told apart by [`DirectCall::NotHandled`]: `*args`
//! and `**kwargs` parameters, calls that do not bind (the generic path raises the TypeError),
//! keywords that match a parameter name only by value, a full data-stack chunk. Keyword
//! arguments and keyword-only parameters bind as `initialize_locals` binds them ([`bind`]). A
//! generator or coroutine function is called like any other: its compiled code runs to
//! RETURN_GENERATOR, which moves the frame into the new object and returns it.

use super::Sp;
use crate::code_state::CodeState;
use crate::cpython::{co_flags, ffi, CodeObject, FrameObject, FunctionObject, InterpreterFrame, ThreadState};
use crate::stats::STATS;
use crate::Tier;
use std::mem::offset_of;
use crate::cpython::layout::INTERP_EVAL_FRAME_OFFSET;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `FRAME_OWNED_BY_THREAD` and `FRAME_OWNED_BY_FRAME_OBJECT` (`enum _frameowner`).
const OWNED_BY_THREAD: i8 = 0;
const OWNED_BY_FRAME_OBJECT: i8 = 2;

/// `FRAME_SPECIALS_SIZE`: the words of a frame before `localsplus`.
const FRAME_SPECIALS_WORDS: usize = offset_of!(InterpreterFrame, localsplus) / 8;

/// The address of the hook (0 while it is not installed). Calls are direct only while the
/// interpreter's frame-evaluation function is this one: with the JIT disabled new frames run in
/// the interpreter, and under another tool's hook (installed over ours, which it may do without
/// telling us) stock CPython calls through vectorcall and that hook, so must we.
static HOOK_FN: AtomicUsize = AtomicUsize::new(0);

/// Where machine code reads the hook's address (see [`HOOK_FN`]).
pub fn hook_fn_addr() -> *const usize {
    HOOK_FN.as_ptr() as *const usize
}

/// The end of a direct call machine code made (`baseline::call_stub`): the callee's frame,
/// finished, is cleared and popped as [`try_direct_call`] does after it ran.
///
/// # Safety
/// GIL held; `frame` was pushed by the stub on `tstate`'s data stack and has run.
pub unsafe extern "C" fn pg_direct_call_finish(tstate: *mut ThreadState, frame: *mut InterpreterFrame) {
    // SAFETY: per the contract.
    unsafe { clear_and_pop(tstate, frame) }
}

/// Called by the hook's installation (with its address) and removal (with 0).
pub fn set_hook(hook: usize) {
    HOOK_FN.store(hook, Ordering::Relaxed);
}

/// Whether the interpreter of `tstate` evaluates frames with our hook now.
///
/// # Safety
/// GIL held; `tstate` is the current thread state.
#[inline(always)]
pub(super) unsafe fn our_hook_installed(tstate: *mut ThreadState) -> bool {
    // SAFETY: `interp` is live while its thread runs; the offset is checked against the C
    // compiler (`layout::OFFSETS`).
    let installed = unsafe { *(((*tstate).interp as *const u8).add(INTERP_EVAL_FRAME_OFFSET) as *const usize) };
    installed != 0 && installed == HOOK_FN.load(Ordering::Relaxed)
}

/// The hook, to run a frame as `_PyEval_EvalFrame` would.
///
/// # Safety
/// [`our_hook_installed`] returned true since the hook was last installed or removed.
#[inline(always)]
unsafe fn hook_fn() -> crate::cpython::EvalFrameFn {
    // SAFETY: per the contract HOOK_FN is our hook's address, non-zero, with the eval-frame
    // signature.
    unsafe { std::mem::transmute(HOOK_FN.load(Ordering::Relaxed)) }
}

/// What [`try_direct_call`] did.
pub enum DirectCall {
    /// Not a call this path handles: nothing was touched, the caller calls the generic way.
    NotHandled,
    /// The call ran: the result (null with an exception set). The arguments and the callable
    /// were consumed.
    Done(*mut ffi::PyObject),
}

/// Parameters a direct call binds at most (a bit each in [`Binding::filled`]), keyword
/// arguments and keyword-only parameters at most: larger calls go the generic way.
const MAX_PARAMETERS: usize = 64;
const MAX_KEYWORDS: usize = 16;

/// Where a call's arguments go, worked out before the frame is pushed (so a call that does not
/// bind this way has touched nothing): `initialize_locals` (Python/ceval.c) for a code object
/// without `*args` and `**kwargs`, for the calls that bind without an error.
struct Binding {
    /// Positional arguments, then keyword arguments (values after the positional ones).
    npos: usize,
    nkw: usize,
    /// The parameter each keyword argument binds.
    kw_slot: [u8; MAX_KEYWORDS],
    /// Parameters bound so far (positional and keyword arguments).
    filled: u64,
    /// Borrowed values of the keyword-only parameters left to their `__kwdefaults__`.
    kwonly_default: [*mut ffi::PyObject; MAX_KEYWORDS],
}

/// What [`bind`] found.
enum Bound {
    Binds(Binding),
    /// Not a call this path binds (the generic path binds it, or raises the TypeError).
    No,
    /// Looking a keyword-only default up raised (a `__kwdefaults__` key's `__eq__`): the call
    /// fails with that exception, as in stock, where the same lookup raises in the new frame.
    Raised,
}

/// Binds `nargs` arguments (the last `kwnames.len()` of them by keyword) to the parameters of
/// `code`, a code object of `func` without `*args`/`**kwargs`, without running code: keywords
/// match parameter names by identity (`initialize_locals`' first pass; names compared by value
/// go the generic way), a parameter bound twice or left without a default goes the generic way.
///
/// # Safety
/// GIL held; `func` is a live function, `code` its code, `kwnames` a tuple of str or null.
#[inline]
unsafe fn bind(func: *mut FunctionObject, code: *mut CodeObject, nargs: usize, kwnames: *mut ffi::PyObject) -> Bound {
    // SAFETY: per the contract; `co_localsplusnames` holds a name per local, parameters first.
    unsafe {
        let nkw = if kwnames.is_null() { 0 } else { ffi::PyTuple_GET_SIZE(kwnames) as usize };
        let npos = nargs - nkw;
        let argcount = (*code).co_argcount as usize;
        let kwonly = (*code).co_kwonlyargcount as usize;
        let total = argcount + kwonly;
        if npos > argcount || total > MAX_PARAMETERS || nkw > MAX_KEYWORDS || kwonly > MAX_KEYWORDS {
            return Bound::No;
        }
        let mut b = Binding {
            npos,
            nkw,
            kw_slot: [0; MAX_KEYWORDS],
            filled: if npos == 64 { u64::MAX } else { (1u64 << npos) - 1 },
            kwonly_default: [std::ptr::null_mut(); MAX_KEYWORDS],
        };
        let names = (*code).co_localsplusnames;
        let posonly = (*code).co_posonlyargcount as usize;
        for k in 0..nkw {
            let name = ffi::PyTuple_GET_ITEM(kwnames, k as ffi::Py_ssize_t);
            let Some(j) = (posonly..total).find(|&j| ffi::PyTuple_GET_ITEM(names, j as ffi::Py_ssize_t) == name) else {
                return Bound::No;
            };
            if b.filled & (1 << j) != 0 {
                return Bound::No;
            }
            b.filled |= 1 << j;
            b.kw_slot[k] = j as u8;
        }
        let defaults = (*func).func_defaults;
        let ndefaults = if defaults.is_null() { 0 } else { ffi::PyTuple_GET_SIZE(defaults) as usize };
        for i in npos..argcount {
            if b.filled & (1 << i) == 0 && i + ndefaults < argcount {
                return Bound::No;
            }
        }
        for i in argcount..total {
            if b.filled & (1 << i) != 0 {
                continue;
            }
            let kwdefs = (*func).func_kwdefaults;
            if kwdefs.is_null() || ffi::PyDict_CheckExact(kwdefs) == 0 {
                return Bound::No;
            }
            let value = ffi::PyDict_GetItemWithError(kwdefs, ffi::PyTuple_GET_ITEM(names, i as ffi::Py_ssize_t));
            if value.is_null() {
                return if ffi::PyErr_Occurred().is_null() { Bound::No } else { Bound::Raised };
            }
            b.kwonly_default[i - argcount] = value;
        }
        Bound::Binds(b)
    }
}

/// Calls `function`, an exact Python function, with the `nargs` arguments at `args` (the last
/// ones by keyword, named by `kwnames`, a tuple of str, or null), directly if its shape and state
/// allow (see the module documentation). `caller` is the running frame of compiled code and
/// `last_unit` its CALL's last cache unit.
///
/// # Safety
/// GIL held; `function` is an exact `PyFunction` and it and the arguments are strong references
/// on `caller`'s value stack, which on [`DirectCall::Done`] the callee owns (the caller must
/// drop those slots without releasing them).
#[inline]
pub unsafe fn try_direct_call(
    tstate: *mut ThreadState,
    caller: *mut InterpreterFrame,
    function: *mut ffi::PyObject,
    args: Sp,
    nargs: usize,
    kwnames: *mut ffi::PyObject,
    last_unit: *mut u16,
) -> DirectCall {
    // SAFETY: per the contract; every pointer read is a field of a live object.
    unsafe {
        if !our_hook_installed(tstate) {
            return DirectCall::NotHandled;
        }
        let func = function as *mut FunctionObject;
        let code = (*func).func_code as *mut CodeObject;
        let flags = (*code).co_flags;
        let rejected = co_flags::CO_VARARGS | co_flags::CO_VARKEYWORDS;
        if flags & co_flags::CO_OPTIMIZED == 0 || flags & rejected != 0 {
            return DirectCall::NotHandled;
        }
        let argcount = (*code).co_argcount as usize;
        let defaults = (*func).func_defaults;
        let ndefaults = if defaults.is_null() { 0 } else { ffi::PyTuple_GET_SIZE(defaults) as usize };
        // Positional arguments to a signature without keyword-only parameters, the common
        // call, bind without a `Binding`.
        let positional = kwnames.is_null() && (*code).co_kwonlyargcount == 0;
        if positional && (nargs > argcount || nargs + ndefaults < argcount) {
            return DirectCall::NotHandled;
        }
        let binding = if positional { None } else { Some(bind(func, code, nargs, kwnames)) };
        let b = match binding {
            None => None,
            Some(Bound::Binds(b)) => Some(b),
            Some(Bound::No) => return DirectCall::NotHandled,
            Some(Bound::Raised) => {
                // The call consumed its arguments and callable, as a failed frame push does.
                for i in 0..nargs {
                    ffi::Py_DECREF(*args.add(i));
                }
                ffi::Py_DECREF(function);
                return DirectCall::Done(std::ptr::null_mut());
            }
        };
        let Some(frame) = push_frame(tstate, code) else {
            return DirectCall::NotHandled;
        };
        // `_PyFrame_InitializeSpecials`: the frame owns the callable's stack reference.
        (*frame).f_func = function;
        (*frame).f_code = code;
        ffi::Py_INCREF(code as *mut ffi::PyObject);
        (*frame).f_builtins = (*func).func_builtins;
        (*frame).f_globals = (*func).func_globals;
        (*frame).f_locals = std::ptr::null_mut();
        let nlocalsplus = (*code).co_nlocalsplus as usize;
        (*frame).stacktop = nlocalsplus as i32;
        (*frame).frame_obj = std::ptr::null_mut();
        (*frame).prev_instr = (std::ptr::addr_of_mut!((*code).co_code_adaptive) as *mut u16).wrapping_sub(1);
        (*frame).is_entry = false;
        (*frame).owner = OWNED_BY_THREAD as std::os::raw::c_char;
        // The arguments (stolen) where they bind, the defaults the call leaves out, then empty
        // locals. A word at a time: calls pass a few arguments, for which a call to memmove
        // costs more than the copy.
        let locals = std::ptr::addr_of_mut!((*frame).localsplus) as Sp;
        let total = argcount + (*code).co_kwonlyargcount as usize;
        let default_at = |i: usize| {
            let default = ffi::PyTuple_GET_ITEM(defaults, (i + ndefaults - argcount) as ffi::Py_ssize_t);
            ffi::Py_INCREF(default);
            default
        };
        match &b {
            None => {
                for i in 0..nargs {
                    std::ptr::write_volatile(locals.add(i), *args.add(i));
                }
                for i in nargs..argcount {
                    *locals.add(i) = default_at(i);
                }
            }
            Some(b) => {
                for i in 0..b.npos {
                    std::ptr::write_volatile(locals.add(i), *args.add(i));
                }
                for k in 0..b.nkw {
                    *locals.add(b.kw_slot[k] as usize) = *args.add(b.npos + k);
                }
                for i in b.npos..argcount {
                    if b.filled & (1 << i) == 0 {
                        *locals.add(i) = default_at(i);
                    }
                }
                for i in argcount..total {
                    if b.filled & (1 << i) == 0 {
                        let default = b.kwonly_default[i - argcount];
                        ffi::Py_INCREF(default);
                        *locals.add(i) = default;
                    }
                }
            }
        }
        for i in total..nlocalsplus {
            *locals.add(i) = std::ptr::null_mut();
        }
        // Pushed: as ceval's inline call, the caller now shows CALL's last cache unit.
        (*caller).prev_instr = last_unit;
        let creating = flags & co_flags::RESUMABLE != 0; // runs to RETURN_GENERATOR
        let result = run_frame(tstate, frame, code, &STATS.baseline.direct_calls, creating);
        clear_and_pop(tstate, frame);
        DirectCall::Done(result)
    }
}

/// Runs `frame`, a frame of `code` that compiled code pushed or resumes itself: at its machine
/// code when [`compiled_entry`] allows, its entry counted as the hook counts it (before it runs,
/// in `counter` too, and as a generator creation when `creating`), else through the hook, as
/// `_PyEval_EvalFrame` would.
///
/// # Safety
/// GIL held; `frame` is complete, linked as the hook expects, and `code` is its code object.
#[inline(always)]
pub(super) unsafe fn run_frame(
    tstate: *mut ThreadState,
    frame: *mut InterpreterFrame,
    code: *mut CodeObject,
    counter: &crate::stats::Counter,
    creating: bool,
) -> *mut ffi::PyObject {
    // SAFETY: per the contract; our hook is installed (callers checked `our_hook_installed`).
    unsafe {
        match compiled_entry(tstate, code) {
            Some((state, entry)) => {
                state.count_entry();
                if creating {
                    state.count_generator_creation();
                }
                STATS.baseline.entries.add_with_gil(1);
                counter.add_with_gil(1);
                entry(tstate, frame, 0)
            }
            // Not compiled (yet), tracing on, a deep recursion: the hook decides.
            None => hook_fn()(tstate, frame, 0),
        }
    }
}

/// The state and baseline entry of `code` when a frame of it may enter compiled code directly:
/// what the hook would run, without the hook's own work (tracing on at entry, a tier to
/// compile or try, a C stack to switch) being due.
///
/// # Safety
/// GIL held; `code` is a live code object.
#[inline(always)]
unsafe fn compiled_entry<'a>(tstate: *mut ThreadState, code: *mut CodeObject) -> Option<(&'a CodeState, crate::cpython::EvalFrameFn)> {
    // SAFETY: per the contract.
    unsafe {
        if (*(*tstate).cframe).use_tracing != 0 {
            return None;
        }
        let state = CodeState::existing(code as *mut ffi::PyObject)?;
        let Some((entry, Tier::Baseline)) = state.entry() else {
            return None;
        };
        if state.optimize_due(state.entries()) {
            return None;
        }
        if crate::cstack::nearly_exhausted() {
            return None;
        }
        Some((state, entry))
    }
}

/// `_PyThreadState_BumpFramePointer` without its slow path: room for a frame of `code` in the
/// current data-stack chunk, or `None` (a new chunk is the generic path's business). Never the
/// first slot of a chunk, which the pop would take for an empty chunk to free.
///
/// # Safety
/// GIL held; `tstate` is the current thread state, `code` a live code object.
#[inline(always)]
unsafe fn push_frame(tstate: *mut ThreadState, code: *mut CodeObject) -> Option<*mut InterpreterFrame> {
    // SAFETY: per the contract; the chunk is the thread's current one.
    unsafe {
        let base = (*tstate).datastack_top;
        let chunk = (*tstate).datastack_chunk;
        if base.is_null() || chunk.is_null() || base == std::ptr::addr_of_mut!((*chunk).data) as *mut *mut ffi::PyObject {
            return None;
        }
        let size = (*code).co_nlocalsplus as usize + (*code).co_stacksize as usize + FRAME_SPECIALS_WORDS;
        let top = base.wrapping_add(size);
        if top >= (*tstate).datastack_limit {
            return None;
        }
        (*tstate).datastack_top = top;
        Some(base as *mut InterpreterFrame)
    }
}

/// `_PyEvalFrameClearAndPop` for a frame [`push_frame`] pushed, after it ran (returned or
/// raised): `_PyFrame_Clear` one recursion level deeper (destructors of its locals run there,
/// as in stock), then the pop.
///
/// # Safety
/// GIL held; `frame` is the thread's top frame on the data stack, finished, no longer the current
/// frame.
unsafe fn clear_and_pop(tstate: *mut ThreadState, frame: *mut InterpreterFrame) {
    // SAFETY: per the contract.
    unsafe {
        (*tstate).recursion_remaining -= 1;
        clear_frame(tstate, frame);
        (*tstate).recursion_remaining += 1;
        (*tstate).datastack_top = frame as *mut *mut ffi::PyObject;
    }
}

/// `_PyFrame_Clear`, for a frame on the data stack or in a generator.
///
/// # Safety
/// As for [`clear_and_pop`] (a generator's frame: the generator is marked cleared).
pub(super) unsafe fn clear_frame(tstate: *mut ThreadState, frame: *mut InterpreterFrame) {
    // SAFETY: per the contract; `stacktop` counts the frame's live slots.
    unsafe {
        let f = (*frame).frame_obj;
        if !f.is_null() {
            (*frame).frame_obj = std::ptr::null_mut();
            if ffi::Py_REFCNT(f) > 1 {
                take_ownership(tstate, f as *mut FrameObject, frame);
                ffi::Py_DECREF(f);
                return;
            }
            ffi::Py_DECREF(f);
        }
        let locals = std::ptr::addr_of_mut!((*frame).localsplus) as Sp;
        for i in 0..(*frame).stacktop.max(0) as usize {
            ffi::Py_XDECREF(*locals.add(i));
        }
        ffi::Py_XDECREF((*frame).f_locals);
        ffi::Py_DECREF((*frame).f_func);
        ffi::Py_DECREF((*frame).f_code as *mut ffi::PyObject);
    }
}

/// `take_ownership` (Python/frame.c): a frame object still referenced when its frame ends gets
/// a copy of the frame, which it owns from then on; its `f_back` becomes the previous frame's
/// frame object (made now if there was none), since the data-stack link dies with the frame.
///
/// # Safety
/// As for [`clear_and_pop`]; `f` is `frame`'s frame object, which the caller still holds.
#[cold]
unsafe fn take_ownership(tstate: *mut ThreadState, f: *mut FrameObject, frame: *mut InterpreterFrame) {
    // SAFETY: per the contract; the frame object was allocated with room for the frame
    // (`_PyFrame_New_NoTrack` sizes it for the code's `co_framesize`).
    unsafe {
        let size = (std::ptr::addr_of_mut!((*frame).localsplus) as *mut u8)
            .add(8 * (*frame).stacktop.max(0) as usize)
            .offset_from(frame as *mut u8) as usize;
        let owned = std::ptr::addr_of_mut!((*f)._f_frame_data) as *mut InterpreterFrame;
        std::ptr::copy_nonoverlapping(frame as *const u8, owned as *mut u8, size);
        (*f).f_frame = owned;
        (*owned).owner = OWNED_BY_FRAME_OBJECT as std::os::raw::c_char;
        let code = (*owned).f_code;
        let first = std::ptr::addr_of_mut!((*code).co_code_adaptive) as *mut u16;
        if (*owned).prev_instr < first.wrapping_add((*code)._co_firsttraceable as usize) {
            // Never ran (the recursion limit refused it): as if its first RESUME had.
            (*owned).prev_instr = first.wrapping_add((*code)._co_firsttraceable as usize);
        }
        let prev = (*owned).previous;
        if !prev.is_null() {
            // The previous frame is the caller, running and current again: PyEval_GetFrame
            // makes (or returns) its frame object, as `_PyFrame_GetFrameObject` would.
            let back = if !(*prev).frame_obj.is_null() {
                (*prev).frame_obj
            } else if (*(*tstate).cframe).current_frame == prev {
                // As `_PyFrame_GetFrameObject`; a failure (MemoryError) is cleared, as there.
                ffi::PyEval_GetFrame() as *mut ffi::PyObject
            } else {
                std::ptr::null_mut()
            };
            if !back.is_null() {
                ffi::Py_INCREF(back);
                (*f).f_back = back;
            }
            (*owned).previous = std::ptr::null_mut();
        }
        if ffi::PyObject_GC_IsTracked(f as *mut ffi::PyObject) == 0 {
            ffi::PyObject_GC_Track(f as *mut std::ffi::c_void);
        }
    }
}

