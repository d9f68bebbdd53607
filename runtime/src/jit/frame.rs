//! The frame protocol compiled code follows, mirroring `_PyEval_EvalFrameDefault`: push a
//! `_PyCFrame` on entry and count the recursion; pop it on return; and, to hand the frame to the
//! interpreter at any instruction boundary, write `prev_instr`/`stacktop` back, pop the cframe and
//! call `_PyEval_EvalFrameDefault` (see shared/design/cpython-3.11.md).

use super::Sp;
use crate::cpython::layout::{INTERP_CEVAL_OFFSET, RUNTIME_SIGNALS_PENDING_OFFSET};
use std::sync::atomic::AtomicI32;
use crate::cpython::{self, ffi, CFrame, CevalState, InterpreterFrame, ThreadState};
use crate::exits::{self, ExitReason};
use crate::stats::STATS;
use std::cell::Cell;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::trace::{TraceFunc, PY_TRACE_CALL};

thread_local! {
    /// The trace and profile functions set aside by `swallow_next_call_event`.
    static SET_ASIDE: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// `localsplus` of a frame.
///
/// # Safety
/// `frame` is a live frame.
#[inline(always)]
unsafe fn localsplus(frame: *mut InterpreterFrame) -> Sp {
    // SAFETY: `localsplus` is the frame's trailing array.
    unsafe { std::ptr::addr_of_mut!((*frame).localsplus) as Sp }
}

/// Starts running `frame` in compiled code: pushes `cframe` (which lives in the compiled
/// function's stack frame), links the frame and counts the recursion. Returns the value-stack
/// pointer, or null when the interpreter must run this frame from the start instead (it is being
/// resumed mid-way, or the recursion limit is reached and the interpreter raises RecursionError).
///
/// # Safety
/// GIL held; the arguments are those CPython passed to the frame-evaluation function; `cframe`
/// stays valid until [`pg_frame_return`] or [`pg_frame_handoff`].
pub unsafe extern "C" fn pg_frame_enter(
    tstate: *mut ThreadState,
    frame: *mut InterpreterFrame,
    cframe: *mut CFrame,
) -> Sp {
    // SAFETY: all pointers are live per the contract above.
    unsafe {
        let code = (*frame).f_code;
        let first = std::ptr::addr_of_mut!((*code).co_code_adaptive) as *mut u16;
        // Only generator and coroutine frames are resumed mid-way (their code dispatches on
        // `prev_instr`, a fresh one to its start, where RETURN_GENERATOR makes the object).
        let fresh = (*frame).prev_instr == first.wrapping_sub(1);
        let resumable = (*code).co_flags & crate::cpython::co_flags::RESUMABLE != 0;
        // The interpreter then runs the frame from `prev_instr + 1`.
        if !fresh && !resumable {
            exits::count(frame, None, ExitReason::ResumedFrame, (*frame).prev_instr.add(1));
            return std::ptr::null_mut();
        }
        if (*tstate).recursion_remaining <= 0 {
            exits::count(frame, None, ExitReason::RecursionLimit, (*frame).prev_instr.add(1));
            return std::ptr::null_mut();
        }
        let prev = (*tstate).cframe;
        (*cframe).use_tracing = (*prev).use_tracing;
        (*cframe).previous = prev;
        (*tstate).cframe = cframe;
        (*frame).is_entry = true;
        (*frame).previous = (*prev).current_frame;
        (*cframe).current_frame = frame;
        (*tstate).recursion_remaining -= 1;
        let sp = localsplus(frame).offset((*frame).stacktop as isize);
        // As ceval: the GC must not read a stack that compiled code is changing.
        (*frame).stacktop = -1;
        sp
    }
}

/// Undoes [`pg_frame_enter`]'s cframe push and recursion count, leaving the value stack at `sp`.
/// A frame entered by a direct call (`frame->is_entry` 0) shares its caller's cframe, as
/// ceval's inline calls do: the caller becomes its current frame again.
///
/// # Safety
/// As for [`pg_frame_enter`], after it succeeded for this frame, or for a frame entered at
/// `baseline::direct_entry`'s callee entry, `cframe` then being the shared one.
#[inline(always)]
unsafe fn leave(tstate: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, cframe: *mut CFrame) {
    // SAFETY: per the contract.
    unsafe {
        (*frame).stacktop = sp.offset_from(localsplus(frame)) as i32;
        (*tstate).recursion_remaining += 1;
        if !(*frame).is_entry {
            (*cframe).current_frame = (*frame).previous;
            return;
        }
        (*tstate).cframe = (*cframe).previous;
        // Tracing switched on while this frame ran must reach the caller, as ceval does.
        (*(*tstate).cframe).use_tracing = (*cframe).use_tracing;
    }
}

/// `RETURN_VALUE`'s frame work: the value stack is empty at `sp`; the caller returns the value.
///
/// # Safety
/// As for [`leave`].
pub unsafe extern "C" fn pg_frame_return(
    tstate: *mut ThreadState,
    frame: *mut InterpreterFrame,
    sp: Sp,
    cframe: *mut CFrame,
) {
    // SAFETY: forwarded.
    unsafe { leave(tstate, frame, sp, cframe) }
}

/// The `reason` argument of [`pg_frame_handoff`]: an [`ExitReason`] in the low byte, and this
/// bit when the optimized tier (not the baseline) hands over.
pub const HANDOFF_FROM_OPTIMIZED: u32 = 0x100;

/// Hands the frame to the interpreter: it resumes at `prev_instr + 1` with the value stack at `sp`,
/// or, with `throwflag` 1, raises the pending exception at `prev_instr` (traceback entry, exception
/// table and all, exactly as if it had run the instruction itself). Returns the frame's result.
///
/// # Safety
/// As for [`leave`]; `prev_instr` points into this frame's `co_code_adaptive` (or one unit
/// before it); with `throwflag` 1 an exception is set.
pub unsafe extern "C" fn pg_frame_handoff(
    tstate: *mut ThreadState,
    frame: *mut InterpreterFrame,
    sp: Sp,
    cframe: *mut CFrame,
    prev_instr: *mut u16,
    reason: u32,
) -> *mut ffi::PyObject {
    let tier = if reason & HANDOFF_FROM_OPTIMIZED != 0 { &STATS.optimized } else { &STATS.baseline };
    tier.deopts.add_with_gil(1);
    let reason = ExitReason::from_u32(reason & 0xff);
    let throwflag = (reason == ExitReason::Exception) as i32;
    // SAFETY: per the contract.
    unsafe {
        // The site: the instruction the interpreter raises at, or the next one it runs.
        let at = if throwflag != 0 { prev_instr } else { prev_instr.add(1) };
        exits::count(frame, None, reason, at);
        leave(tstate, frame, sp, cframe);
        (*frame).prev_instr = prev_instr;
        if throwflag != 0 && (*(*tstate).cframe).use_tracing != 0 {
            swallow_next_call_event(tstate);
        }
        cpython::_PyEval_EvalFrameDefault(tstate, frame, throwflag)
    }
}

/// [`pg_frame_handoff`] before an instruction, for a hand-off with tracing possibly on: first
/// makes the 'line' event the interpreter is about to decide exactly stock's (see
/// `trace::correct_line_event`; the frame's `prev_instr` is still where the last instruction left
/// it). `prev_instr` is the unit before the instruction, as for [`pg_frame_handoff`].
///
/// # Safety
/// As for [`pg_frame_handoff`], without an exception set.
pub unsafe extern "C" fn pg_frame_handoff_traced(
    tstate: *mut ThreadState,
    frame: *mut InterpreterFrame,
    sp: Sp,
    cframe: *mut CFrame,
    prev_instr: *mut u16,
    reason: u32,
) -> *mut ffi::PyObject {
    // SAFETY: per the contract; our cframe is still the thread's current one.
    unsafe {
        if (*cframe).use_tracing == 0 {
            return pg_frame_handoff(tstate, frame, sp, cframe, prev_instr, reason);
        }
        match super::trace::correct_line_event(tstate, frame, sp, prev_instr.add(1)) {
            super::trace::Correction::Resume { sp, resume } => {
                pg_frame_handoff(tstate, frame, sp, cframe, resume.sub(1), reason)
            }
            super::trace::Correction::Raise { sp } => {
                let at = (*frame).prev_instr;
                let tier = reason & HANDOFF_FROM_OPTIMIZED;
                pg_frame_handoff(tstate, frame, sp, cframe, at, ExitReason::Exception as u32 | tier)
            }
        }
    }
}

/// With tracing on, `_PyEval_EvalFrameDefault(.., throwflag=1)` first reports a 'call' event
/// (it is meant for generator.throw()). Our frame is not being entered, it already runs: the
/// tracer saw its 'call'. So the next 'call' event this thread's trace and profile functions get
/// is swallowed by a one-shot shim that puts the real function back.
///
/// # Safety
/// GIL held; `tstate` is the current thread state and `_PyEval_EvalFrameDefault` is called next.
unsafe fn swallow_next_call_event(tstate: *mut ThreadState) {
    // SAFETY: per the contract; the shims run on this thread, before any other Python code.
    unsafe {
        let trace = (*tstate).c_tracefunc as usize;
        let profile = (*tstate).c_profilefunc as usize;
        SET_ASIDE.with(|s| s.set((trace, profile)));
        if trace != 0 {
            (*tstate).c_tracefunc = swallow_call::<false> as *mut std::ffi::c_void;
        }
        if profile != 0 {
            (*tstate).c_profilefunc = swallow_call::<true> as *mut std::ffi::c_void;
        }
    }
}

/// The one-shot shim: puts the real trace (`PROFILE` false) or profile function back, swallows
/// the 'call' event and passes any other event on.
unsafe extern "C" fn swallow_call<const PROFILE: bool>(
    obj: *mut ffi::PyObject,
    frame: *mut ffi::PyObject,
    what: c_int,
    arg: *mut ffi::PyObject,
) -> c_int {
    let (trace, profile) = SET_ASIDE.with(|s| s.get());
    let real = if PROFILE { profile } else { trace };
    // SAFETY: called by CPython on the thread that set the shim, GIL held; `real` is the function
    // that was installed (non-null, or the shim would not be installed).
    unsafe {
        let tstate = ffi::PyThreadState_Get() as *mut ThreadState;
        let slot = if PROFILE { &mut (*tstate).c_profilefunc } else { &mut (*tstate).c_tracefunc };
        *slot = real as *mut std::ffi::c_void;
        if what == PY_TRACE_CALL {
            return 0;
        }
        std::mem::transmute::<usize, TraceFunc>(real)(obj, frame, what, arg)
    }
}

/// The `_ceval_state` of the thread's interpreter.
///
/// # Safety
/// `tstate` is a live thread state.
unsafe fn ceval_state(tstate: *mut ThreadState) -> *mut CevalState {
    // SAFETY: the interpreter state outlives its threads; the offset is checked by the layout test.
    unsafe { ((*tstate).interp as *mut u8).add(INTERP_CEVAL_OFFSET) as *mut CevalState }
}

/// Called when the eval breaker is set before `RESUME` or a backward jump. Gives up the GIL when
/// another thread asked for it; anything else (signals, pending calls, an asynchronous exception)
/// the interpreter handles exactly when it runs the instruction itself, so 1 asks the caller to
/// hand the frame over before the instruction, 0 to go on.
///
/// # Safety
/// GIL held; `tstate` is the current thread state.
pub unsafe extern "C" fn pg_eval_breaker(tstate: *mut ThreadState) -> u32 {
    // SAFETY: GIL held, live thread state.
    unsafe {
        let ceval = ceval_state(tstate);
        if (*ceval).gil_drop_request.load(Ordering::Relaxed) != 0 {
            let saved = ffi::PyEval_SaveThread();
            ffi::PyEval_RestoreThread(saved);
        }
        let signals = &*(std::ptr::addr_of!(cpython::_PyRuntime).add(RUNTIME_SIGNALS_PENDING_OFFSET)
            as *const AtomicI32);
        let work = signals.load(Ordering::Relaxed) != 0
            || (*ceval).pending_calls_to_do.load(Ordering::Relaxed) != 0
            || (*ceval).pending_async_exc != 0;
        if work {
            return 1;
        }
        // A breaker left set by `pg_handle_pending` raising an asynchronous exception (it cannot
        // recompute the breaker as ceval does): nothing is pending, so recompute it here.
        let gil = (*ceval).gil_drop_request.load(Ordering::Relaxed);
        (*ceval).eval_breaker.store(gil, Ordering::Relaxed);
        0
    }
}

/// ceval's `eval_frame_handle_pending`, after a `CALL` found the eval breaker set: run signal
/// handlers and pending calls, give up the GIL if asked, raise an asynchronous exception. Returns
/// 0, or -1 with an exception set.
///
/// # Safety
/// GIL held; `tstate` is the current thread state.
pub unsafe extern "C" fn pg_handle_pending(tstate: *mut ThreadState) -> c_int {
    // SAFETY: GIL held, live thread state.
    unsafe {
        // Signals first, then pending calls (both only on the main thread, as in ceval).
        if ffi::Py_MakePendingCalls() != 0 {
            return -1;
        }
        let ceval = ceval_state(tstate);
        if (*ceval).gil_drop_request.load(Ordering::Relaxed) != 0 {
            let saved = ffi::PyEval_SaveThread();
            ffi::PyEval_RestoreThread(saved);
        }
        let exc = (*tstate).async_exc;
        if !exc.is_null() {
            (*tstate).async_exc = std::ptr::null_mut();
            // UNSIGNAL_ASYNC_EXC: the breaker itself is recomputed at the next signal check.
            (*ceval).pending_async_exc = 0;
            ffi::PyErr_SetNone(exc);
            ffi::Py_DECREF(exc);
            return -1;
        }
        0
    }
}

/// A Python frame that ceval would push inline for the call compiled code is making: CALL of a
/// Python function, or BINARY_SUBSCR_GETITEM in warm code. Once ceval has pushed such a frame it
/// leaves the caller's `prev_instr` on the instruction's last cache unit (`JUMPBY(caches);
/// frame->prev_instr = next_instr - 1`), which the callee sees as `f_back.f_lasti` and the caller's
/// traceback entry as `tb_lasti`. Before the push (the arguments do not bind) it is still the
/// instruction's own unit. Compiled code calls through `PyObject_Vectorcall` and the hook, so
/// the hook moves `prev_instr` when the callee's frame is entered.
#[derive(Clone, Copy)]
struct InlinedCall {
    caller: *mut InterpreterFrame,
    func: *mut ffi::PyObject,
    /// The calling instruction's own unit, where the caller's `prev_instr` is until the push.
    at: *mut u16,
    last_unit: *mut u16,
}

const NO_INLINED_CALL: InlinedCall = InlinedCall {
    caller: std::ptr::null_mut(),
    func: std::ptr::null_mut(),
    at: std::ptr::null_mut(),
    last_unit: std::ptr::null_mut(),
};

thread_local! {
    /// The call whose callee frame the hook is waiting for (at most one: it is set just before
    /// the call and the hook takes it at the callee's entry).
    static INLINED_CALL: Cell<InlinedCall> = const { Cell::new(NO_INLINED_CALL) };
}

/// Guards alive in any thread: while there are none, no call is announced anywhere and the hook
/// skips reading the thread-local (every announcement is made with a guard, and a guard's drop
/// puts back what was there before it). Changed and read with the GIL held.
static LIVE_GUARDS: AtomicUsize = AtomicUsize::new(0);

/// Where machine code reads [`LIVE_GUARDS`] (a `usize`; see `baseline::direct_entry`'s hook).
pub fn live_guards_addr() -> *const usize {
    LIVE_GUARDS.as_ptr() as *const usize
}

/// Puts back the expectation that was pending before, when the call is over (the callee was
/// never entered, or a nested call set its own).
pub struct InlinedCallGuard(InlinedCall);

impl Drop for InlinedCallGuard {
    fn drop(&mut self) {
        INLINED_CALL.with(|c| c.set(self.0));
        LIVE_GUARDS.store(LIVE_GUARDS.load(Ordering::Relaxed) - 1, Ordering::Relaxed);
    }
}

/// Announces that `caller`, at an instruction whose last cache unit is `caches` units after its
/// `prev_instr`, is about to call `func`, a Python function whose frame ceval would push inline;
/// when the hook enters that frame it points `caller.prev_instr` at that last unit.
///
/// # Safety
/// GIL held; `caller` is the running frame of compiled code, its `prev_instr` on the calling
/// instruction's own unit.
#[inline]
pub unsafe fn expect_inlined_frame(
    caller: *mut InterpreterFrame,
    func: *mut ffi::PyObject,
    caches: usize,
) -> InlinedCallGuard {
    // SAFETY: the instruction's caches follow its unit in the caller's code.
    let (at, last_unit) = unsafe { ((*caller).prev_instr, (*caller).prev_instr.add(caches)) };
    let saved = INLINED_CALL.with(|c| c.replace(InlinedCall { caller, func, at, last_unit }));
    LIVE_GUARDS.store(LIVE_GUARDS.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    InlinedCallGuard(saved)
}

/// Called by the hook for every frame it is asked to evaluate, before anything else: if it is
/// the frame of an announced call, moves the caller's `prev_instr` as ceval's inline push does.
/// Matching the function, the current frame and its `prev_instr` keeps out any other frame
/// entered in between (a finalizer run by a collection while the arguments are bound) and any
/// expectation left over by code that switched C stacks under us (greenlet).
///
/// # Safety
/// GIL held; the arguments are those CPython passed to the hook.
#[inline(always)]
pub unsafe fn note_frame_entry(tstate: *mut ThreadState, frame: *mut InterpreterFrame) {
    if LIVE_GUARDS.load(Ordering::Relaxed) == 0 {
        return;
    }
    let pending = INLINED_CALL.with(|c| c.get());
    if pending.caller.is_null() {
        return;
    }
    // SAFETY: per the contract, `frame` is initialised and the thread has a current cframe; an
    // announced caller is running (it is the current frame when it matches).
    unsafe {
        if (*frame).f_func == pending.func
            && (*(*tstate).cframe).current_frame == pending.caller
            && (*pending.caller).prev_instr == pending.at
        {
            (*pending.caller).prev_instr = pending.last_unit;
            INLINED_CALL.with(|c| c.set(NO_INLINED_CALL));
        }
    }
}
