//! Raising the interpreter's own error messages.

use crate::cpython::ffi::{self, PyObject};
use std::os::raw::c_char;

pub(crate) const NAME_ERROR_MSG: &[u8] = b"name '%.200s' is not defined\0";

/// ceval's `format_exc_check_arg`: raises `exc(format % name)`; a NameError also records the
/// name, which the traceback printer uses for "Did you mean" suggestions.
pub(crate) unsafe fn format_exc_check_arg(exc: *mut PyObject, format: &[u8], name: *mut PyObject) {
    // SAFETY: GIL held; `format` is NUL-terminated with one %s; `name` is a str.
    unsafe {
        if name.is_null() {
            return;
        }
        let utf8 = ffi::PyUnicode_AsUTF8(name);
        if utf8.is_null() {
            return;
        }
        ffi::PyErr_Format(exc, format.as_ptr() as *const c_char, utf8);
        if exc == ffi::PyExc_NameError {
            let (mut t, mut v, mut tb) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
            ffi::PyErr_Fetch(&mut t, &mut v, &mut tb);
            ffi::PyErr_NormalizeException(&mut t, &mut v, &mut tb);
            if ffi::PyErr_GivenExceptionMatches(v, ffi::PyExc_NameError) != 0 {
                let attr = ffi::PyObject_GetAttrString(v, b"name\0".as_ptr() as *const c_char);
                if attr.is_null() {
                    ffi::PyErr_Clear();
                } else {
                    if attr == ffi::Py_None() {
                        ffi::PyObject_SetAttrString(v, b"name\0".as_ptr() as *const c_char, name);
                    }
                    ffi::Py_DECREF(attr);
                }
            }
            ffi::PyErr_Restore(t, v, tb);
        }
    }
}

