//! Opcode semantics for the names family, written from `Python/ceval.c` (3.11) against the public C
//! API, with the helper conventions of `super::ops` (uniform signature, tagged error return,
//! stack left as ceval's error path leaves it).
//!
//! The family: LOAD_NAME, STORE_NAME, DELETE_NAME, LOAD_CLASSDEREF, LOAD_BUILD_CLASS,
//! SETUP_ANNOTATIONS, IMPORT_NAME, IMPORT_FROM, IMPORT_STAR, PRINT_EXPR. They work on the
//! frame's `f_locals` (module and class namespaces, possibly any mapping) and on imports.
//!
//! ceval's static helpers `import_name`, `import_from`, `import_all_from` and
//! `format_exc_unbound` are not exported from libpython; their logic is rewritten here against
//! exported functions. IMPORT_STAR's fast-locals synchronisation (`_PyFrame_FastToLocalsWithError`
//! / `_PyFrame_LocalsToFast`, also unexported) reduces to "create `f_locals` if missing" for a code
//! object without fast locals; the compiler refuses IMPORT_STAR in any other code object (Python's
//! compiler only emits it at module level, where there are none).

use super::ops::{format_exc_check_arg, unbound_deref, NAME_ERROR_MSG};
use super::support::{local_name, local_slot, name_at, peek, put, Interned};
use super::{error_at, Sp};
use crate::cpython::layout::INTERP_IMPORT_FUNC_OFFSET;
use crate::cpython::{self, ffi, CellObject, InterpreterFrame, ThreadState};
use ffi::PyObject;
use std::os::raw::{c_char, c_int};
use std::ptr::null_mut;

// Exported from libpython3.11 (checked with `nm -D --defined-only`), not declared by pyo3-ffi.
extern "C" {
    /// 1 and a new reference when found, 0 and null when the attribute is missing (no exception),
    /// -1 on error.
    fn _PyObject_LookupAttr(obj: *mut PyObject, name: *mut PyObject, result: *mut *mut PyObject) -> c_int;
    /// A borrowed reference to `sys.<name>`, or null (no exception set); the pending exception,
    /// if any, is preserved.
    fn _PySys_GetAttr(tstate: *mut ffi::PyThreadState, name: *mut PyObject) -> *mut PyObject;
    /// Whether a module spec says the module is still initializing (errors swallowed).
    fn _PyModuleSpec_IsInitializing(spec: *mut PyObject) -> c_int;
}

// ---------------------------------------------------------------------------------------------
// Interned identifiers (ceval's `&_Py_ID(...)`), created once and kept for the process.

static ID_BUILD_CLASS: Interned = Interned::new(b"__build_class__\0");
static ID_ANNOTATIONS: Interned = Interned::new(b"__annotations__\0");
static ID_IMPORT: Interned = Interned::new(b"__import__\0");
static ID_NAME: Interned = Interned::new(b"__name__\0");
static ID_SPEC: Interned = Interned::new(b"__spec__\0");
static ID_ALL: Interned = Interned::new(b"__all__\0");
static ID_DICT: Interned = Interned::new(b"__dict__\0");
static ID_DISPLAYHOOK: Interned = Interned::new(b"displayhook\0");

// ---------------------------------------------------------------------------------------------
// Small accessors. All require the GIL and a live frame.

/// Raises `SystemError(format % name)` (ceval's "no locals ..." errors; `format` has one %R).
unsafe fn no_locals(format: &[u8], name: *mut PyObject) {
    // SAFETY: GIL held; `format` is NUL-terminated with one %R; `name` is a live object.
    unsafe {
        ffi::PyErr_Format(ffi::PyExc_SystemError, format.as_ptr() as *const c_char, name);
    }
}

/// `locals[name]` with ceval's dict fast path: a new reference, or null with no exception when
/// the name is missing, or null with an exception on error (a mapping's KeyError means missing).
unsafe fn lookup_locals(locals: *mut PyObject, name: *mut PyObject) -> *mut PyObject {
    // SAFETY: GIL held; live objects.
    unsafe {
        if ffi::PyDict_CheckExact(locals) != 0 {
            let v = ffi::PyDict_GetItemWithError(locals, name);
            if !v.is_null() {
                ffi::Py_INCREF(v);
            }
            v
        } else {
            let v = ffi::PyObject_GetItem(locals, name);
            if v.is_null() && ffi::PyErr_ExceptionMatches(ffi::PyExc_KeyError) != 0 {
                ffi::PyErr_Clear();
            }
            v
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Names in f_locals

/// LOAD_NAME: locals (dict fast path or mapping), then globals, then builtins.
pub unsafe extern "C" fn pg_load_name(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: GIL held, live frame, name index validated, room for one value.
    unsafe {
        let name = name_at(frame, oparg);
        let locals = (*frame).f_locals;
        if locals.is_null() {
            no_locals(b"no locals when loading %R\0", name);
            return error_at(sp);
        }
        let mut v = lookup_locals(locals, name);
        if v.is_null() {
            if !ffi::PyErr_Occurred().is_null() {
                return error_at(sp);
            }
            v = ffi::PyDict_GetItemWithError((*frame).f_globals, name);
            if !v.is_null() {
                ffi::Py_INCREF(v);
            } else if !ffi::PyErr_Occurred().is_null() {
                return error_at(sp);
            } else {
                let builtins = (*frame).f_builtins;
                if ffi::PyDict_CheckExact(builtins) != 0 {
                    v = ffi::PyDict_GetItemWithError(builtins, name);
                    if v.is_null() {
                        if ffi::PyErr_Occurred().is_null() {
                            format_exc_check_arg(ffi::PyExc_NameError, NAME_ERROR_MSG, name);
                        }
                        return error_at(sp);
                    }
                    ffi::Py_INCREF(v);
                } else {
                    v = ffi::PyObject_GetItem(builtins, name);
                    if v.is_null() {
                        if ffi::PyErr_ExceptionMatches(ffi::PyExc_KeyError) != 0 {
                            format_exc_check_arg(ffi::PyExc_NameError, NAME_ERROR_MSG, name);
                        }
                        return error_at(sp);
                    }
                }
            }
        }
        put(sp, 0, v);
        sp.add(1)
    }
}

/// STORE_NAME: `locals[name] = TOS`.
pub unsafe extern "C" fn pg_store_name(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: GIL held, live frame, name index validated, one value on the stack.
    unsafe {
        let name = name_at(frame, oparg);
        let v = peek(sp, 1);
        let ns = (*frame).f_locals;
        if ns.is_null() {
            no_locals(b"no locals found when storing %R\0", name);
            ffi::Py_DECREF(v);
            return error_at(sp.sub(1));
        }
        let err = if ffi::PyDict_CheckExact(ns) != 0 {
            ffi::PyDict_SetItem(ns, name, v)
        } else {
            ffi::PyObject_SetItem(ns, name, v)
        };
        ffi::Py_DECREF(v);
        if err != 0 {
            error_at(sp.sub(1))
        } else {
            sp.sub(1)
        }
    }
}

/// DELETE_NAME: `del locals[name]`; any failure becomes NameError (as ceval does).
pub unsafe extern "C" fn pg_delete_name(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: GIL held, live frame, name index validated.
    unsafe {
        let name = name_at(frame, oparg);
        let ns = (*frame).f_locals;
        if ns.is_null() {
            no_locals(b"no locals when deleting %R\0", name);
            return error_at(sp);
        }
        if ffi::PyObject_DelItem(ns, name) != 0 {
            format_exc_check_arg(ffi::PyExc_NameError, NAME_ERROR_MSG, name);
            return error_at(sp);
        }
        sp
    }
}

/// LOAD_CLASSDEREF: the class namespace first, then the cell `oparg`.
pub unsafe extern "C" fn pg_load_classderef(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: GIL held, live frame, `oparg < co_nlocalsplus` validated, room for one value.
    unsafe {
        let name = local_name(frame, oparg);
        let locals = (*frame).f_locals;
        if locals.is_null() {
            // ceval only asserts this; never true for code the compiler emits.
            no_locals(b"no locals when loading %R\0", name);
            return error_at(sp);
        }
        let mut value = lookup_locals(locals, name);
        if value.is_null() {
            if !ffi::PyErr_Occurred().is_null() {
                return error_at(sp);
            }
            let cell = *local_slot(frame, oparg);
            // ceval trusts the slot to hold a cell; check it so malformed code cannot crash us.
            if cell.is_null() || ffi::PyCell_Check(cell) == 0 {
                ffi::PyErr_SetString(ffi::PyExc_SystemError, b"LOAD_CLASSDEREF of a non-cell\0".as_ptr() as *const c_char);
                return error_at(sp);
            }
            value = (*(cell as *mut CellObject)).ob_ref;
            if value.is_null() {
                unbound_deref(frame, oparg);
                return error_at(sp);
            }
            ffi::Py_INCREF(value);
        }
        put(sp, 0, value);
        sp.add(1)
    }
}

/// LOAD_BUILD_CLASS: pushes `builtins.__build_class__`.
pub unsafe extern "C" fn pg_load_build_class(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: GIL held, live frame, room for one value.
    unsafe {
        let id = ID_BUILD_CLASS.get();
        if id.is_null() {
            return error_at(sp);
        }
        let builtins = (*frame).f_builtins;
        let bc;
        if ffi::PyDict_CheckExact(builtins) != 0 {
            let found = ffi::PyDict_GetItemWithError(builtins, id);
            if found.is_null() {
                if ffi::PyErr_Occurred().is_null() {
                    ffi::PyErr_SetString(ffi::PyExc_NameError, b"__build_class__ not found\0".as_ptr() as *const c_char);
                }
                return error_at(sp);
            }
            ffi::Py_INCREF(found);
            bc = found;
        } else {
            bc = ffi::PyObject_GetItem(builtins, id);
            if bc.is_null() {
                if ffi::PyErr_ExceptionMatches(ffi::PyExc_KeyError) != 0 {
                    ffi::PyErr_SetString(ffi::PyExc_NameError, b"__build_class__ not found\0".as_ptr() as *const c_char);
                }
                return error_at(sp);
            }
        }
        put(sp, 0, bc);
        sp.add(1)
    }
}

/// SETUP_ANNOTATIONS: makes sure `locals['__annotations__']` exists (a new dict if not).
pub unsafe extern "C" fn pg_setup_annotations(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: GIL held, live frame.
    unsafe {
        let locals = (*frame).f_locals;
        if locals.is_null() {
            ffi::PyErr_SetString(
                ffi::PyExc_SystemError,
                b"no locals found when setting up annotations\0".as_ptr() as *const c_char,
            );
            return error_at(sp);
        }
        let id = ID_ANNOTATIONS.get();
        if id.is_null() {
            return error_at(sp);
        }
        if ffi::PyDict_CheckExact(locals) != 0 {
            let ann = ffi::PyDict_GetItemWithError(locals, id);
            if ann.is_null() {
                if !ffi::PyErr_Occurred().is_null() {
                    return error_at(sp);
                }
                let ann = ffi::PyDict_New();
                if ann.is_null() {
                    return error_at(sp);
                }
                let err = ffi::PyDict_SetItem(locals, id, ann);
                ffi::Py_DECREF(ann);
                if err != 0 {
                    return error_at(sp);
                }
            }
        } else {
            let ann = ffi::PyObject_GetItem(locals, id);
            if ann.is_null() {
                if ffi::PyErr_ExceptionMatches(ffi::PyExc_KeyError) == 0 {
                    return error_at(sp);
                }
                ffi::PyErr_Clear();
                let ann = ffi::PyDict_New();
                if ann.is_null() {
                    return error_at(sp);
                }
                let err = ffi::PyObject_SetItem(locals, id, ann);
                ffi::Py_DECREF(ann);
                if err != 0 {
                    return error_at(sp);
                }
            } else {
                ffi::Py_DECREF(ann);
            }
        }
        sp
    }
}

// ---------------------------------------------------------------------------------------------
// Imports

/// IMPORT_NAME: stack (level, fromlist) -> module. Calls `__import__` from the frame's builtins
/// with (name, globals, locals or None, fromlist, level), except that, as in ceval, when that is
/// the interpreter's original `builtins.__import__` it calls `PyImport_ImportModuleLevelObject`
/// directly. The result is the same; the recursion depth is not: calling the builtin counts a
/// recursion level, the direct call does not, and code near the limit observes the difference.
pub unsafe extern "C" fn pg_import_name(t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: GIL held, live frame, name index validated, two values on the stack.
    unsafe {
        let name = name_at(frame, oparg);
        let fromlist = peek(sp, 1);
        let level = peek(sp, 2);
        let res = import_name(t, frame, name, fromlist, level);
        ffi::Py_DECREF(level);
        ffi::Py_DECREF(fromlist);
        put(sp, 2, res);
        if res.is_null() {
            error_at(sp.sub(1))
        } else {
            sp.sub(1)
        }
    }
}

unsafe fn import_name(
    t: *mut ThreadState,
    frame: *mut InterpreterFrame,
    name: *mut PyObject,
    fromlist: *mut PyObject,
    level: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: GIL held; live thread state, frame and objects; `import_func` is a field of the
    // interpreter state at a checked offset (layout.rs).
    unsafe {
        let id = ID_IMPORT.get();
        if id.is_null() {
            return null_mut();
        }
        // ceval reads the builtins as a dict without checking; PyDict_GetItemWithError raises
        // SystemError instead of misbehaving when they are some other mapping.
        let import_func = ffi::PyDict_GetItemWithError((*frame).f_builtins, id);
        if import_func.is_null() {
            if ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_SetString(ffi::PyExc_ImportError, b"__import__ not found\0".as_ptr() as *const c_char);
            }
            return null_mut();
        }
        let locals = (*frame).f_locals;
        let locals = if locals.is_null() { ffi::Py_None() } else { locals };
        let original = *(((*t).interp as *const u8).add(INTERP_IMPORT_FUNC_OFFSET) as *const *mut PyObject);
        if import_func == original {
            let ilevel = cpython::_PyLong_AsInt(level);
            if ilevel == -1 && !ffi::PyErr_Occurred().is_null() {
                return null_mut();
            }
            return ffi::PyImport_ImportModuleLevelObject(name, (*frame).f_globals, locals, fromlist, ilevel);
        }
        ffi::Py_INCREF(import_func);
        let mut args: [*mut PyObject; 5] = [name, (*frame).f_globals, locals, fromlist, level];
        let res = ffi::PyObject_Vectorcall(import_func, args.as_mut_ptr(), 5, null_mut());
        ffi::Py_DECREF(import_func);
        res
    }
}

/// IMPORT_FROM: TOS is the module (kept); pushes `module.name`, falling back to
/// `sys.modules[module.__name__ + '.' + name]`. On error ceval pushes NULL; so do we.
pub unsafe extern "C" fn pg_import_from(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: GIL held, live frame, name index validated, one value on the stack and room for one.
    unsafe {
        let name = name_at(frame, oparg);
        let from = peek(sp, 1);
        let res = import_from(from, name);
        put(sp, 0, res);
        if res.is_null() {
            error_at(sp.add(1))
        } else {
            sp.add(1)
        }
    }
}

unsafe fn import_from(v: *mut PyObject, name: *mut PyObject) -> *mut PyObject {
    // SAFETY: GIL held; live objects. Mirrors ceval's `import_from` step by step, including its
    // order of calls while an exception may be pending.
    unsafe {
        let mut x = null_mut();
        if _PyObject_LookupAttr(v, name, &mut x) != 0 {
            return x; // found, or an error
        }
        // The attribute is missing: a circular relative import may have left the submodule only
        // in sys.modules (bpo-17636).
        let mut pkgname = null_mut();
        'fallback: {
            let id_name = ID_NAME.get();
            if id_name.is_null() {
                break 'fallback;
            }
            pkgname = ffi::PyObject_GetAttr(v, id_name);
            if pkgname.is_null() {
                break 'fallback;
            }
            if ffi::PyUnicode_Check(pkgname) == 0 {
                ffi::Py_DECREF(pkgname);
                pkgname = null_mut();
                break 'fallback;
            }
            let fullmodname = ffi::PyUnicode_FromFormat(b"%U.%U\0".as_ptr() as *const c_char, pkgname, name);
            if fullmodname.is_null() {
                ffi::Py_DECREF(pkgname);
                return null_mut();
            }
            let x = ffi::PyImport_GetModule(fullmodname);
            ffi::Py_DECREF(fullmodname);
            if x.is_null() && ffi::PyErr_Occurred().is_null() {
                break 'fallback;
            }
            ffi::Py_DECREF(pkgname);
            return x;
        }
        // ImportError.
        let pkgpath = ffi::PyModule_GetFilenameObject(v);
        let pkgname_or_unknown = if pkgname.is_null() {
            let s = ffi::PyUnicode_FromString(b"<unknown module name>\0".as_ptr() as *const c_char);
            if s.is_null() {
                ffi::Py_XDECREF(pkgpath);
                return null_mut();
            }
            s
        } else {
            pkgname
        };
        let errmsg;
        if pkgpath.is_null() || ffi::PyUnicode_Check(pkgpath) == 0 {
            ffi::PyErr_Clear();
            errmsg = ffi::PyUnicode_FromFormat(
                b"cannot import name %R from %R (unknown location)\0".as_ptr() as *const c_char,
                name,
                pkgname_or_unknown,
            );
            // PyErr_SetImportError checks errmsg and pkgname for null.
            ffi::PyErr_SetImportError(errmsg, pkgname, null_mut());
        } else {
            let id_spec = ID_SPEC.get();
            let spec = if id_spec.is_null() { null_mut() } else { ffi::PyObject_GetAttr(v, id_spec) };
            let fmt: &[u8] = if _PyModuleSpec_IsInitializing(spec) != 0 {
                b"cannot import name %R from partially initialized module %R (most likely due to a circular import) (%S)\0"
            } else {
                b"cannot import name %R from %R (%S)\0"
            };
            ffi::Py_XDECREF(spec);
            errmsg = ffi::PyUnicode_FromFormat(fmt.as_ptr() as *const c_char, name, pkgname_or_unknown, pkgpath);
            ffi::PyErr_SetImportError(errmsg, pkgname, pkgpath);
        }
        ffi::Py_XDECREF(errmsg);
        ffi::Py_XDECREF(pkgname_or_unknown);
        ffi::Py_XDECREF(pkgpath);
        null_mut()
    }
}

/// IMPORT_STAR: pops the module and copies its public names into `f_locals`.
///
/// ceval first merges fast locals into `f_locals` (creating it if missing) and afterwards copies
/// them back; the compiler only accepts IMPORT_STAR in code objects without fast locals
/// (`co_nlocalsplus == 0`, true of all module-level code), where both steps reduce to creating
/// `f_locals` when it is missing.
pub unsafe extern "C" fn pg_import_star(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: GIL held, live frame without fast locals (checked by the compiler), one value on
    // the stack.
    unsafe {
        let from = peek(sp, 1);
        if (*frame).f_locals.is_null() {
            let d = ffi::PyDict_New();
            if d.is_null() {
                ffi::Py_DECREF(from);
                return error_at(sp.sub(1));
            }
            // The frame owns f_locals (released when the frame is cleared).
            (*frame).f_locals = d;
        }
        let locals = (*frame).f_locals;
        let err = import_all_from(locals, from);
        ffi::Py_DECREF(from);
        if err != 0 {
            error_at(sp.sub(1))
        } else {
            sp.sub(1)
        }
    }
}

unsafe fn import_all_from(locals: *mut PyObject, v: *mut PyObject) -> c_int {
    // SAFETY: GIL held; live objects. Mirrors ceval's `import_all_from`.
    unsafe {
        let id_all = ID_ALL.get();
        if id_all.is_null() {
            return -1;
        }
        let mut all = null_mut();
        if _PyObject_LookupAttr(v, id_all, &mut all) < 0 {
            return -1;
        }
        let mut skip_leading_underscores = false;
        if all.is_null() {
            let id_dict = ID_DICT.get();
            if id_dict.is_null() {
                return -1;
            }
            let mut dict = null_mut();
            if _PyObject_LookupAttr(v, id_dict, &mut dict) < 0 {
                return -1;
            }
            if dict.is_null() {
                ffi::PyErr_SetString(
                    ffi::PyExc_ImportError,
                    b"from-import-* object has no __dict__ and no __all__\0".as_ptr() as *const c_char,
                );
                return -1;
            }
            all = ffi::PyMapping_Keys(dict);
            ffi::Py_DECREF(dict);
            if all.is_null() {
                return -1;
            }
            skip_leading_underscores = true;
        }
        let mut err: c_int = 0;
        let mut pos: ffi::Py_ssize_t = 0;
        loop {
            let name = ffi::PySequence_GetItem(all, pos);
            pos += 1;
            if name.is_null() {
                if ffi::PyErr_ExceptionMatches(ffi::PyExc_IndexError) == 0 {
                    err = -1;
                } else {
                    ffi::PyErr_Clear();
                }
                break;
            }
            if ffi::PyUnicode_Check(name) == 0 {
                err = -1;
                let id_name = ID_NAME.get();
                let modname = if id_name.is_null() { null_mut() } else { ffi::PyObject_GetAttr(v, id_name) };
                if modname.is_null() {
                    ffi::Py_DECREF(name);
                    break;
                }
                if ffi::PyUnicode_Check(modname) == 0 {
                    ffi::PyErr_Format(
                        ffi::PyExc_TypeError,
                        b"module __name__ must be a string, not %.100s\0".as_ptr() as *const c_char,
                        (*ffi::Py_TYPE(modname)).tp_name,
                    );
                } else {
                    let (what, whence): (&[u8], &[u8]) = if skip_leading_underscores {
                        (b"Key\0", b"__dict__\0")
                    } else {
                        (b"Item\0", b"__all__\0")
                    };
                    ffi::PyErr_Format(
                        ffi::PyExc_TypeError,
                        b"%s in %U.%s must be str, not %.100s\0".as_ptr() as *const c_char,
                        what.as_ptr() as *const c_char,
                        modname,
                        whence.as_ptr() as *const c_char,
                        (*ffi::Py_TYPE(name)).tp_name,
                    );
                }
                ffi::Py_DECREF(modname);
                ffi::Py_DECREF(name);
                break;
            }
            if skip_leading_underscores {
                // ceval reads code point 0 directly (the terminating NUL of an empty string).
                let len = ffi::PyUnicode_GetLength(name);
                if len < 0 {
                    ffi::Py_DECREF(name);
                    err = -1;
                    break;
                }
                if len > 0 && ffi::PyUnicode_ReadChar(name, 0) == '_' as ffi::Py_UCS4 {
                    ffi::Py_DECREF(name);
                    continue;
                }
            }
            let value = ffi::PyObject_GetAttr(v, name);
            if value.is_null() {
                err = -1;
            } else if ffi::PyDict_CheckExact(locals) != 0 {
                err = ffi::PyDict_SetItem(locals, name, value);
            } else {
                err = ffi::PyObject_SetItem(locals, name, value);
            }
            ffi::Py_DECREF(name);
            ffi::Py_XDECREF(value);
            if err != 0 {
                break;
            }
        }
        ffi::Py_DECREF(all);
        err
    }
}

// ---------------------------------------------------------------------------------------------
// Interactive mode

/// PRINT_EXPR: pops a value and passes it to `sys.displayhook`.
pub unsafe extern "C" fn pg_print_expr(tstate: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: GIL held, one value on the stack; `tstate` is the current thread state.
    unsafe {
        let value = peek(sp, 1);
        let id = ID_DISPLAYHOOK.get();
        let hook = if id.is_null() { null_mut() } else { _PySys_GetAttr(tstate as *mut ffi::PyThreadState, id) };
        if hook.is_null() {
            if !id.is_null() {
                ffi::PyErr_SetString(ffi::PyExc_RuntimeError, b"lost sys.displayhook\0".as_ptr() as *const c_char);
            }
            ffi::Py_DECREF(value);
            return error_at(sp.sub(1));
        }
        let res = ffi::PyObject_CallOneArg(hook, value);
        ffi::Py_DECREF(value);
        if res.is_null() {
            return error_at(sp.sub(1));
        }
        ffi::Py_DECREF(res);
        sp.sub(1)
    }
}
