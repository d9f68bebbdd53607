//! The PEP 523 frame-evaluation hook: decides, per frame, which tier runs it.
//!
//! Cold code and every frame a tier must not run go to `_PyEval_EvalFrameDefault`, counted by
//! reason. The hook never clears or pops the frame: `_PyEval_Vector`, its caller, does that.

use crate::tier_up::compile_into;
use peregrine_runtime::code_state::CodeState;
use peregrine_runtime::cstack;
use peregrine_runtime::cpython::{self, co_flags, ffi, EvalFrameFn, InterpreterFrame, ThreadState};
use peregrine_runtime::options::BASELINE_THRESHOLD;
use peregrine_runtime::stats::STATS;
use peregrine_runtime::exits;
use peregrine_runtime::{ExitReason, Tier};
use std::ffi::c_void;
use std::os::raw::c_int;

/// Runs the frame in CPython's interpreter, counting it.
///
/// # Safety
/// As for [`peregrine_eval_frame`].
#[inline(always)]
unsafe fn run_in_interpreter(
    tstate: *mut ThreadState,
    frame: *mut InterpreterFrame,
    throwflag: c_int,
) -> *mut ffi::PyObject {
    STATS.interpreter_entries.add_with_gil(1);
    // SAFETY: the arguments are exactly those CPython passed to the hook.
    unsafe { cpython::_PyEval_EvalFrameDefault(tstate, frame, throwflag) }
}

/// The hook installed with `_PyInterpreterState_SetEvalFrameFunc`.
///
/// # Safety
/// Called by CPython with the GIL held, a valid thread state and a frame that is fully initialised
/// and linked, exactly as `_PyEval_EvalFrameDefault` would be.
pub unsafe extern "C" fn peregrine_eval_frame(
    tstate: *mut ThreadState,
    frame: *mut InterpreterFrame,
    throwflag: c_int,
) -> *mut ffi::PyObject {
    // SAFETY: the arguments are those CPython passed us.
    unsafe { peregrine_runtime::jit::frame::note_frame_entry(tstate, frame) };
    if cstack::nearly_exhausted() {
        // SAFETY: the arguments are those CPython passed us.
        return unsafe { eval_frame_on_fresh_segment(tstate, frame, throwflag) };
    }
    if throwflag != 0 {
        // SAFETY: live frame; the interpreter raises at its `prev_instr`.
        unsafe { exits::count(frame, None, ExitReason::ThrowFlag, (*frame).prev_instr) };
        // SAFETY: forwarded unchanged.
        return unsafe { run_in_interpreter(tstate, frame, throwflag) };
    }
    // SAFETY: a running thread state always points at a live cframe (at least its root cframe).
    if unsafe { (*(*tstate).cframe).use_tracing } != 0 {
        // SAFETY: live frame; the interpreter runs it from `prev_instr + 1`.
        unsafe { exits::count(frame, None, ExitReason::TracingAtEntry, (*frame).prev_instr.add(1)) };
        // SAFETY: forwarded unchanged.
        return unsafe { run_in_interpreter(tstate, frame, throwflag) };
    }
    // SAFETY: the frame holds a strong reference to its code object for the whole call.
    let code = unsafe { (*frame).f_code } as *mut ffi::PyObject;
    // SAFETY: GIL held, live code object.
    let Some(state) = (unsafe { CodeState::get_or_create(code) }) else {
        // SAFETY: forwarded unchanged.
        return unsafe { run_in_interpreter(tstate, frame, throwflag) };
    };
    let seen = state.count_entry();
    // SAFETY: live frame and code object.
    if unsafe { creates_generator(frame) } {
        state.count_generator_creation();
    }
    if let Some((entry, tier)) = state.entry() {
        // Tier 2 may also be due while baseline code runs.
        if tier == Tier::Baseline {
            // SAFETY: GIL held, `code` is the state's live code object.
            unsafe { maybe_optimize(state, code, seen) };
        }
        return unsafe { run_compiled(tstate, frame, throwflag, entry, tier) };
    }
    // Code with a loop compiles on its first entry: a function called once may loop for long.
    let due = BASELINE_THRESHOLD.get().is_some_and(|t| seen >= t || state.has_loop());
    if due {
        if state.not_tried(Tier::Baseline) {
            // SAFETY: GIL held, live code object. A refusal is recorded in the state and stats.
            let _ = unsafe { compile_into(state, code, Tier::Baseline) };
        }
        // SAFETY: as above.
        unsafe { maybe_optimize(state, code, seen) };
        if let Some((entry, tier)) = state.entry() {
            return unsafe { run_compiled(tstate, frame, throwflag, entry, tier) };
        }
        // SAFETY: live frame of `state`'s code; the interpreter runs it from `prev_instr + 1`.
        unsafe { exits::count(frame, Some(state), ExitReason::Uncompilable, (*frame).prev_instr.add(1)) };
    }
    // SAFETY: forwarded unchanged.
    unsafe { run_in_interpreter(tstate, frame, throwflag) }
}

/// Runs the frame, through the hook again, on a fresh C stack segment: the thread's stack is
/// nearly used up (deep recursion with a raised recursion limit, which stock CPython runs without
/// C recursion). Raises RecursionError instead when no segment can be had, or while greenlet is
/// loaded: greenlet copies C stacks between addresses and assumes one contiguous stack per thread.
///
/// # Safety
/// As for [`peregrine_eval_frame`].
#[cold]
unsafe fn eval_frame_on_fresh_segment(
    tstate: *mut ThreadState,
    frame: *mut InterpreterFrame,
    throwflag: c_int,
) -> *mut ffi::PyObject {
    unsafe extern "C" fn on_segment(t: *mut c_void, f: *mut c_void, throwflag: c_int) -> *mut c_void {
        // SAFETY: the arguments are the hook's own, passed through unchanged.
        unsafe { peregrine_eval_frame(t as *mut ThreadState, f as *mut InterpreterFrame, throwflag) as *mut c_void }
    }
    // SAFETY: GIL held (hook contract).
    let why = if unsafe { greenlet_loaded() } {
        "greenlet is loaded and needs one contiguous stack"
    } else {
        // SAFETY: on_segment does not unwind (peregrine_eval_frame is extern "C") and returns
        // before the segment is reused; greenlet, the one stack switcher we know of, is not loaded.
        match unsafe { cstack::call_on_fresh_segment(on_segment, tstate as _, frame as _, throwflag) } {
            Ok(result) => {
                STATS.stack_segments.add_with_gil(1);
                return result as *mut ffi::PyObject;
            }
            Err(cstack::SegmentError::TooDeep) => "4 GiB of C stack segments are in use",
            Err(cstack::SegmentError::NoMemory) => "no memory for a new C stack segment",
        }
    };
    let msg = std::ffi::CString::new(format!("maximum recursion depth exceeded: the C stack is exhausted ({why})"))
        .expect("no NUL in the message");
    // SAFETY: GIL held; the caller (_PyEval_Vector) clears and pops the frame we decline.
    unsafe { ffi::PyErr_SetString(ffi::PyExc_RecursionError, msg.as_ptr()) };
    std::ptr::null_mut()
}

/// Whether greenlet's C module is imported.
///
/// # Safety
/// GIL held.
unsafe fn greenlet_loaded() -> bool {
    // SAFETY: GIL held; PyImport_GetModule returns a new reference or null (without an error
    // for a module that is simply not imported).
    unsafe {
        let name = ffi::PyUnicode_FromString(c"greenlet._greenlet".as_ptr());
        if name.is_null() {
            ffi::PyErr_Clear();
            return true; // cannot tell: do not switch
        }
        let module = ffi::PyImport_GetModule(name);
        ffi::Py_DECREF(name);
        if module.is_null() {
            ffi::PyErr_Clear();
            return false;
        }
        ffi::Py_DECREF(module);
        true
    }
}

/// Whether this call only creates a generator or coroutine object: a fresh frame of resumable
/// code, which runs up to RETURN_GENERATOR and no RESUME (so it does not count towards the
/// code's warm-up, `CodeState::count_generator_creation`).
///
/// # Safety
/// `frame` is a live frame.
#[inline(always)]
unsafe fn creates_generator(frame: *mut InterpreterFrame) -> bool {
    // SAFETY: a live frame holds its code object.
    unsafe {
        let code = (*frame).f_code;
        (*code).co_flags & co_flags::RESUMABLE != 0
            && (*frame).prev_instr == (std::ptr::addr_of_mut!((*code).co_code_adaptive) as *mut u16).wrapping_sub(1)
    }
}

/// Tries tier 2 once the optimize threshold is reached (synchronously for now; it moves to a
/// background thread with the optimizer).
///
/// # Safety
/// GIL held; `code` is the live code object `state` belongs to.
#[inline(always)]
unsafe fn maybe_optimize(state: &CodeState, code: *mut ffi::PyObject, seen: u32) {
    if state.optimize_due(seen) {
        // SAFETY: forwarded from the caller.
        let _ = unsafe { compile_into(state, code, Tier::Optimized) };
    }
}

/// Runs compiled code for the frame.
///
/// # Safety
/// As for [`peregrine_eval_frame`]; `entry` is the installed entry of the frame's code.
#[inline(always)]
unsafe fn run_compiled(
    tstate: *mut ThreadState,
    frame: *mut InterpreterFrame,
    throwflag: c_int,
    entry: EvalFrameFn,
    tier: Tier,
) -> *mut ffi::PyObject {
    if let Some(t) = STATS.tier(tier) {
        t.entries.add_with_gil(1);
    }
    // SAFETY: compiled code has the eval-frame contract; its code object is alive (the frame owns it).
    unsafe { entry(tstate, frame, throwflag) }
}

/// The current interpreter.
fn current_interp() -> *mut ffi::PyInterpreterState {
    // SAFETY: only called from the Python API, with the GIL held and a current thread state.
    unsafe { ffi::PyInterpreterState_Get() }
}

/// The frame-evaluation function installed in the current interpreter.
fn installed_eval_frame() -> EvalFrameFn {
    // SAFETY: GIL held (Python API); the interpreter is live.
    unsafe { cpython::_PyInterpreterState_GetEvalFrameFunc(current_interp()) }
}

/// The frame-evaluation function we install: the baseline's machine-code entry to compiled
/// frames (`baseline::fast_hook`), which passes every other frame on to [`peregrine_eval_frame`],
/// or that function itself without executable memory.
fn our_eval_frame() -> usize {
    static OURS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *OURS.get_or_init(|| {
        let rust = peregrine_eval_frame as EvalFrameFn as usize;
        peregrine_baseline::fast_hook(rust).unwrap_or(rust)
    })
}

/// Whether our hook is the current interpreter's frame evaluator.
pub fn is_installed() -> bool {
    installed_eval_frame() as usize == our_eval_frame()
}

/// Installs the hook. Fails if another PEP 523 hook (a debugger, another JIT) is installed: two
/// hooks cannot share an interpreter, and replacing theirs silently would break them.
pub fn install() -> Result<(), String> {
    let current = installed_eval_frame() as usize;
    let ours = our_eval_frame();
    let default = cpython::_PyEval_EvalFrameDefault as EvalFrameFn as usize;
    if current == ours {
        return Ok(());
    }
    if current != default {
        return Err(format!(
            "another frame-evaluation hook (PEP 523) is installed at {current:#x}, by a debugger or \
             another JIT; Peregrine cannot run beside it. Disable that tool first."
        ));
    }
    // Verified now rather than at the first compile of a FOR_ITER: the check allocates Python
    // objects, which compiling must not do (it would move the GC's counts under the program).
    // SAFETY: GIL held.
    unsafe { peregrine_runtime::cpython::layout::iterator_layouts_verified() };
    // SAFETY: GIL held; our hook has the eval-frame signature (the machine-code one keeps it,
    // see `baseline::fast_hook`) and lives as long as the process.
    unsafe {
        let hook = std::mem::transmute::<usize, EvalFrameFn>(ours);
        cpython::_PyInterpreterState_SetEvalFrameFunc(current_interp(), hook)
    };
    peregrine_runtime::jit::direct_call::set_hook(ours);
    log::info!("frame hook installed");
    Ok(())
}

/// Removes the hook if it is ours, restoring the default evaluator (and with it CPython's inlined
/// Python-to-Python calls). Another tool's hook is left alone.
pub fn uninstall() {
    if is_installed() {
        // SAFETY: GIL held; passing the default evaluator resets the interpreter to no hook.
        unsafe {
            cpython::_PyInterpreterState_SetEvalFrameFunc(
                current_interp(),
                cpython::_PyEval_EvalFrameDefault,
            )
        };
        peregrine_runtime::jit::direct_call::set_hook(0);
        log::info!("frame hook removed");
    }
}
