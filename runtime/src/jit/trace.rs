//! The trace-function calls compiled code makes itself, written from ceval's `call_trace`,
//! `call_exc_trace` and `maybe_call_line_trace` (Python/ceval.c, 3.11): where a trace function
//! is set while an instruction runs in compiled code and ceval would report an event before the
//! frame reaches the interpreter (FOR_ITER's StopIteration), and where the interpreter, taking a
//! frame over, would decide a 'line' event differently from stock because it cannot know which
//! instruction ran last (see [`correct_line_event`]).

use super::Sp;
use crate::cpython::{ffi, specialized, FrameObject, InterpreterFrame, ThreadState};
use crate::opcodes::op;
use std::cell::Cell;
use std::os::raw::c_int;

/// `Py_tracefunc`.
pub(crate) type TraceFunc =
    unsafe extern "C" fn(*mut ffi::PyObject, *mut ffi::PyObject, c_int, *mut ffi::PyObject) -> c_int;

pub(crate) const PY_TRACE_CALL: c_int = 0;
const PY_TRACE_EXCEPTION: c_int = 1;
const PY_TRACE_LINE: c_int = 2;
const PY_TRACE_RETURN: c_int = 3;
const PY_TRACE_OPCODE: c_int = 7;


/// The frame object of `frame`, created if needed (ceval's `_PyFrame_GetFrameObject`, which is
/// not exported): `frame` is the thread's current frame, so `PyEval_GetFrame` returns it.
///
/// # Safety
/// GIL held; `frame` is the current frame of the thread and complete (past its prelude).
unsafe fn frame_object(frame: *mut InterpreterFrame) -> *mut FrameObject {
    // SAFETY: per the contract.
    unsafe {
        if !(*frame).frame_obj.is_null() {
            return (*frame).frame_obj as *mut FrameObject;
        }
        let f = ffi::PyEval_GetFrame() as *mut FrameObject;
        if f.is_null() || (*f).f_frame != frame {
            return std::ptr::null_mut();
        }
        f
    }
}

/// The code unit `frame.prev_instr` points at, from the start of the code.
///
/// # Safety
/// `frame` is live.
unsafe fn lasti(frame: *mut InterpreterFrame) -> isize {
    // SAFETY: `prev_instr` points into (or one unit before) the frame's code.
    unsafe { (*frame).prev_instr.offset_from(first_unit(frame)) }
}

/// # Safety
/// `frame` is live.
unsafe fn first_unit(frame: *mut InterpreterFrame) -> *mut u16 {
    // SAFETY: a live frame holds its code object.
    unsafe { std::ptr::addr_of_mut!((*(*frame).f_code).co_code_adaptive) as *mut u16 }
}

/// The line of code unit `unit` (`_PyCode_LineNumberFromArray`), -1 for none.
///
/// # Safety
/// `frame` is live.
unsafe fn line_of(frame: *mut InterpreterFrame, unit: isize) -> c_int {
    // SAFETY: a live frame holds its code object.
    unsafe { ffi::PyCode_Addr2Line((*frame).f_code as *mut ffi::PyCodeObject, (2 * unit) as c_int) }
}

/// ceval's `call_trace`: calls `func` for `frame` with the thread marked as tracing and the frame
/// object's `f_lineno` set for the call. Returns the function's result (-1: it raised).
///
/// # Safety
/// GIL held; `tstate` is the current thread state and `frame` its current frame, complete;
/// `func`/`obj` are the thread's trace (or profile) function and object.
pub(crate) unsafe fn call_trace(
    func: *mut std::ffi::c_void,
    obj: *mut ffi::PyObject,
    tstate: *mut ThreadState,
    frame: *mut InterpreterFrame,
    what: c_int,
    arg: *mut ffi::PyObject,
) -> c_int {
    // SAFETY: per the contract; `func` is a `Py_tracefunc` (CPython stores nothing else there).
    unsafe {
        if (*tstate).tracing != 0 {
            return 0;
        }
        let f = frame_object(frame);
        if f.is_null() {
            return -1;
        }
        let old_what = (*tstate).tracing_what;
        (*tstate).tracing_what = what;
        ffi::PyThreadState_EnterTracing(tstate as *mut ffi::PyThreadState);
        (*f).f_lineno = line_of(frame, lasti(frame));
        let func = std::mem::transmute::<*mut std::ffi::c_void, TraceFunc>(func);
        let result = func(obj, f as *mut ffi::PyObject, what, arg);
        (*f).f_lineno = 0;
        ffi::PyThreadState_LeaveTracing(tstate as *mut ffi::PyThreadState);
        (*tstate).tracing_what = old_what;
        result
    }
}

/// ceval's `call_exc_trace`: reports the pending exception to the trace function as an
/// 'exception' event (normalizing it first, as ceval does); if the function raises, its exception
/// replaces the pending one.
///
/// # Safety
/// As for [`call_trace`], with `tstate.c_tracefunc` set and an exception pending.
pub(crate) unsafe fn call_exc_trace(tstate: *mut ThreadState, frame: *mut InterpreterFrame) {
    // SAFETY: per the contract; Fetch/Restore move the references in and out.
    unsafe {
        let (mut ty, mut value, mut tb) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
        ffi::PyErr_Fetch(&mut ty, &mut value, &mut tb);
        if value.is_null() {
            value = ffi::Py_None();
            ffi::Py_INCREF(value);
        }
        ffi::PyErr_NormalizeException(&mut ty, &mut value, &mut tb);
        let tb_arg = if tb.is_null() { ffi::Py_None() } else { tb };
        let arg = ffi::PyTuple_Pack(3, ty, value, tb_arg);
        if arg.is_null() {
            ffi::PyErr_Restore(ty, value, tb);
            return;
        }
        let err = call_trace((*tstate).c_tracefunc, (*tstate).c_traceobj, tstate, frame, PY_TRACE_EXCEPTION, arg);
        ffi::Py_DECREF(arg);
        if err == 0 {
            ffi::PyErr_Restore(ty, value, tb);
        } else {
            ffi::Py_XDECREF(ty);
            ffi::Py_XDECREF(value);
            ffi::Py_XDECREF(tb);
        }
    }
}

/// ceval's `call_trace_protected`: [`call_trace`] with the pending exception set aside.
///
/// # Safety
/// As for [`call_trace`].
unsafe fn call_trace_protected(
    func: *mut std::ffi::c_void,
    obj: *mut ffi::PyObject,
    tstate: *mut ThreadState,
    frame: *mut InterpreterFrame,
    what: c_int,
    arg: *mut ffi::PyObject,
) -> c_int {
    // SAFETY: per the contract; Fetch/Restore move the references in and out.
    unsafe {
        let (mut ty, mut value, mut tb) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
        ffi::PyErr_Fetch(&mut ty, &mut value, &mut tb);
        let err = call_trace(func, obj, tstate, frame, what, arg);
        if err == 0 {
            ffi::PyErr_Restore(ty, value, tb);
        } else {
            ffi::Py_XDECREF(ty);
            ffi::Py_XDECREF(value);
            ffi::Py_XDECREF(tb);
        }
        err
    }
}

/// ceval's `TRACE_FUNCTION_UNWIND`: the 'return' event (with no value) to the trace and the
/// profile function of a frame that an exception leaves; what they raise is ignored.
///
/// # Safety
/// As for [`call_trace`].
pub(crate) unsafe fn trace_function_unwind(tstate: *mut ThreadState, frame: *mut InterpreterFrame) {
    // SAFETY: per the contract.
    unsafe {
        if (*(*tstate).cframe).use_tracing == 0 {
            return;
        }
        if !(*tstate).c_tracefunc.is_null()
            && call_trace_protected((*tstate).c_tracefunc, (*tstate).c_traceobj, tstate, frame, PY_TRACE_RETURN, std::ptr::null_mut()) != 0
        {
            return;
        }
        if !(*tstate).c_profilefunc.is_null() {
            call_trace_protected((*tstate).c_profilefunc, (*tstate).c_profileobj, tstate, frame, PY_TRACE_RETURN, std::ptr::null_mut());
        }
    }
}

/// The current frame's frame object (see [`frame_object`]), for callers outside this module.
///
/// # Safety
/// As for [`frame_object`].
pub(crate) unsafe fn current_frame_object(frame: *mut InterpreterFrame) -> *mut FrameObject {
    // SAFETY: forwarded.
    unsafe { frame_object(frame) }
}

/// `maybe_call_line_trace`'s decision: whether ceval reports a 'line' event for instruction
/// `unit` when the instruction that ran before left `prev_instr` at `instr_prev`: a new line, or
/// a backward edge (except into SEND, the `yield from` loop).
///
/// # Safety
/// `frame` is live; `f` is its frame object.
unsafe fn line_event_due(frame: *mut InterpreterFrame, f: *mut FrameObject, instr_prev: isize, unit: isize) -> bool {
    // SAFETY: per the contract; `unit` is an instruction of the frame's code.
    unsafe {
        let code = (*frame).f_code;
        let last_line = if instr_prev <= (*code)._co_firsttraceable as isize { -1 } else { line_of(frame, instr_prev) };
        let line = line_of(frame, unit);
        let opcode = *first_unit(frame).offset(unit) as u8;
        line != -1 && (*f).f_trace_lines != 0 && (line != last_line || (unit < instr_prev && opcode != op::SEND))
    }
}

/// What the hand-off must do after [`correct_line_event`].
pub enum Correction {
    /// Hand the frame over before code unit `resume` (the interpreter resumes there), with the
    /// value stack at `sp`.
    Resume { sp: Sp, resume: *mut u16 },
    /// The trace function raised: hand the frame over raising at `prev_instr`, stack at `sp`.
    Raise { sp: Sp },
}

/// Before the interpreter takes the frame over at code unit `resume` with tracing on, makes the
/// trace events exactly stock's.
///
/// ceval reports a 'line' event before an instruction by comparing it with the unit the previous
/// instruction left in `prev_instr` (`instr_prev` in DO_TRACING): its own unit, the jump for a
/// jump target, the first half of a superinstruction, CALL's last cache after an inlined call.
/// The interpreter, entered at `resume`, compares with `resume - 1` instead, and decides
/// differently when the two units are on different lines or the edge goes backwards: a jump
/// target whose previous unit is on its own line (`while c: i += 1`) gets no event.
///
/// So when the two decisions differ this either reports stock's event itself (the interpreter
/// then reports only the 'opcode' event that follows it, if any) or arranges for the
/// interpreter's extra one to be swallowed. If the trace function jumps (sets `f_lineno`), stock
/// reports the 'opcode' event at the new instruction and runs it without further events; that is
/// done here too, swallowing the interpreter's events at it.
///
/// # Safety
/// GIL held; `frame` is the current frame of compiled code, its cframe still pushed with tracing
/// on; `sp` is its value stack; `resume` is an instruction start.
pub unsafe fn correct_line_event(tstate: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, resume: *mut u16) -> Correction {
    // SAFETY: per the contract.
    unsafe {
        let keep = Correction::Resume { sp, resume };
        let first = first_unit(frame);
        let (unit, instr_prev) = (resume.offset_from(first), lasti(frame));
        let code = (*frame).f_code;
        if instr_prev == unit - 1
            || (*tstate).c_tracefunc.is_null()
            || (*tstate).tracing != 0
            || unit < (*code)._co_firsttraceable as isize
            || matches!(*resume as u8, op::RESUME | specialized::RESUME_QUICK)
        {
            return keep;
        }
        // maybe_call_line_trace makes the frame object before deciding.
        let f = frame_object(frame);
        if f.is_null() {
            ffi::PyErr_Clear();
            return keep;
        }
        let stock = line_event_due(frame, f, instr_prev, unit);
        let interpreter = line_event_due(frame, f, unit - 1, unit);
        if stock == interpreter {
            return keep;
        }
        if interpreter {
            swallow_trace_events(tstate, f, unit, true, false);
            return keep;
        }
        // Stock's event, as DO_TRACING reports it: prev_instr on the instruction, the stack
        // visible (a jump from the trace function pops it).
        (*frame).prev_instr = resume;
        let base = std::ptr::addr_of_mut!((*frame).localsplus) as Sp;
        (*frame).stacktop = sp.offset_from(base) as i32;
        let reload = |frame: *mut InterpreterFrame| base.offset((*frame).stacktop as isize);
        let (func, obj) = ((*tstate).c_tracefunc, (*tstate).c_traceobj);
        let mut err = call_trace(func, obj, tstate, frame, PY_TRACE_LINE, ffi::Py_None());
        let target = (*frame).prev_instr;
        if err == 0 && target != resume {
            // Jumped: the 'opcode' event at the new instruction, which then runs untraced.
            if (*f).f_trace_opcodes != 0 {
                err = call_trace(func, obj, tstate, frame, PY_TRACE_OPCODE, ffi::Py_None());
            }
            if err == 0 {
                let t = target.offset_from(first);
                let line = line_event_due(frame, f, t - 1, t);
                swallow_trace_events(tstate, f, t, line, (*f).f_trace_opcodes != 0);
            }
        }
        let sp = reload(frame);
        (*frame).stacktop = -1;
        if err != 0 {
            // ceval raises where prev_instr points: the instruction (or the jump's target).
            return Correction::Raise { sp };
        }
        // Not a jump: the interpreter's own check at `resume` now finds no 'line' event (the
        // lines and the edge are as before) and reports the 'opcode' event, as stock does next.
        Correction::Resume { sp, resume: (*frame).prev_instr }
    }
}

/// The events a [`swallow_trace_events`] shim still waits for.
#[derive(Clone, Copy)]
struct Swallow {
    real: usize,
    frame: *mut FrameObject,
    unit: isize,
    line: bool,
    opcode: bool,
}

thread_local! {
    static SWALLOW: Cell<Swallow> = const {
        Cell::new(Swallow { real: 0, frame: std::ptr::null_mut(), unit: 0, line: false, opcode: false })
    };
}

/// Makes the thread's trace function skip the interpreter's next 'line' (if `line`) and
/// 'opcode' (if `opcode`) events for frame `f` at code unit `unit`: a one-shot shim in its place
/// swallows them and puts the real function back at the first other event, or when done.
///
/// # Safety
/// GIL held; `tstate` is the current thread state with a trace function set.
unsafe fn swallow_trace_events(tstate: *mut ThreadState, f: *mut FrameObject, unit: isize, line: bool, opcode: bool) {
    if !line && !opcode {
        return;
    }
    // SAFETY: per the contract; the shim runs on this thread.
    unsafe {
        let real = (*tstate).c_tracefunc as usize;
        SWALLOW.with(|s| s.set(Swallow { real, frame: f, unit, line, opcode }));
        (*tstate).c_tracefunc = swallow_shim as *mut std::ffi::c_void;
    }
}

unsafe extern "C" fn swallow_shim(
    obj: *mut ffi::PyObject,
    frame: *mut ffi::PyObject,
    what: c_int,
    arg: *mut ffi::PyObject,
) -> c_int {
    let mut s = SWALLOW.with(|s| s.get());
    // SAFETY: called by CPython on the thread that installed the shim, GIL held, with a live
    // frame object; `s.real` is the trace function the shim replaced.
    unsafe {
        let tstate = ffi::PyThreadState_Get() as *mut ThreadState;
        let at = frame as *mut FrameObject == s.frame && lasti((*s.frame).f_frame) == s.unit;
        let swallowed = if at && what == PY_TRACE_LINE && s.line {
            s.line = false;
            true
        } else if at && what == PY_TRACE_OPCODE && s.opcode {
            (s.line, s.opcode) = (false, false);
            true
        } else {
            (s.line, s.opcode) = (false, false);
            false
        };
        if s.line || s.opcode {
            SWALLOW.with(|c| c.set(s));
        } else {
            (*tstate).c_tracefunc = s.real as *mut std::ffi::c_void;
        }
        if swallowed {
            return 0;
        }
        std::mem::transmute::<usize, TraceFunc>(s.real)(obj, frame, what, arg)
    }
}
