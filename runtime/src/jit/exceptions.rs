//! Exceptions in compiled code: the unwinder (ceval's `error:` and `exception_unwind:` labels)
//! and the instructions of exception handlers, on the value stack.
//!
//! The compiler resolves each instruction's exception-table entry at compile time; its error
//! exit calls [`pg_unwind`] with that entry, which makes the traceback entry, reports the
//! 'exception' event, pops the stack to the handler's depth and pushes what the handler expects,
//! then the machine code jumps to the handler. Without an entry the stack is emptied and the
//! frame is left, returning NULL, as `exit_unwind:` does.
//!
//! Helpers that raise an exception which already carries its traceback (a bare `raise`,
//! RERAISE, END_ASYNC_FOR) return [`unwind_at`]: the compiled code then unwinds without the
//! `error:` steps, as ceval's `goto exception_unwind`.

use super::support::{code, new_bool, peek, put};
use super::{error_at, Sp};
use crate::cpython::layout::ErrStackItem;
use crate::cpython::{ffi, InterpreterFrame, ThreadState};
use crate::semantics::exceptions as sem;
use ffi::PyObject;
use std::os::raw::c_char;

/// [`pg_unwind`]'s `handler` when no exception-table entry covers the instruction.
pub const NO_HANDLER: u64 = u64::MAX;

/// A handler entry as [`pg_unwind`] takes it: the depth shifted left by one, `push_lasti` in bit 0.
pub fn packed_handler(depth: usize, push_lasti: bool) -> u64 {
    ((depth as u64) << 1) | push_lasti as u64
}

/// The tag of a helper's result when it raised an exception that already has its traceback:
/// bits 0 and 1 set (bit 0 alone is [`error_at`]).
#[inline(always)]
pub fn unwind_at(sp: Sp) -> Sp {
    (sp as usize | 3) as Sp
}

/// Unwinds the frame from its error exit: with `from_error` 1, ceval's `error:` steps first (the
/// SystemError for an error return without an exception, the frame's traceback entry at
/// `prev_instr`, the 'exception' event to a trace function); then `exception_unwind:` for the
/// entry `handler` (see [`packed_handler`], or [`NO_HANDLER`]): the value stack popped to the
/// handler's depth, the raising instruction's offset pushed if the entry asks for it, then the
/// normalized exception. Returns the stack for the handler, or, tagged with [`error_at`], the
/// emptied stack of a frame the exception leaves (the caller leaves the frame and returns NULL).
///
/// # Safety
/// GIL held; `frame` is the thread's current frame, run by compiled code whose cframe is pushed;
/// `sp` its value stack; `handler` from this code's exception table, at a depth the stack
/// verifier checked against the instructions it covers.
pub unsafe extern "C" fn pg_unwind(t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, handler: u64, from_error: u32) -> Sp {
    // SAFETY: per the contract.
    unsafe {
        if from_error != 0 {
            if ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_SetString(ffi::PyExc_SystemError, b"error return without exception set\0".as_ptr() as *const c_char);
            }
            let f = super::trace::current_frame_object(frame);
            if !f.is_null() {
                ffi::PyTraceBack_Here(f as *mut ffi::PyFrameObject);
            } else if ffi::PyErr_Occurred().is_null() {
                // Making the frame object failed: ceval's `_PyFrame_GetFrameObject` drops the
                // exception for the MemoryError, which `PyEval_GetFrame` (our way to it) clears.
                ffi::PyErr_NoMemory();
            }
            if !(*t).c_tracefunc.is_null() {
                super::trace::call_exc_trace(t, frame);
            }
        }
        let co = code(frame);
        let base = (std::ptr::addr_of_mut!((*frame).localsplus) as Sp).add((*co).co_nlocalsplus as usize);
        let level = if handler == NO_HANDLER { 0 } else { (handler >> 1) as usize };
        let mut sp = sp;
        while sp > base.add(level) {
            sp = sp.sub(1);
            ffi::Py_XDECREF(*sp);
        }
        // Only hand-made bytecode raises below its handler's depth (ceval asserts it does not);
        // the handler's code was verified for the entry's depth, so it gets that many values.
        while sp < base.add(level) {
            ffi::Py_INCREF(ffi::Py_None());
            *sp = ffi::Py_None();
            sp = sp.add(1);
        }
        if handler == NO_HANDLER {
            (*frame).stacktop = sp.offset_from(std::ptr::addr_of_mut!((*frame).localsplus) as Sp) as i32;
            super::trace::trace_function_unwind(t, frame);
            (*frame).stacktop = -1;
            return error_at(sp);
        }
        if handler & 1 != 0 {
            let first = std::ptr::addr_of_mut!((*co).co_code_adaptive) as *mut u16;
            let offset = (*frame).prev_instr.offset_from(first) as ffi::Py_ssize_t;
            // On failure ceval unwinds again, with the MemoryError, to this same entry, whose
            // depth the stack is already at: the same as trying again.
            let lasti = loop {
                let lasti = ffi::PyLong_FromSsize_t(offset);
                if !lasti.is_null() {
                    break lasti;
                }
            };
            *sp = lasti;
            sp = sp.add(1);
        }
        let (mut ty, mut value, mut tb) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
        ffi::PyErr_Fetch(&mut ty, &mut value, &mut tb);
        ffi::PyErr_NormalizeException(&mut ty, &mut value, &mut tb);
        ffi::PyException_SetTraceback(value, if tb.is_null() { ffi::Py_None() } else { tb });
        ffi::Py_XDECREF(tb);
        ffi::Py_XDECREF(ty);
        *sp = value;
        sp.add(1)
    }
}

/// The thread's innermost exception-stack entry (`tstate->exc_info`).
unsafe fn exc_info(t: *mut ThreadState) -> *mut ErrStackItem {
    // SAFETY: a live thread state always points at an entry (its own `exc_state` at least).
    unsafe { (*t).exc_info as *mut ErrStackItem }
}

/// PUSH_EXC_INFO: (exc) -> (the exception handled before, exc), exc becoming the one handled.
pub unsafe extern "C" fn pg_push_exc_info(t: *mut ThreadState, _frame: *mut InterpreterFrame, sp: Sp, _oparg: u32) -> Sp {
    // SAFETY: GIL held; the verified stack has the exception on top and room for one more.
    unsafe {
        let value = peek(sp, 1);
        let info = exc_info(t);
        let previous = if (*info).exc_value.is_null() {
            ffi::Py_INCREF(ffi::Py_None());
            ffi::Py_None()
        } else {
            (*info).exc_value // the entry's reference moves to the stack
        };
        put(sp, 1, previous);
        ffi::Py_INCREF(value);
        put(sp, 0, value);
        (*info).exc_value = value;
        sp.add(1)
    }
}

/// POP_EXCEPT: (previous) -> (), `previous` becoming the exception handled again.
pub unsafe extern "C" fn pg_pop_except(t: *mut ThreadState, _frame: *mut InterpreterFrame, sp: Sp, _oparg: u32) -> Sp {
    // SAFETY: GIL held; one value on the verified stack.
    unsafe {
        let info = exc_info(t);
        let handled = (*info).exc_value;
        (*info).exc_value = peek(sp, 1);
        ffi::Py_XDECREF(handled);
        sp.sub(1)
    }
}

/// CHECK_EXC_MATCH: (exc, type) -> (exc, whether exc matches `except type`).
pub unsafe extern "C" fn pg_check_exc_match(_t: *mut ThreadState, _frame: *mut InterpreterFrame, sp: Sp, _oparg: u32) -> Sp {
    // SAFETY: GIL held; two values on the verified stack, the exception below.
    unsafe {
        let right = peek(sp, 1);
        let matched = sem::exception_matches(peek(sp, 2), right);
        ffi::Py_DECREF(right);
        if matched < 0 {
            return error_at(sp.sub(1));
        }
        put(sp, 1, new_bool(matched != 0));
        sp
    }
}

/// RERAISE oparg: re-raises the exception on top with its own traceback; with `oparg`, the
/// frame's `prev_instr` is first put back where the exception was raised (the offset `oparg`
/// slots below it), which the frame's `f_lasti` then shows. Always raises.
pub unsafe extern "C" fn pg_reraise(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: GIL held; the verified stack has `oparg + 1` values, the exception on top.
    unsafe {
        if oparg != 0 {
            let lasti = peek(sp, oparg as usize + 1);
            if ffi::PyLong_Check(lasti) == 0 {
                ffi::PyErr_SetString(ffi::PyExc_SystemError, b"lasti is not an int\0".as_ptr() as *const c_char);
                return error_at(sp);
            }
            let first = std::ptr::addr_of_mut!((*code(frame)).co_code_adaptive) as *mut u16;
            (*frame).prev_instr = first.offset(ffi::PyLong_AsLong(lasti) as isize);
        }
        let sp = sp.sub(1);
        restore(*sp);
        unwind_at(sp)
    }
}

/// Sets exception instance `value` (its reference taken) as the pending exception with its own
/// traceback, as RERAISE and END_ASYNC_FOR do.
unsafe fn restore(value: *mut PyObject) {
    // SAFETY: GIL held; `value` is an owned exception instance.
    unsafe {
        let ty = ffi::PyExceptionInstance_Class(value);
        ffi::Py_INCREF(ty);
        let tb = ffi::PyException_GetTraceback(value);
        ffi::PyErr_Restore(ty, value, tb);
    }
}

/// RAISE_VARARGS oparg: `raise` (0), `raise exc` (1), `raise exc from cause` (2). Always raises:
/// a bare `raise` without the `error:` steps ([`unwind_at`]).
pub unsafe extern "C" fn pg_raise_varargs(t: *mut ThreadState, _frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: GIL held; `oparg` values on the verified stack (the opcode table's operand range,
    // 0..=2, checked by the compiler: ceval's SystemError for others is the interpreter's).
    unsafe {
        let mut sp = sp;
        let (mut exc, mut cause) = (std::ptr::null_mut(), std::ptr::null_mut());
        if oparg == 2 {
            sp = sp.sub(1);
            cause = *sp;
        }
        if oparg >= 1 {
            sp = sp.sub(1);
            exc = *sp;
        }
        match sem::raise(t as *mut ffi::PyThreadState, exc, cause) {
            sem::Raised::New => error_at(sp),
            sem::Raised::Restored => unwind_at(sp),
        }
    }
}

/// WITH_EXCEPT_START: (exit, lasti, previous, exc) -> (.., exc, exit(type(exc), exc, tb)).
pub unsafe extern "C" fn pg_with_except_start(_t: *mut ThreadState, _frame: *mut InterpreterFrame, sp: Sp, _oparg: u32) -> Sp {
    // SAFETY: GIL held; four values on the verified stack as above, room for one more.
    unsafe {
        let value = peek(sp, 1);
        let ty = ffi::PyExceptionInstance_Class(value);
        // Borrowed, as ceval passes it (the exception keeps it alive); null if it has none.
        let tb = ffi::PyException_GetTraceback(value);
        ffi::Py_XDECREF(tb);
        let exit = peek(sp, 4);
        let mut args = [std::ptr::null_mut(), ty, value, tb];
        let result = ffi::PyObject_Vectorcall(
            exit,
            args.as_mut_ptr().add(1),
            3 | ffi::PY_VECTORCALL_ARGUMENTS_OFFSET,
            std::ptr::null_mut(),
        );
        if result.is_null() {
            return error_at(sp);
        }
        put(sp, 0, result);
        sp.add(1)
    }
}

/// END_ASYNC_FOR: (aiter, exc) -> () when exc is StopAsyncIteration (the loop ends); otherwise
/// re-raises exc with its traceback ([`unwind_at`]), the iterator left on the stack.
pub unsafe extern "C" fn pg_end_async_for(_t: *mut ThreadState, _frame: *mut InterpreterFrame, sp: Sp, _oparg: u32) -> Sp {
    // SAFETY: GIL held; two values on the verified stack, the exception on top.
    unsafe {
        let value = peek(sp, 1);
        if ffi::PyErr_GivenExceptionMatches(value, ffi::PyExc_StopAsyncIteration) != 0 {
            ffi::Py_DECREF(value);
            ffi::Py_DECREF(peek(sp, 2));
            return sp.sub(2);
        }
        restore(value);
        unwind_at(sp.sub(1))
    }
}
