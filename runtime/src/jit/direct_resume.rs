//! Direct resumption: compiled code that drives a generator or coroutine (FOR_ITER over it,
//! SEND into it for `yield from` and `await`) resumes its frame itself, without
//! `tp_iternext`/`PyIter_Send`, `gen_send_ex2`, `_PyEval_EvalFrame` and the hook. What it does is
//! `gen_send_ex2` (Objects/genobject.c, 3.11) for the states it handles: push the sent value on
//! the generator's stack, link the frame under the caller, chain the generator's exception state
//! over the thread's, run the frame, unlink, and on return or raise clear the generator's frame
//! as it does. Stock 3.11 has no inline resumption (3.12's FOR_ITER_GEN and SEND_GEN come
//! later), so every observable step is the C function's, in its order; only the C calls between
//! compiled frames are gone.
//!
//! Handled: exact generators and coroutines (not async generators, whose values are wrapped),
//! suspended, or just created with nothing (or None) sent, while our hook is the interpreter's
//! frame evaluator. A generator whose code is not compiled or may not be entered now (tracing,
//! a tier due, a deep C stack) is run by the hook, as `_PyEval_EvalFrame` would. Everything else
//! (a running or finished generator, a value sent into a fresh one) goes the generic way, which
//! raises as stock does.

use super::direct_call::{clear_frame, our_hook_installed, run_frame};
use crate::cpython::{self, ffi, frame_state, GenObject, InterpreterFrame, ThreadState};
use crate::stats::STATS;
use std::os::raw::c_char;

/// A resumption that ran: what `gen_send_ex2` returns and stores in `*presult`.
pub struct Resumed {
    pub status: ffi::PySendResult,
    /// The yielded or returned value (a new reference), or null: raised, or returned None to
    /// FOR_ITER (`gen_iternext`'s NULL without an exception is how the loop ends).
    pub value: *mut ffi::PyObject,
}

/// Resumes `gen` if it is a generator this path handles, sending `arg` (null for FOR_ITER, which
/// sends nothing: `gen_iternext`). `None` when it is not: nothing was touched.
///
/// # Safety
/// GIL held; `tstate` is the current thread state, running compiled code; `gen` and `arg` (if
/// not null) are live objects the caller keeps alive across the call.
#[inline]
pub unsafe fn try_resume(tstate: *mut ThreadState, gen: *mut ffi::PyObject, arg: *mut ffi::PyObject) -> Option<Resumed> {
    // SAFETY: per the contract; a generator's frame lives inside the generator object.
    unsafe {
        let tp = ffi::Py_TYPE(gen);
        let is_gen = tp == std::ptr::addr_of_mut!(cpython::PyGen_Type);
        if !is_gen && tp != std::ptr::addr_of_mut!(cpython::PyCoro_Type) {
            return None;
        }
        let g = gen as *mut GenObject;
        match (*g).gi_frame_state {
            frame_state::SUSPENDED => {}
            frame_state::CREATED if arg.is_null() || arg == ffi::Py_None() => {}
            _ => return None,
        }
        if !our_hook_installed(tstate) {
            return None;
        }
        Some(resume(tstate, g, is_gen, arg))
    }
}

/// `gen_send_ex2` from its push of the sent value on.
///
/// # Safety
/// As for [`try_resume`]; `g` is suspended or just created.
#[inline(never)]
unsafe fn resume(tstate: *mut ThreadState, g: *mut GenObject, is_gen: bool, arg: *mut ffi::PyObject) -> Resumed {
    // SAFETY: per the contract; the frame is the generator's, complete and not running.
    unsafe {
        let frame = std::ptr::addr_of_mut!((*g).gi_iframe) as *mut InterpreterFrame;
        let sent = if arg.is_null() { ffi::Py_None() } else { arg };
        ffi::Py_INCREF(sent);
        let locals = std::ptr::addr_of_mut!((*frame).localsplus) as super::Sp;
        *locals.add((*frame).stacktop as usize) = sent;
        (*frame).stacktop += 1;
        (*frame).previous = (*(*tstate).cframe).current_frame;
        (*g).gi_exc_state.previous_item = (*tstate).exc_info as *mut cpython::layout::ErrStackItem;
        (*tstate).exc_info = std::ptr::addr_of_mut!((*g).gi_exc_state) as *mut std::ffi::c_void;
        (*g).gi_frame_state = frame_state::EXECUTING;
        let result = run_frame(tstate, frame, (*g).gi_code, &STATS.baseline.direct_resumes, false);
        finish_resume(tstate, g, is_gen, arg, result)
    }
}

/// The rest of `gen_send_ex2` once the generator's frame returned `result` (see [`resume`]):
/// also where the machine-code resumption (`baseline::direct_entry`) goes for anything but a
/// yield.
///
/// # Safety
/// GIL held; `g` was resumed by [`resume`] or as it does, with `arg` sent (null for FOR_ITER),
/// and its frame has just returned `result` (a new reference, or null with an exception set).
pub unsafe fn finish_resume(
    tstate: *mut ThreadState,
    g: *mut GenObject,
    is_gen: bool,
    arg: *mut ffi::PyObject,
    mut result: *mut ffi::PyObject,
) -> Resumed {
    // SAFETY: per the contract.
    unsafe {
        let frame = std::ptr::addr_of_mut!((*g).gi_iframe) as *mut InterpreterFrame;
        if (*g).gi_frame_state == frame_state::EXECUTING {
            (*g).gi_frame_state = frame_state::COMPLETED;
        }
        (*tstate).exc_info = (*g).gi_exc_state.previous_item as *mut std::ffi::c_void;
        (*g).gi_exc_state.previous_item = std::ptr::null_mut();
        (*frame).previous = std::ptr::null_mut();
        if !result.is_null() {
            if (*g).gi_frame_state == frame_state::SUSPENDED {
                return Resumed { status: ffi::PySendResult::PYGEN_NEXT, value: result };
            }
            if arg.is_null() && result == ffi::Py_None() {
                ffi::Py_DECREF(result);
                result = std::ptr::null_mut();
            }
        } else if ffi::PyErr_ExceptionMatches(ffi::PyExc_StopIteration) != 0 {
            let msg: &[u8] = if is_gen { b"generator raised StopIteration\0" } else { b"coroutine raised StopIteration\0" };
            cpython::_PyErr_FormatFromCause(ffi::PyExc_RuntimeError, b"%s\0".as_ptr() as *const c_char, msg.as_ptr());
        }
        // The generator cannot run again: release its frame, the exception state first (it may
        // hold a cycle through the traceback), as `gen_send_ex2` does.
        let exc = (*g).gi_exc_state.exc_value;
        (*g).gi_exc_state.exc_value = std::ptr::null_mut();
        ffi::Py_XDECREF(exc);
        (*g).gi_frame_state = frame_state::CLEARED;
        clear_frame(tstate, frame);
        // FOR_ITER's return: `gen_iternext` turns a value other than None into StopIteration.
        if arg.is_null() && !result.is_null() {
            cpython::_PyGen_SetStopIterationValue(result);
            ffi::Py_DECREF(result);
            return Resumed { status: ffi::PySendResult::PYGEN_RETURN, value: std::ptr::null_mut() };
        }
        let status = if result.is_null() { ffi::PySendResult::PYGEN_ERROR } else { ffi::PySendResult::PYGEN_RETURN };
        Resumed { status, value: result }
    }
}
