//! Attributes, and what a type says about one attribute name: the analysis ceval's specializer
//! makes (`analyze_descriptor` in Python/specialize.c), which inline caches and tier 2 share.

use crate::cpython::layout::{
    DictKeysObject, DictUnicodeEntry, MemberDescrObject, DICT_KEYS_GENERAL, MEMBER_READONLY, T_OBJECT_EX,
};
use crate::cpython::{self, ffi};
use ffi::PyObject;
use std::os::raw::c_int;

/// `owner.name`: a new reference, or null with an exception set.
///
/// # Safety
/// GIL held; live objects; `name` a str.
#[inline]
pub unsafe fn load_attr(owner: *mut PyObject, name: *mut PyObject) -> *mut PyObject {
    // SAFETY: per the contract.
    unsafe { ffi::PyObject_GetAttr(owner, name) }
}

/// `owner.name = value`: 0, or -1 with an exception set.
///
/// # Safety
/// GIL held; live objects; `name` a str.
#[inline]
pub unsafe fn store_attr(owner: *mut PyObject, name: *mut PyObject, value: *mut PyObject) -> c_int {
    // SAFETY: per the contract.
    unsafe { ffi::PyObject_SetAttr(owner, name, value) }
}

/// LOAD_METHOD's lookup: `Some((method, true))` for a method found on the type that takes
/// `obj` as its first argument (unbound, new reference), `Some((attribute, false))` for anything
/// else, `None` with an exception set.
///
/// # Safety
/// GIL held; live objects; `name` a str.
#[inline]
pub unsafe fn load_method(obj: *mut PyObject, name: *mut PyObject) -> Option<(*mut PyObject, bool)> {
    // SAFETY: per the contract.
    unsafe {
        let mut meth = std::ptr::null_mut();
        let found = cpython::_PyObject_GetMethod(obj, name, &mut meth);
        if meth.is_null() { None } else { Some((meth, found != 0)) }
    }
}

/// What a type has under one attribute name, as far as a cache can use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnType {
    /// The type has the generic attribute protocol and nothing under the name: an instance's
    /// own attribute (dict or values) decides.
    Absent,
    /// A `__slots__` member (`T_OBJECT_EX`) at this byte offset in the instance; `writable`
    /// unless it is read-only.
    Slot { offset: isize, writable: bool },
    /// A method (a function or a method descriptor: binds its instance as first argument).
    Method(*mut PyObject),
    /// A class attribute an instance's own attribute overrides: not a descriptor, or one
    /// without `__set__` that is not a method (`staticmethod`, `classmethod`, ...). ceval's
    /// specializer treats these as [`OnType::Absent`] (its NON_DESCRIPTOR and NON_OVERRIDING
    /// kinds): an instance that has the name decides; one without it finds the class's value
    /// through the generic protocol.
    Shadowable,
    /// Anything a cache does not handle: properties, other descriptors, `__getattr__`, a
    /// custom `__getattribute__`/`__setattr__`, a descriptor of a mutable type.
    Other,
}

/// What `tp` has under `name`, and the type's version tag (non-zero) that vouches for it: while
/// `tp_version_tag` still has that value, the type and its bases are unchanged, so the answer
/// holds. `None` when the type has no valid version (it is assigned here if it can be).
///
/// # Safety
/// GIL held; live type; `name` a str.
pub unsafe fn on_type(tp: *mut ffi::PyTypeObject, name: *mut PyObject, store: bool) -> Option<(OnType, u32)> {
    // SAFETY: per the contract; descriptor fields read after their type checks.
    unsafe {
        // Compared as addresses: both are libpython's exported functions, one address each.
        let generic = if store {
            (*tp).tp_setattro.map(|f| f as usize) == Some(ffi::PyObject_GenericSetAttr as *const () as usize)
        } else {
            (*tp).tp_getattro.map(|f| f as usize) == Some(ffi::PyObject_GenericGetAttr as *const () as usize)
        };
        // `_PyType_Lookup` assigns the version tag when the name is cacheable.
        let descr = cpython::_PyType_Lookup(tp, name);
        let version = valid_version(tp)?;
        if !generic {
            return Some((OnType::Other, version));
        }
        if descr.is_null() {
            return Some((OnType::Absent, version));
        }
        let dtp = ffi::Py_TYPE(descr);
        if (*dtp).tp_flags & ffi::Py_TPFLAGS_IMMUTABLETYPE == 0 {
            return Some((OnType::Other, version));
        }
        if dtp == std::ptr::addr_of_mut!(ffi::PyMemberDescr_Type) {
            let descr = descr as *mut MemberDescrObject;
            let member = (*descr).d_member;
            // A member borrowed from an unrelated class (`borrowed = Other.slot`) does not apply
            // to these instances (it raises TypeError); its offset means nothing here. The
            // subtype relation is fixed while the type keeps its version.
            let applies = ffi::PyType_IsSubtype(tp, (*descr).d_type) != 0;
            // PY_AUDIT_READ (2) members raise an audit event on every read.
            if applies && (*member).type_ == T_OBJECT_EX && (*member).flags & 2 == 0 {
                let writable = (*member).flags & MEMBER_READONLY == 0;
                return Some((OnType::Slot { offset: (*member).offset, writable }, version));
            }
            return Some((OnType::Other, version));
        }
        if (*dtp).tp_descr_set.is_some() {
            return Some((OnType::Other, version));
        }
        if (*dtp).tp_descr_get.is_some() && (*dtp).tp_flags & ffi::Py_TPFLAGS_METHOD_DESCRIPTOR != 0 {
            return Some((OnType::Method(descr), version));
        }
        Some((OnType::Shadowable, version))
    }
}

/// The type's version tag if it is valid (non-zero).
///
/// # Safety
/// Live type.
pub unsafe fn valid_version(tp: *mut ffi::PyTypeObject) -> Option<u32> {
    // SAFETY: per the contract.
    unsafe {
        let valid = (*tp).tp_flags & ffi::Py_TPFLAGS_VALID_VERSION_TAG != 0 && (*tp).tp_version_tag != 0;
        valid.then_some((*tp).tp_version_tag)
    }
}

/// The index of `name` (by identity: attribute and global names are interned) among the
/// entries of str-keyed dict keys: for a type's shared keys, its index in the values array of
/// every instance that uses them; for a combined dict, the entry holding its value. `None`
/// for keys of the general kind.
///
/// # Safety
/// GIL held; `keys` null or a live keys object.
pub unsafe fn shared_key_index(keys: *mut DictKeysObject, name: *mut PyObject) -> Option<usize> {
    // SAFETY: the entries follow the index table (`DK_UNICODE_ENTRIES`), `dk_nentries` of them
    // in use; split keys are never of the general kind, checked first.
    unsafe {
        if keys.is_null() || (*keys).dk_kind == DICT_KEYS_GENERAL {
            return None;
        }
        let entries = std::ptr::addr_of!((*keys).dk_indices)
            .cast::<u8>()
            .add(1usize << (*keys).dk_log2_index_bytes)
            .cast::<DictUnicodeEntry>();
        (0..(*keys).dk_nentries as usize).find(|&i| (*entries.add(i)).me_key == name)
    }
}
