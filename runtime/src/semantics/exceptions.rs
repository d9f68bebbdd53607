//! Raising and matching exceptions: `raise`, `except T`, the parts of `with`'s exit on an
//! exception that are about values. Written from `Python/ceval.c` (3.11: `do_raise`,
//! `check_except_type_valid`); the interpreter's own functions are static there.

use crate::cpython::ffi::{self, PyObject};
use std::os::raw::{c_char, c_int};

const CANNOT_CATCH_MSG: &[u8] = b"catching classes that do not inherit from BaseException is not allowed\0";

extern "C" {
    /// The exception being handled, for a bare `raise` (exported by libpython; the innermost
    /// `_PyErr_StackItem` whose value is set, or the outermost).
    fn _PyErr_GetTopmostException(tstate: *mut ffi::PyThreadState) -> *mut crate::cpython::layout::ErrStackItem;
}

/// What [`raise`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Raised {
    /// A new exception is set: the interpreter's `goto error` (a traceback entry for this frame,
    /// the 'exception' trace event, then the search for a handler).
    New,
    /// A bare `raise` restored the exception being handled, with its traceback: the interpreter
    /// goes straight to the search for a handler (`goto exception_unwind`), adding no entry.
    Restored,
}

/// `raise`, `raise exc` and `raise exc from cause` (ceval's `do_raise`). Takes ownership of
/// `exc` and `cause` (either may be null: absent). Always leaves an exception set.
///
/// # Safety
/// GIL held; `tstate` is the current thread state; `exc` and `cause` are owned references or null.
pub unsafe fn raise(tstate: *mut ffi::PyThreadState, exc: *mut PyObject, cause: *mut PyObject) -> Raised {
    // SAFETY: per the contract; every reference taken is released or handed on exactly once.
    unsafe {
        if exc.is_null() {
            // Re-raise what is being handled, traceback and all; `cause` is absent here (the
            // compiler emits RAISE_VARARGS 0 for a bare raise only).
            let item = _PyErr_GetTopmostException(tstate);
            let value = (*item).exc_value;
            if value.is_null() || value == ffi::Py_None() {
                ffi::PyErr_SetString(ffi::PyExc_RuntimeError, b"No active exception to reraise\0".as_ptr() as *const c_char);
                return Raised::New;
            }
            let ty = ffi::PyExceptionInstance_Class(value);
            ffi::Py_INCREF(ty);
            ffi::Py_INCREF(value);
            let tb = ffi::PyException_GetTraceback(value);
            ffi::PyErr_Restore(ty, value, tb);
            return Raised::Restored;
        }
        // `raise <class>` instantiates it; `raise <instance>` raises it as it is.
        let (ty, value) = if ffi::PyExceptionClass_Check(exc) != 0 {
            let value = ffi::PyObject_CallNoArgs(exc);
            if value.is_null() {
                return give_up(std::ptr::null_mut(), exc, cause);
            }
            if ffi::PyExceptionInstance_Check(value) == 0 {
                ffi::PyErr_Format(
                    ffi::PyExc_TypeError,
                    b"calling %R should have returned an instance of BaseException, not %R\0".as_ptr() as *const c_char,
                    exc,
                    ffi::Py_TYPE(value) as *mut PyObject,
                );
                return give_up(value, exc, cause);
            }
            (exc, value)
        } else if ffi::PyExceptionInstance_Check(exc) != 0 {
            let ty = ffi::PyExceptionInstance_Class(exc);
            ffi::Py_INCREF(ty);
            (ty, exc)
        } else {
            ffi::Py_DECREF(exc);
            ffi::PyErr_SetString(ffi::PyExc_TypeError, b"exceptions must derive from BaseException\0".as_ptr() as *const c_char);
            return give_up(std::ptr::null_mut(), std::ptr::null_mut(), cause);
        };
        if !cause.is_null() {
            // PyException_SetCause takes the cause's reference (null: no cause, suppressed).
            let fixed = if ffi::PyExceptionClass_Check(cause) != 0 {
                let made = ffi::PyObject_CallNoArgs(cause);
                if made.is_null() {
                    return give_up(value, ty, cause);
                }
                ffi::Py_DECREF(cause);
                made
            } else if ffi::PyExceptionInstance_Check(cause) != 0 {
                cause
            } else if cause == ffi::Py_None() {
                ffi::Py_DECREF(cause);
                std::ptr::null_mut()
            } else {
                ffi::PyErr_SetString(
                    ffi::PyExc_TypeError,
                    b"exception causes must derive from BaseException\0".as_ptr() as *const c_char,
                );
                return give_up(value, ty, cause);
            };
            ffi::PyException_SetCause(value, fixed);
        }
        // Sets the context from the exception being handled, as the interpreter does.
        ffi::PyErr_SetObject(ty, value);
        ffi::Py_DECREF(value);
        ffi::Py_DECREF(ty);
        Raised::New
    }
}

/// `do_raise`'s `raise_error:` exit: releases what it still holds (each may be null); the
/// exception that made it give up is set.
unsafe fn give_up(value: *mut PyObject, ty: *mut PyObject, cause: *mut PyObject) -> Raised {
    // SAFETY: owned references or null (caller).
    unsafe {
        ffi::Py_XDECREF(value);
        ffi::Py_XDECREF(ty);
        ffi::Py_XDECREF(cause);
    }
    Raised::New
}

/// `except right:`'s check that `right` is an exception class or a tuple of them (ceval's
/// `check_except_type_valid`): 0, or -1 with TypeError set.
///
/// # Safety
/// GIL held; `right` is live.
pub unsafe fn check_except_type_valid(right: *mut PyObject) -> c_int {
    // SAFETY: per the contract; a tuple's items are live while it is.
    unsafe {
        let valid = if ffi::PyTuple_Check(right) != 0 {
            (0..ffi::PyTuple_GET_SIZE(right)).all(|i| ffi::PyExceptionClass_Check(ffi::PyTuple_GET_ITEM(right, i)) != 0)
        } else {
            ffi::PyExceptionClass_Check(right) != 0
        };
        if valid {
            0
        } else {
            ffi::PyErr_SetString(ffi::PyExc_TypeError, CANNOT_CATCH_MSG.as_ptr() as *const c_char);
            -1
        }
    }
}

/// CHECK_EXC_MATCH's value: whether the exception `left` matches `except right:`, or -1 with
/// TypeError set when `right` cannot be caught.
///
/// # Safety
/// GIL held; both live; `left` an exception instance.
pub unsafe fn exception_matches(left: *mut PyObject, right: *mut PyObject) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        if check_except_type_valid(right) < 0 {
            return -1;
        }
        (ffi::PyErr_GivenExceptionMatches(left, right) != 0) as c_int
    }
}
