//! Small pieces every family of opcode helpers uses: frame and stack accessors, interned strings,
//! and the context-manager lookup shared by `with` and `async with`. All require the GIL.

use super::{error_at, Sp};
use crate::cpython::{self, ffi, CodeObject, InterpreterFrame};
use ffi::PyObject;
use std::os::raw::c_char;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};

#[inline(always)]
pub(crate) unsafe fn code(frame: *mut InterpreterFrame) -> *mut CodeObject {
    // SAFETY: a live frame holds its code object.
    unsafe { (*frame).f_code }
}

/// `co_names[i]`, borrowed.
#[inline(always)]
pub(crate) unsafe fn name_at(frame: *mut InterpreterFrame, i: u32) -> *mut PyObject {
    // SAFETY: the compiler checked `i < len(co_names)`.
    unsafe { ffi::PyTuple_GET_ITEM((*code(frame)).co_names, i as ffi::Py_ssize_t) }
}

/// The name of local slot `i`, borrowed.
#[inline(always)]
pub(crate) unsafe fn local_name(frame: *mut InterpreterFrame, i: u32) -> *mut PyObject {
    // SAFETY: the compiler checked `i < co_nlocalsplus`.
    unsafe { ffi::PyTuple_GET_ITEM((*code(frame)).co_localsplusnames, i as ffi::Py_ssize_t) }
}

/// The address of local slot `i`.
#[inline(always)]
pub(crate) unsafe fn local_slot(frame: *mut InterpreterFrame, i: u32) -> *mut *mut PyObject {
    // SAFETY: the compiler checked `i < co_nlocalsplus`.
    unsafe { (std::ptr::addr_of_mut!((*frame).localsplus) as *mut *mut PyObject).add(i as usize) }
}

/// The value `n` slots below `sp` (1 is the top).
#[inline(always)]
pub(crate) unsafe fn peek(sp: Sp, n: usize) -> *mut PyObject {
    // SAFETY: the compiler verified the stack depth; `n` items are on the stack.
    unsafe { *sp.sub(n) }
}

/// Writes the slot `n` below `sp` (0 is the first free slot).
#[inline(always)]
pub(crate) unsafe fn put(sp: Sp, n: usize, v: *mut PyObject) {
    // SAFETY: as for `peek`; the frame has room for the verified maximum depth.
    unsafe { *sp.sub(n) = v }
}

/// A new reference to True or False.
#[inline(always)]
pub(crate) unsafe fn new_bool(b: bool) -> *mut PyObject {
    // SAFETY: GIL held; True/False are static objects.
    unsafe {
        let v = if b { ffi::Py_True() } else { ffi::Py_False() };
        ffi::Py_INCREF(v);
        v
    }
}

/// The type name of `o`, for error messages.
#[inline(always)]
pub(crate) unsafe fn type_name(o: *mut PyObject) -> *const c_char {
    // SAFETY: a live object has a live type with a NUL-terminated name.
    unsafe { (*ffi::Py_TYPE(o)).tp_name }
}

/// An interned string created on first use and kept for the life of the process (the
/// interpreter's own `_Py_ID` strings are not exported).
pub(crate) struct Interned {
    ptr: AtomicPtr<PyObject>,
    text: &'static [u8],
}

impl Interned {
    pub(crate) const fn new(text: &'static [u8]) -> Self {
        Interned { ptr: AtomicPtr::new(null_mut()), text }
    }

    /// The string (borrowed), or null with an exception set.
    pub(crate) unsafe fn get(&self) -> *mut PyObject {
        let p = self.ptr.load(Ordering::Acquire);
        if !p.is_null() {
            return p;
        }
        // SAFETY: GIL held; `text` is NUL-terminated.
        unsafe {
            let s = ffi::PyUnicode_InternFromString(self.text.as_ptr() as *const c_char);
            if s.is_null() {
                return null_mut();
            }
            match self.ptr.compare_exchange(null_mut(), s, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => s,
                Err(existing) => {
                    ffi::Py_DECREF(s);
                    existing
                }
            }
        }
    }
}

/// BEFORE_WITH and BEFORE_ASYNC_WITH: (mgr) -> (bound exit, result of enter()), the methods
/// looked up on the type. `no_enter`/`no_exit` are the TypeError formats (one `%.200s`, the type
/// name) when a method is missing.
pub(crate) unsafe fn enter_context(
    sp: Sp,
    enter_name: &Interned,
    exit_name: &Interned,
    no_enter: &'static [u8],
    no_exit: &'static [u8],
) -> Sp {
    // SAFETY: one value on the stack and room for one more; formats are NUL-terminated.
    unsafe {
        let mgr = peek(sp, 1);
        let (enter_name, exit_name) = (enter_name.get(), exit_name.get());
        if enter_name.is_null() || exit_name.is_null() {
            return error_at(sp);
        }
        let enter = cpython::_PyObject_LookupSpecial(mgr, enter_name);
        if enter.is_null() {
            if ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_Format(ffi::PyExc_TypeError, no_enter.as_ptr() as *const c_char, type_name(mgr));
            }
            return error_at(sp);
        }
        let exit = cpython::_PyObject_LookupSpecial(mgr, exit_name);
        if exit.is_null() {
            if ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_Format(ffi::PyExc_TypeError, no_exit.as_ptr() as *const c_char, type_name(mgr));
            }
            ffi::Py_DECREF(enter);
            return error_at(sp);
        }
        put(sp, 1, exit);
        ffi::Py_DECREF(mgr);
        let res = ffi::PyObject_CallNoArgs(enter);
        ffi::Py_DECREF(enter);
        if res.is_null() {
            return error_at(sp);
        }
        put(sp, 0, res);
        sp.add(1)
    }
}
