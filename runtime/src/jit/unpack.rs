//! Opcode semantics for the unpack family, written from `Python/ceval.c` (3.11) against the public C
//! API, with the helper conventions of `super::ops` (uniform signature, tagged error return,
//! stack left as ceval's error path leaves it).
//!
//! The family: star calls (`CALL_FUNCTION_EX`), the star/double-star displays (`LIST_EXTEND`,
//! `SET_UPDATE`, `DICT_UPDATE`, `DICT_MERGE`), starred assignment (`UNPACK_EX`), `BEFORE_WITH`,
//! and structural pattern matching (`MATCH_CLASS`, `MATCH_KEYS`, `MATCH_MAPPING`,
//! `MATCH_SEQUENCE`). ceval's static helpers (`format_kwargs_error`, `check_args_iterable`,
//! `unpack_iterable`, `match_class`, `match_class_attr`, `match_keys`) are not exported from
//! libpython, so their logic is rewritten here.
//!
//! Where ceval leaks a reference on an error path, these helpers leak it too: the reference is
//! observable (`sys.getrefcount`, whether and when a destructor runs), and stock CPython is the
//! bar. `CALL_FUNCTION_EX` keeps the `**` dict when the `*` argument is not iterable or
//! iterating it fails.

use super::support::{enter_context, new_bool, peek, put, type_name, Interned};
use super::{error_at, Sp};
use crate::cpython::{ffi, InterpreterFrame, ThreadState};
use ffi::PyObject;
use std::os::raw::{c_char, c_int};
use std::ptr::null_mut;

// Exported from libpython3.11 (checked with `nm -D --defined-only libpython3.11.so`) but private
// API, so pyo3-ffi does not declare them. Kept here rather than in `cpython/mod.rs` because only
// this family uses them.
extern "C" {
    /// `PyDict_Merge` with `override` 2: raises `KeyError((key,))` on a duplicate key.
    fn _PyDict_MergeEx(a: *mut PyObject, b: *mut PyObject, override_: c_int) -> c_int;
    /// `"f()"`-style description of a callable for error messages.
    fn _PyObject_FunctionStr(x: *mut PyObject) -> *mut PyObject;
    /// Looks `attr` up on the type of `obj` (not the instance) and binds it.
    /// `list.extend(iterable)`: a new reference to None, or null.
    fn _PyList_Extend(list: *mut PyObject, iterable: *mut PyObject) -> *mut PyObject;
    /// `set.update(iterable)` for a set: 0 or -1.
    fn _PySet_Update(set: *mut PyObject, iterable: *mut PyObject) -> c_int;
}

/// `_Py_TPFLAGS_MATCH_SELF` (Include/object.h, 3.10+): builtins whose single positional
/// sub-pattern matches the subject itself.
const TPFLAGS_MATCH_SELF: std::os::raw::c_ulong = 1 << 22;

static STR_ENTER: Interned = Interned::new(b"__enter__\0");
static STR_EXIT: Interned = Interned::new(b"__exit__\0");
static STR_GET: Interned = Interned::new(b"get\0");

#[inline(always)]
unsafe fn c(s: &'static [u8]) -> *const c_char {
    s.as_ptr() as *const c_char
}

/// Raises SystemError for bytecode whose operands are not what the compiler emits (ceval only
/// asserts these; compiled code must not corrupt memory on hand-written bytecode).
unsafe fn bad_operand(what: &'static [u8]) {
    // SAFETY: GIL held; `what` is NUL-terminated.
    unsafe { ffi::PyErr_SetString(ffi::PyExc_SystemError, c(what)) }
}

// ---------------------------------------------------------------------------------------------
// Star calls

/// ceval's `format_kwargs_error`: rewrites the error of merging a `**` argument into the
/// TypeError the user sees.
unsafe fn format_kwargs_error(func: *mut PyObject, kwargs: *mut PyObject) {
    // SAFETY: GIL held; an exception is set; `func` and `kwargs` are live.
    unsafe {
        if ffi::PyErr_ExceptionMatches(ffi::PyExc_AttributeError) != 0 {
            // The mapping protocol failed on `keys`: not a mapping.
            ffi::PyErr_Clear();
            let funcstr = _PyObject_FunctionStr(func);
            if !funcstr.is_null() {
                ffi::PyErr_Format(
                    ffi::PyExc_TypeError,
                    c(b"%U argument after ** must be a mapping, not %.200s\0"),
                    funcstr,
                    type_name(kwargs),
                );
                ffi::Py_DECREF(funcstr);
            }
        } else if ffi::PyErr_ExceptionMatches(ffi::PyExc_KeyError) != 0 {
            // _PyDict_MergeEx reports a duplicate key as KeyError((key,)), not normalized.
            let (mut exc, mut val, mut tb) = (null_mut(), null_mut(), null_mut());
            ffi::PyErr_Fetch(&mut exc, &mut val, &mut tb);
            if !val.is_null() && ffi::PyTuple_Check(val) != 0 && ffi::PyTuple_GET_SIZE(val) == 1 {
                let funcstr = _PyObject_FunctionStr(func);
                if !funcstr.is_null() {
                    let key = ffi::PyTuple_GET_ITEM(val, 0);
                    ffi::PyErr_Format(
                        ffi::PyExc_TypeError,
                        c(b"%U got multiple values for keyword argument '%S'\0"),
                        funcstr,
                        key,
                    );
                    ffi::Py_DECREF(funcstr);
                }
                ffi::Py_XDECREF(exc);
                ffi::Py_XDECREF(val);
                ffi::Py_XDECREF(tb);
            } else {
                ffi::PyErr_Restore(exc, val, tb);
            }
        }
    }
}

/// ceval's `check_args_iterable`: 0, or -1 with "argument after * must be an iterable" raised.
unsafe fn check_args_iterable(func: *mut PyObject, args: *mut PyObject) -> c_int {
    // SAFETY: GIL held; live operands.
    unsafe {
        if (*ffi::Py_TYPE(args)).tp_iter.is_none() && ffi::PySequence_Check(args) == 0 {
            ffi::PyErr_Clear();
            let funcstr = _PyObject_FunctionStr(func);
            if !funcstr.is_null() {
                ffi::PyErr_Format(
                    ffi::PyExc_TypeError,
                    c(b"%U argument after * must be an iterable, not %.200s\0"),
                    funcstr,
                    type_name(args),
                );
                ffi::Py_DECREF(funcstr);
            }
            return -1;
        }
        0
    }
}

/// CALL_FUNCTION_EX: stack (NULL, func, callargs[, kwargs if oparg & 1]) -> result.
pub unsafe extern "C" fn pg_call_function_ex(
    _t: *mut ThreadState,
    _f: *mut InterpreterFrame,
    sp: Sp,
    oparg: u32,
) -> Sp {
    // SAFETY: 3 or 4 values on the stack (the compiler emits PUSH_NULL before the callable).
    unsafe {
        let mut sp = sp;
        let mut kwargs: *mut PyObject = null_mut();
        if oparg & 1 != 0 {
            let k = peek(sp, 1);
            sp = sp.sub(1);
            if ffi::PyDict_CheckExact(k) == 0 {
                let d = ffi::PyDict_New();
                if d.is_null() {
                    ffi::Py_DECREF(k);
                    return error_at(sp);
                }
                if _PyDict_MergeEx(d, k, 2) < 0 {
                    ffi::Py_DECREF(d);
                    // Stack is (NULL, func, callargs): func is second from the top.
                    format_kwargs_error(peek(sp, 2), k);
                    ffi::Py_DECREF(k);
                    return error_at(sp);
                }
                ffi::Py_DECREF(k);
                kwargs = d;
            } else {
                kwargs = k;
            }
        }
        let mut callargs = peek(sp, 1);
        sp = sp.sub(1);
        let func = peek(sp, 1);
        if ffi::PyTuple_CheckExact(callargs) == 0 {
            // On both error exits below ceval 3.11 has popped `kwargs` (the `**` dict, or its
            // copy of another mapping) and never releases it. That leak is observable (the dict
            // and the values it holds stay alive, sys.getrefcount shows the reference), and
            // stock CPython is the bar, so `kwargs` is deliberately not released there.
            if check_args_iterable(func, callargs) < 0 {
                ffi::Py_DECREF(callargs);
                return error_at(sp);
            }
            let t = ffi::PySequence_Tuple(callargs);
            ffi::Py_DECREF(callargs);
            if t.is_null() {
                return error_at(sp);
            }
            callargs = t;
        }
        // ceval's do_call_core: compiled code never runs with tracing on, so it is a plain call.
        let result = ffi::PyObject_Call(func, callargs, kwargs);
        ffi::Py_DECREF(func);
        ffi::Py_DECREF(callargs);
        ffi::Py_XDECREF(kwargs);
        // The NULL below func takes the result (as ceval's SET_TOP, without releasing it).
        sp = sp.sub(1);
        put(sp, 1, result);
        if result.is_null() {
            error_at(sp)
        } else {
            sp
        }
    }
}

/// DICT_MERGE: merges TOS into the dict `oparg` below it, refusing duplicate keys (the `**`
/// arguments of a call; the callable is `oparg + 2` below the dict's position).
pub unsafe extern "C" fn pg_dict_merge(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: oparg + 3 values on the stack (callable, args tuple, ..., dict, ..., update).
    unsafe {
        let update = peek(sp, 1);
        let sp = sp.sub(1);
        let dict = peek(sp, oparg as usize);
        if _PyDict_MergeEx(dict, update, 2) < 0 {
            format_kwargs_error(peek(sp, 2 + oparg as usize), update);
            ffi::Py_DECREF(update);
            return error_at(sp);
        }
        ffi::Py_DECREF(update);
        sp
    }
}

/// DICT_UPDATE: `dict.update(TOS)` for the dict `oparg` below it (`{**a}` displays).
pub unsafe extern "C" fn pg_dict_update(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: oparg + 1 values on the stack.
    unsafe {
        let update = peek(sp, 1);
        let sp = sp.sub(1);
        let dict = peek(sp, oparg as usize);
        if ffi::PyDict_Update(dict, update) < 0 {
            if ffi::PyErr_ExceptionMatches(ffi::PyExc_AttributeError) != 0 {
                ffi::PyErr_Format(ffi::PyExc_TypeError, c(b"'%.200s' object is not a mapping\0"), type_name(update));
            }
            ffi::Py_DECREF(update);
            return error_at(sp);
        }
        ffi::Py_DECREF(update);
        sp
    }
}

/// LIST_EXTEND: `list.extend(TOS)` for the list `oparg` below it (`[*a]`, `f(*a, *b)`).
pub unsafe extern "C" fn pg_list_extend(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: oparg + 1 values on the stack.
    unsafe {
        let iterable = peek(sp, 1);
        let sp = sp.sub(1);
        let list = peek(sp, oparg as usize);
        if ffi::PyList_Check(list) == 0 {
            bad_operand(b"LIST_EXTEND target is not a list\0");
            ffi::Py_DECREF(iterable);
            return error_at(sp);
        }
        let none = _PyList_Extend(list, iterable);
        if none.is_null() {
            if ffi::PyErr_ExceptionMatches(ffi::PyExc_TypeError) != 0
                && (*ffi::Py_TYPE(iterable)).tp_iter.is_none()
                && ffi::PySequence_Check(iterable) == 0
            {
                ffi::PyErr_Clear();
                ffi::PyErr_Format(
                    ffi::PyExc_TypeError,
                    c(b"Value after * must be an iterable, not %.200s\0"),
                    type_name(iterable),
                );
            }
            ffi::Py_DECREF(iterable);
            return error_at(sp);
        }
        ffi::Py_DECREF(none);
        ffi::Py_DECREF(iterable);
        sp
    }
}

/// SET_UPDATE: `set.update(TOS)` for the set `oparg` below it (`{*a}`).
pub unsafe extern "C" fn pg_set_update(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: oparg + 1 values on the stack.
    unsafe {
        let iterable = peek(sp, 1);
        let sp = sp.sub(1);
        let set = peek(sp, oparg as usize);
        let err = _PySet_Update(set, iterable);
        ffi::Py_DECREF(iterable);
        if err < 0 {
            error_at(sp)
        } else {
            sp
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Starred assignment

/// UNPACK_EX: `a, *b, c = seq` with `oparg & 0xff` targets before the star and `oparg >> 8`
/// after; replaces the sequence with the values, the first on top, the starred one a list.
pub unsafe extern "C" fn pg_unpack_ex(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: one value on the stack and room for 1 + before + after (co_stacksize).
    unsafe {
        let before = (oparg & 0xff) as usize;
        let after = (oparg >> 8) as usize;
        let total = 1 + before + after;
        let seq = peek(sp, 1);
        let base = sp.sub(1);
        let it = ffi::PyObject_GetIter(seq);
        if it.is_null() {
            if ffi::PyErr_ExceptionMatches(ffi::PyExc_TypeError) != 0
                && (*ffi::Py_TYPE(seq)).tp_iter.is_none()
                && ffi::PySequence_Check(seq) == 0
            {
                ffi::PyErr_Format(
                    ffi::PyExc_TypeError,
                    c(b"cannot unpack non-iterable %.200s object\0"),
                    type_name(seq),
                );
            }
            ffi::Py_DECREF(seq);
            return error_at(base);
        }
        // Values are written downwards from the top of the result area; `written` of them sit
        // at `top..top + written`.
        let mut top = base.add(total);
        let mut written = 0usize;
        let ok = 'unpack: {
            for i in 0..before {
                let w = ffi::PyIter_Next(it);
                if w.is_null() {
                    if ffi::PyErr_Occurred().is_null() {
                        ffi::PyErr_Format(
                            ffi::PyExc_ValueError,
                            c(b"not enough values to unpack (expected at least %d, got %d)\0"),
                            (before + after) as c_int,
                            i as c_int,
                        );
                    }
                    break 'unpack false;
                }
                top = top.sub(1);
                *top = w;
                written += 1;
            }
            let l = ffi::PySequence_List(it);
            if l.is_null() {
                break 'unpack false;
            }
            top = top.sub(1);
            *top = l;
            written += 1;
            let ll = ffi::PyList_GET_SIZE(l);
            if (ll as usize) < after {
                ffi::PyErr_Format(
                    ffi::PyExc_ValueError,
                    c(b"not enough values to unpack (expected at least %d, got %zd)\0"),
                    (before + after) as c_int,
                    before as ffi::Py_ssize_t + ll,
                );
                break 'unpack false;
            }
            // The last `after` items move from the list to the stack.
            for j in (1..=after).rev() {
                top = top.sub(1);
                *top = ffi::PyList_GET_ITEM(l, ll - j as ffi::Py_ssize_t);
                written += 1;
            }
            (*(l as *mut ffi::PyVarObject)).ob_size = ll - after as ffi::Py_ssize_t;
            true
        };
        if !ok {
            // As ceval: the values already unpacked, then the iterator, then the sequence.
            for k in 0..written {
                ffi::Py_DECREF(*top.add(k));
            }
            ffi::Py_DECREF(it);
            ffi::Py_DECREF(seq);
            return error_at(base);
        }
        ffi::Py_DECREF(it);
        ffi::Py_DECREF(seq);
        base.add(total)
    }
}

// ---------------------------------------------------------------------------------------------
// with

/// BEFORE_WITH: replaces the context manager with its bound `__exit__` and pushes the result
/// of calling its `__enter__` (both looked up on the type).
pub unsafe extern "C" fn pg_before_with(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: one value on the stack and room for one more.
    unsafe {
        enter_context(
            sp,
            &STR_ENTER,
            &STR_EXIT,
            b"'%.200s' object does not support the context manager protocol\0",
            b"'%.200s' object does not support the context manager protocol (missed __exit__ method)\0",
        )
    }
}

// ---------------------------------------------------------------------------------------------
// match

/// MATCH_MAPPING: pushes whether the type of TOS is flagged as a mapping.
pub unsafe extern "C" fn pg_match_mapping(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: one value on the stack and room for one more.
    unsafe {
        let flags = (*ffi::Py_TYPE(peek(sp, 1))).tp_flags;
        put(sp, 0, new_bool(flags & ffi::Py_TPFLAGS_MAPPING != 0));
        sp.add(1)
    }
}

/// MATCH_SEQUENCE: pushes whether the type of TOS is flagged as a sequence (str, bytes and
/// bytearray are not).
pub unsafe extern "C" fn pg_match_sequence(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: one value on the stack and room for one more.
    unsafe {
        let flags = (*ffi::Py_TYPE(peek(sp, 1))).tp_flags;
        put(sp, 0, new_bool(flags & ffi::Py_TPFLAGS_SEQUENCE != 0));
        sp.add(1)
    }
}

/// ceval's `match_keys`: a tuple of `map`'s values for `keys`, None if a key is missing, or
/// null with an exception set.
unsafe fn match_keys(map: *mut PyObject, keys: *mut PyObject) -> *mut PyObject {
    // SAFETY: GIL held; `keys` is a tuple.
    unsafe {
        let nkeys = ffi::PyTuple_GET_SIZE(keys);
        if nkeys == 0 {
            return ffi::PyTuple_New(0);
        }
        let get_name = STR_GET.get();
        if get_name.is_null() {
            return null_mut();
        }
        let mut get = null_mut();
        let mut seen = null_mut();
        let mut dummy = null_mut();
        let mut values = null_mut();
        // map.get(key, dummy): one lookup, and no __missing__ (defaultdict) side effects.
        let meth_found = crate::cpython::_PyObject_GetMethod(map, get_name, &mut get);
        let ok = 'run: {
            if get.is_null() {
                break 'run false;
            }
            seen = ffi::PySet_New(null_mut());
            if seen.is_null() {
                break 'run false;
            }
            dummy = ffi::PyObject_CallNoArgs(std::ptr::addr_of_mut!(ffi::PyBaseObject_Type) as *mut PyObject);
            if dummy.is_null() {
                break 'run false;
            }
            values = ffi::PyTuple_New(nkeys);
            if values.is_null() {
                break 'run false;
            }
            for i in 0..nkeys {
                let key = ffi::PyTuple_GET_ITEM(keys, i);
                if ffi::PySet_Contains(seen, key) != 0 || ffi::PySet_Add(seen, key) != 0 {
                    if ffi::PyErr_Occurred().is_null() {
                        ffi::PyErr_Format(
                            ffi::PyExc_ValueError,
                            c(b"mapping pattern checks duplicate key (%R)\0"),
                            key,
                        );
                    }
                    break 'run false;
                }
                let mut args = [map, key, dummy];
                let value = if meth_found != 0 {
                    ffi::PyObject_Vectorcall(get, args.as_mut_ptr(), 3, null_mut())
                } else {
                    ffi::PyObject_Vectorcall(get, args.as_mut_ptr().add(1), 2, null_mut())
                };
                if value.is_null() {
                    break 'run false;
                }
                if value == dummy {
                    // A key is missing: no match.
                    ffi::Py_DECREF(value);
                    ffi::Py_DECREF(values);
                    let none = ffi::Py_None();
                    ffi::Py_INCREF(none);
                    values = none;
                    break;
                }
                ffi::PyTuple_SET_ITEM(values, i, value);
            }
            true
        };
        ffi::Py_XDECREF(get);
        ffi::Py_XDECREF(seen);
        ffi::Py_XDECREF(dummy);
        if !ok {
            ffi::Py_XDECREF(values);
            return null_mut();
        }
        values
    }
}

/// MATCH_KEYS: stack (subject, keys) -> (subject, keys, values or None).
pub unsafe extern "C" fn pg_match_keys(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: two values on the stack and room for one more.
    unsafe {
        let (subject, keys) = (peek(sp, 2), peek(sp, 1));
        if ffi::PyTuple_CheckExact(keys) == 0 {
            bad_operand(b"MATCH_KEYS keys are not a tuple\0");
            return error_at(sp);
        }
        let values = match_keys(subject, keys);
        if values.is_null() {
            return error_at(sp);
        }
        put(sp, 0, values);
        sp.add(1)
    }
}

/// ceval's `match_class_attr`: `getattr(subject, name)`, null without an exception if it is
/// missing, null with one on error (including a name used twice in the pattern).
unsafe fn match_class_attr(
    subject: *mut PyObject,
    ty: *mut PyObject,
    name: *mut PyObject,
    seen: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: GIL held; `ty` is a type, `seen` a set.
    unsafe {
        if ffi::PySet_Contains(seen, name) != 0 || ffi::PySet_Add(seen, name) != 0 {
            if ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_Format(
                    ffi::PyExc_TypeError,
                    c(b"%s() got multiple sub-patterns for attribute %R\0"),
                    (*(ty as *mut ffi::PyTypeObject)).tp_name,
                    name,
                );
            }
            return null_mut();
        }
        let attr = ffi::PyObject_GetAttr(subject, name);
        if attr.is_null() && ffi::PyErr_ExceptionMatches(ffi::PyExc_AttributeError) != 0 {
            ffi::PyErr_Clear();
        }
        attr
    }
}

/// ceval's `match_class`: the tuple of attributes for `nargs` positional sub-patterns (through
/// `__match_args__`) and the keyword names `kwargs`, or null (no match, or an exception set).
unsafe fn match_class(subject: *mut PyObject, ty: *mut PyObject, nargs: u32, kwargs: *mut PyObject) -> *mut PyObject {
    // SAFETY: GIL held; `kwargs` is a tuple.
    unsafe {
        if ffi::PyType_Check(ty) == 0 {
            ffi::PyErr_SetString(ffi::PyExc_TypeError, c(b"called match pattern must be a type\0"));
            return null_mut();
        }
        if ffi::PyObject_IsInstance(subject, ty) <= 0 {
            return null_mut();
        }
        let tp = ty as *mut ffi::PyTypeObject;
        let seen = ffi::PySet_New(null_mut());
        if seen.is_null() {
            return null_mut();
        }
        let attrs = ffi::PyList_New(0);
        if attrs.is_null() {
            ffi::Py_DECREF(seen);
            return null_mut();
        }
        let mut match_args: *mut PyObject = null_mut();
        let ok = 'run: {
            if nargs != 0 {
                let mut match_self = false;
                match_args = ffi::PyObject_GetAttrString(ty, c(b"__match_args__\0"));
                if !match_args.is_null() {
                    if ffi::PyTuple_CheckExact(match_args) == 0 {
                        ffi::PyErr_Format(
                            ffi::PyExc_TypeError,
                            c(b"%s.__match_args__ must be a tuple (got %s)\0"),
                            (*tp).tp_name,
                            type_name(match_args),
                        );
                        break 'run false;
                    }
                } else if ffi::PyErr_ExceptionMatches(ffi::PyExc_AttributeError) != 0 {
                    ffi::PyErr_Clear();
                    // MATCH_SELF counts only when the type has no __match_args__ at all.
                    match_args = ffi::PyTuple_New(0);
                    if match_args.is_null() {
                        break 'run false;
                    }
                    match_self = (*tp).tp_flags & TPFLAGS_MATCH_SELF != 0;
                } else {
                    break 'run false;
                }
                let allowed = if match_self { 1 } else { ffi::PyTuple_GET_SIZE(match_args) };
                if allowed < nargs as ffi::Py_ssize_t {
                    let plural = if allowed == 1 { c(b"\0") } else { c(b"s\0") };
                    ffi::PyErr_Format(
                        ffi::PyExc_TypeError,
                        c(b"%s() accepts %d positional sub-pattern%s (%d given)\0"),
                        (*tp).tp_name,
                        allowed as c_int,
                        plural,
                        nargs as c_int,
                    );
                    break 'run false;
                }
                if match_self {
                    // The subject itself is the one positional value (its append error, as in
                    // ceval, surfaces later if at all).
                    ffi::PyList_Append(attrs, subject);
                } else {
                    for i in 0..nargs as ffi::Py_ssize_t {
                        let name = ffi::PyTuple_GET_ITEM(match_args, i);
                        if ffi::PyUnicode_CheckExact(name) == 0 {
                            ffi::PyErr_Format(
                                ffi::PyExc_TypeError,
                                c(b"__match_args__ elements must be strings (got %s)\0"),
                                type_name(name),
                            );
                            break 'run false;
                        }
                        let attr = match_class_attr(subject, ty, name, seen);
                        if attr.is_null() {
                            break 'run false;
                        }
                        ffi::PyList_Append(attrs, attr);
                        ffi::Py_DECREF(attr);
                    }
                }
                ffi::Py_DECREF(match_args);
                match_args = null_mut();
            }
            for i in 0..ffi::PyTuple_GET_SIZE(kwargs) {
                let name = ffi::PyTuple_GET_ITEM(kwargs, i);
                let attr = match_class_attr(subject, ty, name, seen);
                if attr.is_null() {
                    break 'run false;
                }
                ffi::PyList_Append(attrs, attr);
                ffi::Py_DECREF(attr);
            }
            true
        };
        ffi::Py_XDECREF(match_args);
        ffi::Py_DECREF(seen);
        if !ok {
            ffi::Py_DECREF(attrs);
            return null_mut();
        }
        let t = ffi::PyList_AsTuple(attrs);
        ffi::Py_DECREF(attrs);
        t
    }
}

/// MATCH_CLASS: stack (subject, type, names) -> (attributes tuple or None); on error the
/// subject stays on the stack.
pub unsafe extern "C" fn pg_match_class(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: three values on the stack.
    unsafe {
        let (subject, ty, names) = (peek(sp, 3), peek(sp, 2), peek(sp, 1));
        let sp = sp.sub(2);
        let attrs = if ffi::PyTuple_CheckExact(names) == 0 {
            bad_operand(b"MATCH_CLASS keyword names are not a tuple\0");
            null_mut()
        } else {
            match_class(subject, ty, oparg, names)
        };
        ffi::Py_DECREF(names);
        ffi::Py_DECREF(ty);
        if !attrs.is_null() {
            put(sp, 1, attrs);
        } else if !ffi::PyErr_Occurred().is_null() {
            return error_at(sp);
        } else {
            let none = ffi::Py_None();
            ffi::Py_INCREF(none);
            put(sp, 1, none);
        }
        ffi::Py_DECREF(subject);
        sp
    }
}
