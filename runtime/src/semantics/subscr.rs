//! Subscripts: `container[sub]` and `container[sub] = v`.

use crate::cpython::{self, ffi};
use ffi::PyObject;
use std::os::raw::c_int;

/// The index an exact int `sub` names in a sequence of `len` items, as list and tuple
/// subscripts compute it (negative counts from the end); `None` when `sub` is not an exact int
/// of at most one digit or the index is out of range (the generic path raises there).
///
/// # Safety
/// GIL held; `sub` live.
#[inline(always)]
unsafe fn sequence_index(sub: *mut PyObject, len: ffi::Py_ssize_t) -> Option<ffi::Py_ssize_t> {
    // SAFETY: the exact-int check comes first.
    unsafe {
        if ffi::PyLong_CheckExact(sub) == 0 {
            return None;
        }
        let i = super::operators::small_int(sub)? as ffi::Py_ssize_t;
        let i = if i < 0 { i + len } else { i };
        (0..len).contains(&i).then_some(i)
    }
}

/// `container[sub]`: a new reference, or null with an exception set.
///
/// An exact list or tuple indexed by a small exact int in range, and an exact dict, are read
/// directly: `list_subscript`, `tuple_subscript` and `dict_subscript` do the same for them (an
/// exact dict has no `__missing__`) and allocate nothing.
///
/// # Safety
/// GIL held; live operands.
#[inline]
pub unsafe fn binary_subscr(container: *mut PyObject, sub: *mut PyObject) -> *mut PyObject {
    // SAFETY: exact-type checks come before each type's accessor; items are borrowed, then
    // returned as new references.
    unsafe {
        let tp = ffi::Py_TYPE(container);
        if tp == std::ptr::addr_of_mut!(ffi::PyList_Type) {
            if let Some(i) = sequence_index(sub, ffi::PyList_GET_SIZE(container)) {
                let item = ffi::PyList_GET_ITEM(container, i);
                ffi::Py_INCREF(item);
                return item;
            }
        } else if tp == std::ptr::addr_of_mut!(ffi::PyTuple_Type) {
            if let Some(i) = sequence_index(sub, ffi::PyTuple_GET_SIZE(container)) {
                let item = ffi::PyTuple_GET_ITEM(container, i);
                ffi::Py_INCREF(item);
                return item;
            }
        } else if tp == std::ptr::addr_of_mut!(ffi::PyDict_Type) {
            // One lookup, as dict_subscript: the key's __hash__/__eq__ run exactly once.
            let item = ffi::PyDict_GetItemWithError(container, sub);
            if item.is_null() {
                if ffi::PyErr_Occurred().is_null() {
                    cpython::_PyErr_SetKeyError(sub);
                }
                return std::ptr::null_mut();
            }
            ffi::Py_INCREF(item);
            return item;
        }
        ffi::PyObject_GetItem(container, sub)
    }
}

/// `container[sub] = v`: 0, or -1 with an exception set. `v` is borrowed.
///
/// An exact list indexed by a small exact int in range is stored directly, releasing the old
/// item as `list_ass_item` does; an exact dict goes straight to `PyDict_SetItem`, which is what
/// its mapping slot calls.
///
/// # Safety
/// GIL held; live operands.
#[inline]
pub unsafe fn store_subscr(container: *mut PyObject, sub: *mut PyObject, v: *mut PyObject) -> c_int {
    // SAFETY: exact-type checks come before each type's accessor; the list owns its items.
    unsafe {
        let tp = ffi::Py_TYPE(container);
        if tp == std::ptr::addr_of_mut!(ffi::PyList_Type) {
            if let Some(i) = sequence_index(sub, ffi::PyList_GET_SIZE(container)) {
                let slot = (*(container as *mut ffi::PyListObject)).ob_item.offset(i);
                let old = *slot;
                ffi::Py_INCREF(v);
                *slot = v;
                ffi::Py_DECREF(old);
                return 0;
            }
        } else if tp == std::ptr::addr_of_mut!(ffi::PyDict_Type) {
            return ffi::PyDict_SetItem(container, sub, v);
        }
        ffi::PyObject_SetItem(container, sub, v)
    }
}
