//! Global names.

use super::errors::{format_exc_check_arg, NAME_ERROR_MSG};
use crate::cpython::ffi::{self, PyObject};

/// LOAD_GLOBAL's lookup of `name`: `globals`, then `builtins`; NameError if in neither. A new
/// reference, or null with an exception set. Exact dicts are read directly (no `__missing__`,
/// no Python code); anything else through the mapping protocol, as ceval does.
///
/// # Safety
/// GIL held; live objects; `name` a str.
pub unsafe fn load_global(globals: *mut PyObject, builtins: *mut PyObject, name: *mut PyObject) -> *mut PyObject {
    // SAFETY: per the contract.
    unsafe {
        if ffi::PyDict_CheckExact(globals) != 0 && ffi::PyDict_CheckExact(builtins) != 0 {
            let mut found = ffi::PyDict_GetItemWithError(globals, name);
            if found.is_null() {
                if !ffi::PyErr_Occurred().is_null() {
                    return std::ptr::null_mut();
                }
                found = ffi::PyDict_GetItemWithError(builtins, name);
                if found.is_null() {
                    if ffi::PyErr_Occurred().is_null() {
                        format_exc_check_arg(ffi::PyExc_NameError, NAME_ERROR_MSG, name);
                    }
                    return std::ptr::null_mut();
                }
            }
            ffi::Py_INCREF(found);
            return found;
        }
        let found = ffi::PyObject_GetItem(globals, name);
        if !found.is_null() {
            return found;
        }
        if ffi::PyErr_ExceptionMatches(ffi::PyExc_KeyError) == 0 {
            return std::ptr::null_mut();
        }
        ffi::PyErr_Clear();
        let found = ffi::PyObject_GetItem(builtins, name);
        if found.is_null() && ffi::PyErr_ExceptionMatches(ffi::PyExc_KeyError) != 0 {
            format_exc_check_arg(ffi::PyExc_NameError, NAME_ERROR_MSG, name);
        }
        found
    }
}
