//! Opcode semantics for compiled code, written from `Python/ceval.c` (3.11) against the public C
//! API. Each helper has the shape of [`OpHelper`]: it reads its operands from the value stack
//! below `sp`, writes its results, and returns the new stack pointer, tagged with [`error_at`]
//! when it raised. On error the stack is left exactly as ceval's `goto error` leaves it (consumed
//! operands released), so the interpreter can unwind it.
//!
//! Bytecode arguments (`oparg`) were validated by the compiler against the code object (constant,
//! name and local indices in range), so helpers index without further checks.

use super::direct_call::{try_direct_call, DirectCall};
use super::precall_forms::{precall_guard, precall_specialize, run_c_form, CallShape, PrecallForm};
use super::support::{code, local_name, local_slot, name_at, new_bool, peek, put};
use super::specialize::{Site, ADAPTIVE};
use super::{error_at, Sp};
use crate::semantics;
use crate::opcodes::{cache_entries, op};
use crate::cpython::{
    self, ffi, CellObject, FunctionObject, InterpreterFrame, MethodObject, ThreadState,
};
use ffi::PyObject;
use std::os::raw::{c_char, c_int};

/// The uniform helper signature: `(tstate, frame, sp, oparg) -> sp` (tagged on error).
pub type OpHelper = unsafe extern "C" fn(*mut ThreadState, *mut InterpreterFrame, Sp, u32) -> Sp;

/// The signature of helpers of instructions with a specialization site: [`OpHelper`]'s, plus
/// the instruction's own [`Site`].
pub type SiteHelper = unsafe extern "C" fn(*mut ThreadState, *mut InterpreterFrame, Sp, u32, *const Site) -> Sp;


pub(crate) use crate::semantics::errors::{format_exc_check_arg, NAME_ERROR_MSG};
pub(crate) const UNBOUNDLOCAL_ERROR_MSG: &[u8] = b"cannot access local variable '%s' where it is not associated with a value\0";
pub(crate) const UNBOUNDFREE_ERROR_MSG: &[u8] =
    b"cannot access free variable '%s' where it is not associated with a value in enclosing scope\0";

// ---------------------------------------------------------------------------------------------
// Small accessors. All require the GIL and a live frame.

// ---------------------------------------------------------------------------------------------
// Locals and cells

/// Raises UnboundLocalError for local `oparg` (LOAD_FAST/LOAD_CLOSURE/DELETE_FAST of an unset local).
pub unsafe extern "C" fn pg_unbound_local(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: GIL held, live frame.
    unsafe { format_exc_check_arg(ffi::PyExc_UnboundLocalError, UNBOUNDLOCAL_ERROR_MSG, local_name(frame, oparg)) };
    error_at(sp)
}

/// DELETE_FAST
pub unsafe extern "C" fn pg_delete_fast(t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: GIL held, live frame, index validated.
    unsafe {
        let slot = local_slot(frame, oparg);
        let v = *slot;
        if v.is_null() {
            return pg_unbound_local(t, frame, sp, oparg);
        }
        *slot = std::ptr::null_mut();
        ffi::Py_DECREF(v);
        sp
    }
}

/// Raises the error of a free or cell variable read before assignment (ceval's
/// `format_exc_unbound`).
pub(crate) unsafe fn unbound_deref(frame: *mut InterpreterFrame, oparg: u32) {
    // SAFETY: GIL held, live frame.
    unsafe {
        if !ffi::PyErr_Occurred().is_null() {
            return;
        }
        let co = code(frame);
        let name = local_name(frame, oparg);
        // Cells of the function's own variables are "local"; the rest are free variables.
        if (oparg as i32) < (*co).co_nlocalsplus - (*co).co_nfreevars {
            format_exc_check_arg(ffi::PyExc_UnboundLocalError, UNBOUNDLOCAL_ERROR_MSG, name);
        } else {
            format_exc_check_arg(ffi::PyExc_NameError, UNBOUNDFREE_ERROR_MSG, name);
        }
    }
}

/// MAKE_CELL: wraps local `oparg` (possibly unset) in a new cell.
pub unsafe extern "C" fn pg_make_cell(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: GIL held, live frame.
    unsafe {
        let slot = local_slot(frame, oparg);
        let initial = *slot;
        let cell = ffi::PyCell_New(initial);
        if cell.is_null() {
            return error_at(sp);
        }
        ffi::Py_XDECREF(initial);
        *slot = cell;
        sp
    }
}

/// COPY_FREE_VARS: copies the function's closure cells into the last `oparg` locals.
pub unsafe extern "C" fn pg_copy_free_vars(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: GIL held, live frame whose function has a closure of `oparg` cells (checked by
    // the compiler against co_nfreevars).
    unsafe {
        let closure = ffi::PyFunction_GetClosure((*frame).f_func);
        let co = code(frame);
        let offset = ((*co).co_nlocals + (*co).co_nplaincellvars) as u32;
        for i in 0..oparg {
            let o = ffi::PyTuple_GET_ITEM(closure, i as ffi::Py_ssize_t);
            ffi::Py_INCREF(o);
            *local_slot(frame, offset + i) = o;
        }
        sp
    }
}

/// LOAD_DEREF
pub unsafe extern "C" fn pg_load_deref(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: GIL held; local `oparg` is a cell or free variable (the compiler checked its kind in
    // co_localspluskinds) and holds a cell once MAKE_CELL/COPY_FREE_VARS ran, as ceval assumes.
    unsafe {
        let cell = *local_slot(frame, oparg);
        let v = (*(cell as *mut CellObject)).ob_ref;
        if v.is_null() {
            unbound_deref(frame, oparg);
            return error_at(sp);
        }
        ffi::Py_INCREF(v);
        put(sp, 0, v);
        sp.add(1)
    }
}

/// STORE_DEREF
pub unsafe extern "C" fn pg_store_deref(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: as for `pg_load_deref`; one value on the stack.
    unsafe {
        let v = peek(sp, 1);
        let cell = *local_slot(frame, oparg);
        let old = (*(cell as *mut CellObject)).ob_ref;
        (*(cell as *mut CellObject)).ob_ref = v;
        ffi::Py_XDECREF(old);
        sp.sub(1)
    }
}

/// DELETE_DEREF
pub unsafe extern "C" fn pg_delete_deref(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: as for `pg_load_deref`.
    unsafe {
        let cell = *local_slot(frame, oparg);
        let old = (*(cell as *mut CellObject)).ob_ref;
        if old.is_null() {
            unbound_deref(frame, oparg);
            return error_at(sp);
        }
        (*(cell as *mut CellObject)).ob_ref = std::ptr::null_mut();
        ffi::Py_DECREF(old);
        sp
    }
}

// ---------------------------------------------------------------------------------------------
// Operators

/// Replaces the two top values with `res` (releasing them); error if `res` is null.
#[inline(always)]
unsafe fn binary_result(sp: Sp, lhs: *mut PyObject, rhs: *mut PyObject, res: *mut PyObject) -> Sp {
    // SAFETY: two owned values on the stack.
    unsafe {
        ffi::Py_DECREF(lhs);
        ffi::Py_DECREF(rhs);
        put(sp, 2, res);
        if res.is_null() {
            error_at(sp.sub(1))
        } else {
            sp.sub(1)
        }
    }
}

/// BINARY_OP
pub unsafe extern "C" fn pg_binary_op(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: two values on the stack; oparg < 26 checked by the compiler.
    unsafe {
        let (lhs, rhs) = (peek(sp, 2), peek(sp, 1));
        let res = semantics::operators::binary_op(oparg, lhs, rhs);
        binary_result(sp, lhs, rhs, res)
    }
}

/// COMPARE_OP
pub unsafe extern "C" fn pg_compare_op(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: two values on the stack; oparg <= Py_GE checked by the compiler.
    unsafe {
        let (lhs, rhs) = (peek(sp, 2), peek(sp, 1));
        let res = semantics::operators::compare_op(oparg as c_int, lhs, rhs);
        binary_result(sp, lhs, rhs, res)
    }
}

/// COMPARE_OP_FLOAT_JUMP, COMPARE_OP_INT_JUMP and COMPARE_OP_STR_JUMP.
pub const COMPARE_FLOAT: u8 = 1;
pub const COMPARE_INT: u8 = 2;
pub const COMPARE_STR: u8 = 3;

/// COMPARE_OP followed by a conditional jump (POP_JUMP_{FORWARD,BACKWARD}_IF_{TRUE,FALSE} with no
/// EXTENDED_ARG), at `site`. Warm ceval code runs COMPARE_OP_{INT,FLOAT,STR}_JUMP there, which
/// compare without `PyObject_RichCompare`, so they count no recursion level ("in comparison"),
/// and a comparison at the recursion limit succeeds where the generic one raises RecursionError:
/// the site replays which form runs, and that form compares directly. The bool it pushes is
/// consumed by the jump, as the combined instruction would.
pub unsafe extern "C" fn pg_compare_op_jump(
    t: *mut ThreadState,
    frame: *mut InterpreterFrame,
    sp: Sp,
    oparg: u32,
    site: *const Site,
) -> Sp {
    // SAFETY: two values on the stack; oparg <= Py_GE checked by the compiler; `site` is this
    // instruction's own, owned by the compiled code.
    unsafe {
        let (lhs, rhs) = (peek(sp, 2), peek(sp, 1));
        let site = &*site;
        site.cache.miss(lhs, rhs);
        let op = oparg as c_int;
        if site.is_warm() {
            let form = site.execute(|_| compare_specialize(lhs, rhs, op), |_, form| compare_guard(form, lhs, rhs));
            if form != ADAPTIVE {
                if let Some(truth) = semantics::operators::compare_specialized(lhs, rhs, op) {
                    return binary_result(sp, lhs, rhs, new_bool(truth));
                }
            }
        }
        pg_compare_op(t, frame, sp, oparg)
    }
}

/// `_Py_Specialize_CompareOp` for a compare followed by a conditional jump.
unsafe fn compare_specialize(lhs: *mut PyObject, rhs: *mut PyObject, op: c_int) -> u8 {
    // SAFETY: GIL held; live objects; accessors after the exact-type checks.
    unsafe {
        let tp = ffi::Py_TYPE(lhs);
        if tp != ffi::Py_TYPE(rhs) {
            ADAPTIVE
        } else if tp == std::ptr::addr_of_mut!(ffi::PyFloat_Type) {
            COMPARE_FLOAT
        } else if tp == std::ptr::addr_of_mut!(ffi::PyLong_Type) {
            let small = ffi::Py_SIZE(lhs).unsigned_abs() <= 1 && ffi::Py_SIZE(rhs).unsigned_abs() <= 1;
            if small { COMPARE_INT } else { ADAPTIVE }
        } else if tp == std::ptr::addr_of_mut!(ffi::PyUnicode_Type) && (op == ffi::Py_EQ || op == ffi::Py_NE) {
            COMPARE_STR
        } else {
            ADAPTIVE
        }
    }
}

/// The DEOPT_IF checks of the combined compare-and-jump forms.
unsafe fn compare_guard(form: u8, lhs: *mut PyObject, rhs: *mut PyObject) -> bool {
    // SAFETY: as for `compare_specialize`.
    unsafe {
        match form {
            COMPARE_FLOAT => {
                ffi::PyFloat_CheckExact(lhs) != 0
                    && ffi::PyFloat_CheckExact(rhs) != 0
                    && !ffi::PyFloat_AS_DOUBLE(lhs).is_nan()
                    && !ffi::PyFloat_AS_DOUBLE(rhs).is_nan()
            }
            COMPARE_INT => {
                ffi::PyLong_CheckExact(lhs) != 0
                    && ffi::PyLong_CheckExact(rhs) != 0
                    && ffi::Py_SIZE(lhs).unsigned_abs() <= 1
                    && ffi::Py_SIZE(rhs).unsigned_abs() <= 1
            }
            _ => ffi::PyUnicode_CheckExact(lhs) != 0 && ffi::PyUnicode_CheckExact(rhs) != 0,
        }
    }
}

/// IS_OP
pub unsafe extern "C" fn pg_is_op(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: two values on the stack.
    unsafe {
        let (lhs, rhs) = (peek(sp, 2), peek(sp, 1));
        let res = new_bool((lhs == rhs) ^ (oparg != 0));
        binary_result(sp, lhs, rhs, res)
    }
}

/// CONTAINS_OP
pub unsafe extern "C" fn pg_contains_op(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: two values on the stack.
    unsafe {
        let (lhs, rhs) = (peek(sp, 2), peek(sp, 1));
        let r = ffi::PySequence_Contains(rhs, lhs);
        ffi::Py_DECREF(lhs);
        ffi::Py_DECREF(rhs);
        if r < 0 {
            return error_at(sp.sub(2));
        }
        put(sp, 2, new_bool((r != 0) ^ (oparg != 0)));
        sp.sub(1)
    }
}

/// Replaces the top value with `res` (releasing it); error (slot left null) if `res` is null.
#[inline(always)]
unsafe fn unary_result(sp: Sp, value: *mut PyObject, res: *mut PyObject) -> Sp {
    // SAFETY: one owned value on the stack.
    unsafe {
        ffi::Py_DECREF(value);
        put(sp, 1, res);
        if res.is_null() {
            error_at(sp)
        } else {
            sp
        }
    }
}

macro_rules! unary_helper {
    ($name:ident, $f:path) => {
        #[doc = concat!("`", stringify!($f), "` on the top of the stack.")]
        pub unsafe extern "C" fn $name(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
            // SAFETY: one value on the stack.
            unsafe {
                let v = peek(sp, 1);
                unary_result(sp, v, $f(v))
            }
        }
    };
}

unary_helper!(pg_unary_positive, ffi::PyNumber_Positive);
unary_helper!(pg_unary_negative, ffi::PyNumber_Negative);
unary_helper!(pg_unary_invert, ffi::PyNumber_Invert);
unary_helper!(pg_get_iter, ffi::PyObject_GetIter);

/// UNARY_NOT
pub unsafe extern "C" fn pg_unary_not(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: one value on the stack.
    unsafe {
        let v = peek(sp, 1);
        let r = ffi::PyObject_IsTrue(v);
        ffi::Py_DECREF(v);
        if r < 0 {
            return error_at(sp.sub(1));
        }
        put(sp, 1, new_bool(r == 0));
        sp
    }
}

/// Pops the top value and returns its truth (1, 0) or -1 on error (POP_JUMP_IF_*'s slow path).
pub unsafe extern "C" fn pg_pop_truth(sp: Sp) -> c_int {
    // SAFETY: one value on the stack, released here; the caller drops the slot.
    unsafe {
        let v = peek(sp, 1);
        let r = ffi::PyObject_IsTrue(v);
        ffi::Py_DECREF(v);
        r
    }
}

/// The truth of the top value without popping it (JUMP_IF_*_OR_POP), or -1 on error.
pub unsafe extern "C" fn pg_peek_truth(sp: Sp) -> c_int {
    // SAFETY: one value on the stack.
    unsafe { ffi::PyObject_IsTrue(peek(sp, 1)) }
}

// ---------------------------------------------------------------------------------------------
// Subscripts

/// BINARY_SUBSCR at `site`.
///
/// In warm code it replays BINARY_SUBSCR_ADAPTIVE and its forms at the site; where
/// BINARY_SUBSCR_GETITEM runs, the Python `__getitem__` is called as that form calls it, with its
/// frame pushed inline: the caller's `prev_instr` is then the instruction's last cache unit.
pub unsafe extern "C" fn pg_binary_subscr(
    _t: *mut ThreadState,
    frame: *mut InterpreterFrame,
    sp: Sp,
    _oparg: u32,
    site: *const Site,
) -> Sp {
    // SAFETY: two values on the stack; `prev_instr` is this instruction's unit; `site` is its
    // own, owned by the compiled code.
    unsafe {
        let site = &*site;
        let (container, sub) = (peek(sp, 2), peek(sp, 1));
        let form = if site.is_warm() {
            site.execute(
                |site| binary_subscr_specialize(site, container, sub),
                |site, form| binary_subscr_guard(site, form, container, sub),
            )
        } else {
            ADAPTIVE
        };
        let inlined =
            (form == SUBSCR_GETITEM).then(|| super::frame::expect_inlined_frame(frame, site.func.get(), BINARY_SUBSCR_CACHES));
        let res = semantics::subscr::binary_subscr(container, sub);
        drop(inlined);
        binary_result(sp, container, sub, res)
    }
}

/// BINARY_SUBSCR_DICT at `site`, whose guard (an exact dict under the key) compiled code checked:
/// one lookup, as ceval's form (no site state changes). The key is released first, then the dict;
/// a missing key raises KeyError with the dict left on the stack, as the form's error label
/// leaves it.
pub unsafe extern "C" fn pg_binary_subscr_dict(
    _t: *mut ThreadState,
    _f: *mut InterpreterFrame,
    sp: Sp,
    _oparg: u32,
    site: *const Site,
) -> Sp {
    // SAFETY: two values on the stack, an exact dict under the key; `site` is this
    // instruction's own, owned by the compiled code.
    unsafe {
        let (dict, sub) = (peek(sp, 2), peek(sp, 1));
        let cache = &(*site).cache;
        cache.hits.set(cache.hits.get() + 1);
        let res = ffi::PyDict_GetItemWithError(dict, sub);
        if res.is_null() {
            if ffi::PyErr_Occurred().is_null() {
                cpython::_PyErr_SetKeyError(sub);
            }
            ffi::Py_DECREF(sub);
            return error_at(sp.sub(1));
        }
        ffi::Py_INCREF(res);
        ffi::Py_DECREF(sub);
        put(sp, 2, res);
        ffi::Py_DECREF(dict);
        sp.sub(1)
    }
}

/// STORE_SUBSCR: `container[sub] = v` with stack (v, container, sub).
pub unsafe extern "C" fn pg_store_subscr(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: three values on the stack.
    unsafe {
        let (v, container, sub) = (peek(sp, 3), peek(sp, 2), peek(sp, 1));
        let err = semantics::subscr::store_subscr(container, sub, v);
        ffi::Py_DECREF(v);
        ffi::Py_DECREF(container);
        ffi::Py_DECREF(sub);
        if err != 0 { error_at(sp.sub(3)) } else { sp.sub(3) }
    }
}

/// DELETE_SUBSCR
pub unsafe extern "C" fn pg_delete_subscr(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: two values on the stack.
    unsafe {
        let (container, sub) = (peek(sp, 2), peek(sp, 1));
        let err = ffi::PyObject_DelItem(container, sub);
        ffi::Py_DECREF(container);
        ffi::Py_DECREF(sub);
        if err != 0 { error_at(sp.sub(2)) } else { sp.sub(2) }
    }
}

// ---------------------------------------------------------------------------------------------
// Globals

/// LOAD_GLOBAL: pushes NULL first when `oparg & 1` (a call follows), then the value. The
/// baseline calls [`super::inline_cache::pg_load_global_cached`] instead, which fills its cache.
pub unsafe extern "C" fn pg_load_global(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: GIL held, live frame, name index validated.
    unsafe {
        let v = semantics::names::load_global((*frame).f_globals, (*frame).f_builtins, name_at(frame, oparg >> 1));
        push_global(sp, oparg, v)
    }
}

/// LOAD_GLOBAL's result `v` (new, or null with an exception set) onto the stack.
///
/// # Safety
/// Room on the stack for two more values.
pub(crate) unsafe fn push_global(sp: Sp, oparg: u32, v: *mut PyObject) -> Sp {
    // SAFETY: per the contract.
    unsafe {
        if v.is_null() {
            return error_at(sp);
        }
        let mut sp = sp;
        if oparg & 1 != 0 {
            put(sp, 0, std::ptr::null_mut());
            sp = sp.add(1);
        }
        put(sp, 0, v);
        sp.add(1)
    }
}

/// STORE_GLOBAL
pub unsafe extern "C" fn pg_store_global(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: one value on the stack.
    unsafe {
        let v = peek(sp, 1);
        let err = ffi::PyDict_SetItem((*frame).f_globals, name_at(frame, oparg), v);
        ffi::Py_DECREF(v);
        if err != 0 { error_at(sp.sub(1)) } else { sp.sub(1) }
    }
}

/// DELETE_GLOBAL
pub unsafe extern "C" fn pg_delete_global(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: GIL held, live frame.
    unsafe {
        let name = name_at(frame, oparg);
        if ffi::PyDict_DelItem((*frame).f_globals, name) != 0 {
            if ffi::PyErr_ExceptionMatches(ffi::PyExc_KeyError) != 0 {
                format_exc_check_arg(ffi::PyExc_NameError, NAME_ERROR_MSG, name);
            }
            return error_at(sp);
        }
        sp
    }
}

// ---------------------------------------------------------------------------------------------
// Attributes

/// LOAD_ATTR
pub unsafe extern "C" fn pg_load_attr(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: one value on the stack.
    unsafe {
        let owner = peek(sp, 1);
        let res = semantics::attrs::load_attr(owner, name_at(frame, oparg));
        unary_result(sp, owner, res)
    }
}

/// STORE_ATTR: `owner.name = v` with stack (v, owner).
pub unsafe extern "C" fn pg_store_attr(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: two values on the stack.
    unsafe {
        let (v, owner) = (peek(sp, 2), peek(sp, 1));
        let err = semantics::attrs::store_attr(owner, name_at(frame, oparg), v);
        ffi::Py_DECREF(v);
        ffi::Py_DECREF(owner);
        if err != 0 { error_at(sp.sub(2)) } else { sp.sub(2) }
    }
}

/// DELETE_ATTR
pub unsafe extern "C" fn pg_delete_attr(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: one value on the stack.
    unsafe {
        let owner = peek(sp, 1);
        let err = ffi::PyObject_SetAttr(owner, name_at(frame, oparg), std::ptr::null_mut());
        ffi::Py_DECREF(owner);
        if err != 0 { error_at(sp.sub(1)) } else { sp.sub(1) }
    }
}

/// LOAD_METHOD: leaves (method, self) for a method found on the type, else (NULL, attribute).
pub unsafe extern "C" fn pg_load_method(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: one value on the stack.
    unsafe {
        let obj = peek(sp, 1);
        match semantics::attrs::load_method(obj, name_at(frame, oparg)) {
            None => error_at(sp),
            Some((meth, true)) => {
                put(sp, 1, meth);
                put(sp, 0, obj);
                sp.add(1)
            }
            Some((attr, false)) => {
                put(sp, 1, std::ptr::null_mut());
                ffi::Py_DECREF(obj);
                put(sp, 0, attr);
                sp.add(1)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Calls

/// PRECALL with `kwnames` (of the preceding KW_NAMES, or null): turns a bound method into
/// (function, self) so CALL passes self as an argument. In warm code it also replays what
/// PRECALL_ADAPTIVE and its specialized forms do at this `site` (see [`precall_specialize`]) and
/// leaves the form that runs now in `site.running` for the CALL.
pub unsafe extern "C" fn pg_precall(
    _t: *mut ThreadState,
    _f: *mut InterpreterFrame,
    sp: Sp,
    oparg: u32,
    kwnames: *mut PyObject,
    site: *const Site,
) -> Sp {
    // SAFETY: oparg + 2 slots on the stack; `site` is this PRECALL's, owned by the compiled code.
    unsafe {
        let site = &*site;
        let oparg = oparg as usize;
        let running = if site.is_warm() {
            let is_meth = !peek(sp, oparg + 2).is_null();
            let total = oparg + is_meth as usize;
            let callable = peek(sp, total + 1);
            let args = sp.sub(total);
            site.execute(
                |site| {
                    let pops_result = || *site.unit.add(PRECALL_TO_NEXT) & 0xff == op::POP_TOP as u16;
                    precall_specialize(callable, total, kwnames, oparg, pops_result).map_or(ADAPTIVE, |f| f as u8)
                },
                |_, form| precall_guard(PrecallForm::from_u8(form), callable, args, total, is_meth),
            )
        } else {
            ADAPTIVE
        };
        site.running.set(running);
        unpack_bound_method(sp, oparg);
        sp
    }
}

/// If the stack holds (NULL, bound method, args...), rewrites it to (function, self, args...).
#[inline(always)]
unsafe fn unpack_bound_method(sp: Sp, nargs: usize) -> bool {
    // SAFETY: nargs + 2 slots on the stack.
    unsafe {
        if !peek(sp, nargs + 2).is_null() {
            return true; // already a method call
        }
        let function = peek(sp, nargs + 1);
        if ffi::Py_TYPE(function) == std::ptr::addr_of_mut!(cpython::PyMethod_Type) {
            let meth = (*(function as *mut MethodObject)).im_func;
            let slf = (*(function as *mut MethodObject)).im_self;
            ffi::Py_INCREF(meth);
            ffi::Py_INCREF(slf);
            put(sp, nargs + 1, slf);
            put(sp, nargs + 2, meth);
            ffi::Py_DECREF(function);
            return true;
        }
        false
    }
}

/// Inline cache entries of CALL (`INLINE_CACHE_ENTRIES_CALL`).
const CALL_CACHES: usize = cache_entries(op::CALL);
/// Inline cache entries of BINARY_SUBSCR (`INLINE_CACHE_ENTRIES_BINARY_SUBSCR`).
const BINARY_SUBSCR_CACHES: usize = cache_entries(op::BINARY_SUBSCR);
/// Code units from PRECALL to the instruction after its CALL (neither with EXTENDED_ARG):
/// PRECALL, its caches, CALL and CALL's caches.
const PRECALL_TO_NEXT: usize = 1 + cache_entries(op::PRECALL) + 1 + CALL_CACHES;

/// CALL with `kwnames` (the tuple of the preceding KW_NAMES, or null); `site` is the pair's
/// PRECALL's, whose `running` form says how warm code calls. Stack: (NULL or method, callable or
/// self, args...) -> result.
///
/// Sets the frame's `prev_instr` where ceval's has it while the callee runs: CALL's own unit
/// (from the prelude), CALL's last cache unit once a Python function's frame is pushed (ceval
/// pushes it inline), PRECALL's unit when a specialized PRECALL form runs the call. The error
/// exit raises there too.
pub unsafe extern "C" fn pg_call(
    t: *mut ThreadState,
    frame: *mut InterpreterFrame,
    sp: Sp,
    oparg: u32,
    kwnames: *mut PyObject,
    site: *const Site,
) -> Sp {
    // SAFETY: oparg + 2 slots on the stack; kwnames is a tuple of str or null; `prev_instr` is
    // this CALL's unit; `site` is the PRECALL's, owned by the compiled code.
    unsafe {
        let oparg = oparg as usize;
        unpack_bound_method(sp, oparg);
        let s = CallShape::at(sp, oparg);
        let running = (*site).running.replace(ADAPTIVE);
        if running != ADAPTIVE {
            let form = PrecallForm::from_u8(running);
            if form.skips_call() {
                (*frame).prev_instr = (*site).unit;
                return run_c_form(t, form, &s, kwnames);
            }
        }
        let function = s.callable;
        let mut inlined = None;
        if ffi::Py_TYPE(function) == std::ptr::addr_of_mut!(ffi::PyFunction_Type) {
            let last_unit = (*frame).prev_instr.add(CALL_CACHES);
            if let DirectCall::Done(res) = try_direct_call(t, frame, function, s.args, s.total, kwnames, last_unit) {
                // The callee's frame took the callable and the arguments.
                return s.push_result(res);
            }
            inlined = Some(super::frame::expect_inlined_frame(frame, function, CALL_CACHES));
        }
        let nkw = if kwnames.is_null() { 0 } else { ffi::PyTuple_GET_SIZE(kwnames) as usize };
        let nargsf = (s.total - nkw) | ffi::PY_VECTORCALL_ARGUMENTS_OFFSET;
        let res = ffi::PyObject_Vectorcall(function, s.args, nargsf, kwnames);
        drop(inlined);
        // As ceval's CALL: the callable, then the arguments in order.
        ffi::Py_DECREF(function);
        s.release_args(0);
        s.push_result(res)
    }
}

/// The forms BINARY_SUBSCR_ADAPTIVE specializes to (`_Py_Specialize_BinarySubscr`), numbered for
/// a [`Site`].
pub const SUBSCR_LIST_INT: u8 = 1;
pub const SUBSCR_TUPLE_INT: u8 = 2;
pub const SUBSCR_DICT: u8 = 3;
/// BINARY_SUBSCR_GETITEM: a Python `__getitem__` called with its frame pushed inline.
const SUBSCR_GETITEM: u8 = 4;

/// `_Py_Specialize_BinarySubscr`: the form for this container and subscript, [`ADAPTIVE`] where
/// it fails. For BINARY_SUBSCR_GETITEM (a heap type whose `__getitem__` is a plain Python
/// function of two positional parameters) it records the type's version, the function and its
/// version in `site`.
///
/// ceval gives a function without a version one from a process-wide counter this library cannot
/// read, and fails once 65,535 are given out; here such a function keeps version 0, so changing
/// its `__code__` or defaults afterwards is not seen as a miss.
///
/// # Safety
/// GIL held; `container` and `sub` are live objects.
unsafe fn binary_subscr_specialize(site: &Site, container: *mut PyObject, sub: *mut PyObject) -> u8 {
    // SAFETY: per the contract; `_PyType_Lookup` returns a borrowed reference or null and sets no
    // error; a function's code is a code object.
    unsafe {
        let tp = ffi::Py_TYPE(container);
        if tp == std::ptr::addr_of_mut!(ffi::PyList_Type) {
            return if ffi::PyLong_CheckExact(sub) != 0 { SUBSCR_LIST_INT } else { ADAPTIVE };
        }
        if tp == std::ptr::addr_of_mut!(ffi::PyTuple_Type) {
            return if ffi::PyLong_CheckExact(sub) != 0 { SUBSCR_TUPLE_INT } else { ADAPTIVE };
        }
        if tp == std::ptr::addr_of_mut!(ffi::PyDict_Type) {
            return SUBSCR_DICT;
        }
        let name = STR_GETITEM.get();
        if name.is_null() {
            ffi::PyErr_Clear();
            return ADAPTIVE;
        }
        let descr = cpython::_PyType_Lookup(tp, name);
        if descr.is_null() || ffi::Py_TYPE(descr) != std::ptr::addr_of_mut!(ffi::PyFunction_Type) {
            return ADAPTIVE;
        }
        if (*tp).tp_flags & ffi::Py_TPFLAGS_HEAPTYPE == 0 {
            return ADAPTIVE;
        }
        let func = descr as *mut FunctionObject;
        let code = (*func).func_code as *mut cpython::CodeObject;
        use cpython::co_flags::{CO_OPTIMIZED, CO_VARARGS, CO_VARKEYWORDS};
        let flags = (*code).co_flags;
        let simple = flags & (CO_VARARGS | CO_VARKEYWORDS) == 0 && (*code).co_kwonlyargcount == 0 && flags & CO_OPTIMIZED != 0;
        if !simple || (*code).co_argcount != 2 || (*func).func_version > u16::MAX as u32 {
            return ADAPTIVE;
        }
        site.type_version.set((*tp).tp_version_tag);
        site.func.set(descr);
        site.func_version.set((*func).func_version);
        SUBSCR_GETITEM
    }
}

/// The DEOPT_IF guards of BINARY_SUBSCR's specialized forms.
///
/// # Safety
/// As for [`binary_subscr_specialize`].
unsafe fn binary_subscr_guard(site: &Site, form: u8, container: *mut PyObject, sub: *mut PyObject) -> bool {
    // SAFETY: per the contract; the cached function is alive while its type keeps the version
    // it was cached under (the type holds it).
    unsafe {
        // A small non-negative int (one digit at most) below the length.
        let small_index_below = |len: ffi::Py_ssize_t| {
            let size = ffi::Py_SIZE(sub);
            (size == 0 || size == 1) && ffi::PyLong_AsSsize_t(sub) < len
        };
        match form {
            SUBSCR_LIST_INT => {
                ffi::PyLong_CheckExact(sub) != 0
                    && ffi::PyList_CheckExact(container) != 0
                    && small_index_below(ffi::PyList_GET_SIZE(container))
            }
            SUBSCR_TUPLE_INT => {
                ffi::PyLong_CheckExact(sub) != 0
                    && ffi::PyTuple_CheckExact(container) != 0
                    && small_index_below(ffi::PyTuple_GET_SIZE(container))
            }
            SUBSCR_DICT => ffi::PyDict_CheckExact(container) != 0,
            _ => {
                (*ffi::Py_TYPE(container)).tp_version_tag == site.type_version.get()
                    && (*(site.func.get() as *mut FunctionObject)).func_version == site.func_version.get()
            }
        }
    }
}

static STR_GETITEM: super::support::Interned = super::support::Interned::new(b"__getitem__\0");

// ---------------------------------------------------------------------------------------------
// Building containers

/// BUILD_TUPLE
pub unsafe extern "C" fn pg_build_tuple(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: oparg values on the stack; their references move into the tuple.
    unsafe {
        let n = oparg as usize;
        let t = ffi::PyTuple_New(n as ffi::Py_ssize_t);
        if t.is_null() {
            return error_at(sp);
        }
        for i in 0..n {
            ffi::PyTuple_SET_ITEM(t, i as ffi::Py_ssize_t, peek(sp, n - i));
        }
        put(sp, n, t);
        sp.sub(n).add(1)
    }
}

/// BUILD_LIST
pub unsafe extern "C" fn pg_build_list(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: oparg values on the stack; their references move into the list.
    unsafe {
        let n = oparg as usize;
        let l = ffi::PyList_New(n as ffi::Py_ssize_t);
        if l.is_null() {
            return error_at(sp);
        }
        for i in 0..n {
            ffi::PyList_SET_ITEM(l, i as ffi::Py_ssize_t, peek(sp, n - i));
        }
        put(sp, n, l);
        sp.sub(n).add(1)
    }
}

/// Releases the top `n` values and pushes `res` in their place (null: error).
#[inline(always)]
unsafe fn replace_top(sp: Sp, n: usize, res: *mut PyObject) -> Sp {
    // SAFETY: n owned values on the stack.
    unsafe {
        if res.is_null() {
            return error_at(sp);
        }
        for i in 1..=n {
            ffi::Py_DECREF(peek(sp, i));
        }
        put(sp, n, res);
        sp.sub(n).add(1)
    }
}

/// BUILD_SET
pub unsafe extern "C" fn pg_build_set(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: oparg owned values on the stack.
    unsafe {
        let n = oparg as usize;
        let set = ffi::PySet_New(std::ptr::null_mut());
        if set.is_null() {
            return error_at(sp);
        }
        // As ceval: first item to last, each released right after it is added, so an item equal
        // to one already in the set dies before the next one is hashed. After a failure the rest
        // are released without being added, and the set (holding the ones added) last.
        let mut err = 0;
        for i in (1..=n).rev() {
            let item = peek(sp, i);
            if err == 0 {
                err = ffi::PySet_Add(set, item);
            }
            ffi::Py_DECREF(item);
        }
        let base = sp.sub(n);
        if err != 0 {
            ffi::Py_DECREF(set);
            return error_at(base);
        }
        put(base, 0, set);
        base.add(1)
    }
}

/// BUILD_MAP: `oparg` key/value pairs.
pub unsafe extern "C" fn pg_build_map(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: 2 * oparg values on the stack.
    unsafe {
        let n = oparg as usize;
        let map = dict_from_pairs(sp.sub(2 * n), n);
        // On error every pair stays on the stack, as in ceval.
        replace_top(sp, 2 * n, map)
    }
}

/// `USABLE_FRACTION(PyDict_MINSIZE)` (Objects/dictobject.c): `dict_new_presized` returns a plain
/// `PyDict_New()` for this many items or fewer, whatever the keys.
const DICT_UNPRESIZED_MAX: usize = 5;

/// BUILD_MAP pairs this many or fewer (the compiler emits at most 15) build their keys tuple
/// stand-in on the C stack.
const SMALL_MAP: usize = 16;

/// Words of a tuple's header, before `ob_item`.
const TUPLE_HEAD_WORDS: usize = std::mem::offset_of!(ffi::PyTupleObject, ob_item) / std::mem::size_of::<usize>();

/// ceval's `_PyDict_FromItems(keys, 2, values, 2, n)` for the `n` key/value pairs at `pairs`
/// (not exported): presized for `n` items, with a str-only key table when every key is an exact
/// str, then filled pair by pair with PyDict_SetItem. The table shows in `sys.getsizeof`.
unsafe fn dict_from_pairs(pairs: *const *mut PyObject, n: usize) -> *mut PyObject {
    // SAFETY: 2n owned values at `pairs`, keys at the even positions; GIL held.
    unsafe {
        let all_str = (0..n).all(|i| ffi::PyUnicode_CheckExact(*pairs.add(2 * i)) != 0);
        if n <= DICT_UNPRESIZED_MAX || !all_str {
            // `_PyDict_NewPresized` is `dict_new_presized(n, unicode = false)`, which is exactly
            // what _PyDict_FromItems asks for unless every key is a str (and n is larger).
            let map = cpython::_PyDict_NewPresized(n as ffi::Py_ssize_t);
            if map.is_null() {
                return map;
            }
            for i in 0..n {
                if ffi::PyDict_SetItem(map, *pairs.add(2 * i), *pairs.add(2 * i + 1)) != 0 {
                    ffi::Py_DECREF(map);
                    return std::ptr::null_mut();
                }
            }
            return map;
        }
        // The str-only presized table is reachable only through `_PyStack_AsDict`, which wants
        // the keys as a tuple and the values contiguous. A real tuple would be a GC allocation
        // and new references ceval does not make (both observable, from a GC callback say), so
        // the keys go into a tuple-shaped buffer of our own, which `_PyStack_AsDict` only reads
        // (`PyTuple_GET_SIZE`, `&PyTuple_GET_ITEM(t, 0)`) and which no Python code can reach:
        // nothing refers to it, and with exact str keys the only Python code that can run
        // meanwhile is a collection triggered by allocating the dict, as in ceval.
        let words = TUPLE_HEAD_WORDS + 2 * n;
        let mut small = [std::ptr::null_mut::<PyObject>(); TUPLE_HEAD_WORDS + 2 * SMALL_MAP];
        let heap_layout = if n <= SMALL_MAP {
            None
        } else {
            match std::alloc::Layout::array::<*mut PyObject>(words) {
                Ok(l) => Some(l),
                Err(_) => {
                    ffi::PyErr_NoMemory();
                    return std::ptr::null_mut();
                }
            }
        };
        let buf: *mut *mut PyObject = match heap_layout {
            None => small.as_mut_ptr(),
            Some(l) => {
                let p = std::alloc::alloc(l) as *mut *mut PyObject;
                if p.is_null() {
                    ffi::PyErr_NoMemory();
                    return std::ptr::null_mut();
                }
                p
            }
        };
        // The buffer is pointer-aligned, as PyTupleObject (words only) is.
        let keys_tuple = buf as *mut ffi::PyTupleObject;
        (*keys_tuple).ob_base.ob_base = ffi::PyObject_HEAD_INIT;
        (*keys_tuple).ob_base.ob_base.ob_type = std::ptr::addr_of_mut!(ffi::PyTuple_Type);
        (*keys_tuple).ob_base.ob_size = n as ffi::Py_ssize_t;
        let keys = buf.add(TUPLE_HEAD_WORDS);
        let values = keys.add(n);
        for i in 0..n {
            *keys.add(i) = *pairs.add(2 * i);
            *values.add(i) = *pairs.add(2 * i + 1);
        }
        let map = cpython::_PyStack_AsDict(values, keys_tuple as *mut PyObject);
        if let Some(l) = heap_layout {
            std::alloc::dealloc(buf as *mut u8, l);
        }
        map
    }
}

/// BUILD_CONST_KEY_MAP: `oparg` values, then a tuple of keys.
pub unsafe extern "C" fn pg_build_const_key_map(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: oparg + 1 values on the stack.
    unsafe {
        let n = oparg as usize;
        let keys = peek(sp, 1);
        if ffi::PyTuple_CheckExact(keys) == 0 || ffi::PyTuple_GET_SIZE(keys) as usize != n {
            ffi::PyErr_SetString(ffi::PyExc_SystemError, b"bad BUILD_CONST_KEY_MAP keys argument\0".as_ptr() as *const c_char);
            return error_at(sp);
        }
        // ceval's `_PyDict_FromItems(&keys[0], 1, values, 1, n)`, which is what `_PyStack_AsDict`
        // calls: the values lie contiguously below the keys tuple.
        let map = cpython::_PyStack_AsDict(sp.sub(n + 1), keys);
        replace_top(sp, n + 1, map)
    }
}

/// BUILD_STRING: concatenates `oparg` strings.
pub unsafe extern "C" fn pg_build_string(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: oparg str values on the stack.
    unsafe {
        let n = oparg as usize;
        let empty = ffi::PyUnicode_FromStringAndSize(std::ptr::null(), 0);
        if empty.is_null() {
            return error_at(sp);
        }
        // Joined in place, as ceval does: a temporary tuple of the parts would be a GC
        // allocation, which can start a collection ceval does not (gc.callbacks see it).
        let res = cpython::_PyUnicode_JoinArray(empty, sp.sub(n), n as ffi::Py_ssize_t);
        ffi::Py_DECREF(empty);
        replace_top(sp, n, res)
    }
}

/// BUILD_SLICE: 2 or 3 values.
pub unsafe extern "C" fn pg_build_slice(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: oparg (2 or 3) values on the stack.
    unsafe {
        let n = oparg as usize;
        let step = if n == 3 { peek(sp, 1) } else { std::ptr::null_mut() };
        let (start, stop) = (peek(sp, n), peek(sp, n - 1));
        let res = ffi::PySlice_New(start, stop, step);
        // As ceval, on both paths: start, stop, then step. (Only when the slice cannot be
        // allocated can one of them die here; a new slice holds all three.)
        ffi::Py_DECREF(start);
        ffi::Py_DECREF(stop);
        ffi::Py_XDECREF(step);
        // The slot of `start` takes the slice, or null on error as ceval's SET_TOP leaves it.
        put(sp, n, res);
        let sp = sp.sub(n).add(1);
        if res.is_null() { error_at(sp) } else { sp }
    }
}

/// LIST_APPEND: appends the top to the list `oparg` below it.
pub unsafe extern "C" fn pg_list_append(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: oparg + 1 values on the stack; the one at depth oparg + 1 is a list.
    unsafe {
        let v = peek(sp, 1);
        let list = peek(sp, oparg as usize + 1);
        let err = ffi::PyList_Append(list, v);
        ffi::Py_DECREF(v);
        if err != 0 { error_at(sp.sub(1)) } else { sp.sub(1) }
    }
}

/// SET_ADD
pub unsafe extern "C" fn pg_set_add(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: as LIST_APPEND, with a set.
    unsafe {
        let v = peek(sp, 1);
        let set = peek(sp, oparg as usize + 1);
        let err = ffi::PySet_Add(set, v);
        ffi::Py_DECREF(v);
        if err != 0 { error_at(sp.sub(1)) } else { sp.sub(1) }
    }
}

/// MAP_ADD: stack (..., dict, ..., key, value).
pub unsafe extern "C" fn pg_map_add(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: oparg + 2 values on the stack; the one at depth oparg + 2 is a dict.
    unsafe {
        let (key, value) = (peek(sp, 2), peek(sp, 1));
        let map = peek(sp, oparg as usize + 2);
        let err = ffi::PyDict_SetItem(map, key, value);
        ffi::Py_DECREF(key);
        ffi::Py_DECREF(value);
        if err != 0 { error_at(sp.sub(2)) } else { sp.sub(2) }
    }
}

/// LIST_TO_TUPLE
pub unsafe extern "C" fn pg_list_to_tuple(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: a list on top of the stack.
    unsafe {
        let list = peek(sp, 1);
        let t = ffi::PyList_AsTuple(list);
        unary_result(sp, list, t)
    }
}

// ---------------------------------------------------------------------------------------------
// Iteration

/// FOR_ITER: pushes the next value (returns sp + 1), or pops the exhausted iterator (returns
/// sp - 1, the caller jumps), or raises (tagged sp, iterator still on the stack).
///
/// As ceval, an iterator that ends with StopIteration set is reported to the trace function
/// ('exception' event) when one is set: tracing may have been switched on inside `__next__`, or
/// the code runs inside a trace function (which the event then does not reach).
pub unsafe extern "C" fn pg_for_iter(t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: an iterator on top of the stack; `frame` is the thread's current frame.
    unsafe {
        let iter = peek(sp, 1);
        let tp = ffi::Py_TYPE(iter);
        // A generator is resumed directly, as its `tp_iternext` (`gen_iternext`) would.
        let next = match super::direct_resume::try_resume(t, iter, std::ptr::null_mut()) {
            Some(resumed) => resumed.value,
            None => match (*tp).tp_iternext {
                Some(f) => f(iter),
                None => std::ptr::null_mut(),
            },
        };
        for_iter_outcome(t, frame, sp, next)
    }
}

/// FOR_ITER after machine code resumed the generator on top of the stack
/// (`baseline::direct_entry`) and its frame returned `result` other than by a yield.
///
/// # Safety
/// GIL held; an exact generator on top of the stack, resumed as `direct_resume::resume` does
/// with nothing sent; `frame` the thread's current frame.
pub unsafe extern "C" fn pg_for_iter_resumed(t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, result: *mut PyObject) -> Sp {
    // SAFETY: per the contract.
    unsafe {
        let g = peek(sp, 1) as *mut crate::cpython::GenObject;
        let r = super::direct_resume::finish_resume(t, g, true, std::ptr::null_mut(), result);
        for_iter_outcome(t, frame, sp, r.value)
    }
}

/// FOR_ITER's stack once the iterator answered `next` (null: exhausted or raised).
///
/// # Safety
/// GIL held; the iterator on top of the stack below `sp`; `frame` the current frame.
#[inline(always)]
unsafe fn for_iter_outcome(t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, next: *mut PyObject) -> Sp {
    // SAFETY: per the contract.
    unsafe {
        let iter = peek(sp, 1);
        if !next.is_null() {
            put(sp, 0, next);
            return sp.add(1);
        }
        if !ffi::PyErr_Occurred().is_null() {
            if ffi::PyErr_ExceptionMatches(ffi::PyExc_StopIteration) == 0 {
                return error_at(sp);
            }
            if !(*t).c_tracefunc.is_null() {
                super::trace::call_exc_trace(t, frame);
            }
            // Whatever the trace function raised goes too, as in ceval.
            ffi::PyErr_Clear();
        }
        ffi::Py_DECREF(iter);
        sp.sub(1)
    }
}

/// GET_LEN: pushes len(TOS), keeping TOS.
pub unsafe extern "C" fn pg_get_len(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: one value on the stack.
    unsafe {
        let n = ffi::PyObject_Length(peek(sp, 1));
        if n < 0 {
            return error_at(sp);
        }
        let len = ffi::PyLong_FromSsize_t(n);
        if len.is_null() {
            return error_at(sp);
        }
        put(sp, 0, len);
        sp.add(1)
    }
}

/// UNPACK_SEQUENCE_TUPLE (and _TWO_TUPLE, which runs the same way) and UNPACK_SEQUENCE_LIST.
pub const UNPACK_TUPLE: u8 = 1;
pub const UNPACK_LIST: u8 = 2;

/// UNPACK_SEQUENCE at `site`: replaces a sequence of exactly `oparg` items with its items, the
/// first on top.
///
/// The forms ceval specializes warm code to (an exact tuple or list of exactly `oparg` items)
/// copy the items out; the generic instruction iterates, allocating an iterator, which is a GC
/// object: its allocation counts towards the next collection, so which one runs is observable
/// (`gc.callbacks`, when cyclic garbage dies). The site replays ceval's choice.
pub unsafe extern "C" fn pg_unpack_sequence(
    _t: *mut ThreadState,
    _f: *mut InterpreterFrame,
    sp: Sp,
    oparg: u32,
    site: *const Site,
) -> Sp {
    // SAFETY: forwarded (the same contract).
    unsafe { unpack_sequence(sp, oparg as usize, &*site).0 }
}

/// [`pg_unpack_sequence`]'s work, and whether a specialized form ran (the copy, which runs no
/// code but the sequence's deallocation).
///
/// # Safety
/// As for [`pg_unpack_sequence`].
#[inline(always)]
unsafe fn unpack_sequence(sp: Sp, n: usize, site: &Site) -> (Sp, bool) {
    // SAFETY: one value on the stack and room for n (the compiler checked the stack size);
    // `site` is this instruction's own, owned by the compiled code.
    unsafe {
        let seq = peek(sp, 1);
        if site.is_warm() {
            let form = site.execute(|_| unpack_specialize(seq, n), |_, form| unpack_guard(form, seq, n));
            if form != ADAPTIVE {
                let base = sp.sub(1);
                for i in 0..n {
                    let item = if form == UNPACK_TUPLE {
                        ffi::PyTuple_GET_ITEM(seq, i as ffi::Py_ssize_t)
                    } else {
                        ffi::PyList_GET_ITEM(seq, i as ffi::Py_ssize_t)
                    };
                    ffi::Py_INCREF(item);
                    *base.add(n - 1 - i) = item;
                }
                ffi::Py_DECREF(seq);
                return (base.add(n), true);
            }
        }
        let it = ffi::PyObject_GetIter(seq);
        if it.is_null() {
            if ffi::PyErr_ExceptionMatches(ffi::PyExc_TypeError) != 0 {
                let tp = ffi::Py_TYPE(seq);
                if (*tp).tp_iter.is_none() && ffi::PySequence_Check(seq) == 0 {
                    ffi::PyErr_Clear();
                    ffi::PyErr_Format(
                        ffi::PyExc_TypeError,
                        b"cannot unpack non-iterable %.200s object\0".as_ptr() as *const c_char,
                        (*tp).tp_name,
                    );
                }
            }
            ffi::Py_DECREF(seq);
            return (error_at(sp.sub(1)), false);
        }
        // Items go to the stack top-down: the first item ends up on top.
        let base = sp.sub(1);
        for i in 0..n {
            let w = ffi::PyIter_Next(it);
            if w.is_null() {
                if ffi::PyErr_Occurred().is_null() {
                    ffi::PyErr_Format(
                        ffi::PyExc_ValueError,
                        b"not enough values to unpack (expected %d, got %d)\0".as_ptr() as *const c_char,
                        n as c_int,
                        i as c_int,
                    );
                }
                // The i items unpacked so far sit at base + n - i .. base + n, the last one
                // unpacked lowest.
                release_unpacked(base.add(n - i), i, it, seq);
                return (error_at(base), false);
            }
            *base.add(n - 1 - i) = w;
        }
        // Exactly n: one more must not exist.
        let extra = ffi::PyIter_Next(it);
        if extra.is_null() {
            if !ffi::PyErr_Occurred().is_null() {
                release_unpacked(base, n, it, seq);
                return (error_at(base), false);
            }
            ffi::Py_DECREF(it);
            ffi::Py_DECREF(seq);
            return (base.add(n), false);
        }
        ffi::Py_DECREF(extra);
        // 3.11 names only the expected count (3.12 added "got N" for lists and tuples).
        ffi::PyErr_Format(
            ffi::PyExc_ValueError,
            b"too many values to unpack (expected %d)\0".as_ptr() as *const c_char,
            n as c_int,
        );
        release_unpacked(base, n, it, seq);
        (error_at(base), false)
    }
}

/// Where [`pg_unpack_store`] stopped: the stack pointer (tagged when UNPACK_SEQUENCE raised) and
/// how compiled code goes on: [`UNPACK_STORE_ON`] at the next instruction,
/// [`UNPACK_STORE_PAIRED`] at its entry as the second half of a superinstruction, else (tracing
/// went on) the interpreter after the unit given. In `rax:rdx`.
#[repr(C)]
pub struct UnpackStored {
    pub sp: Sp,
    pub then: usize,
}

/// [`UnpackStored::then`]: the run is done, the next instruction is dispatched.
pub const UNPACK_STORE_ON: usize = 0;
/// [`UnpackStored::then`]: the last store ran as the first half of a superinstruction with the
/// next instruction, which runs as its second half.
pub const UNPACK_STORE_PAIRED: usize = 1;

/// The most STORE_FASTs [`pg_unpack_store`] takes: their locals are packed a byte each in two
/// words, the second's top byte holding the count (and [`UNPACK_STORE_LAST_PAIRS`]), its bits
/// 48-51 where [`pg_unpack_store_rest`] goes on.
pub const UNPACK_STORE_MAX: usize = 14;
/// Set in the second word when the last store heads a superinstruction with the instruction
/// after the run where it is dispatched in warm code.
pub const UNPACK_STORE_LAST_PAIRS: u64 = 1 << 63;

/// UNPACK_SEQUENCE at `site` and the `n` STORE_FASTs that follow it, in one call: the compiled
/// code of a statement such as `a, b, c, d = t` shrinks from a template per instruction to one
/// call, which keeps a function of many such statements within the instruction cache.
/// `locals_low` and `locals_high` pack the stores' local indices a byte each, first store lowest;
/// bits 56-59 of `locals_high` hold `n`. The stores follow the UNPACK_SEQUENCE unit after unit (no
/// EXTENDED_ARG, none a jump target): store `k`'s unit is the UNPACK_SEQUENCE's plus 2 + k.
///
/// The instructions run as ceval runs them, one dispatch at a time: UNPACK_SEQUENCE as
/// [`pg_unpack_sequence`] (an error leaves the stack as it does), then the stores, each
/// replacing its local and releasing the old value with the frame's `prev_instr` where ceval's
/// is then. In warm code ceval has paired the stores into STORE_FAST__STORE_FAST
/// superinstructions by position, so a store dispatched there runs the next one too, whose
/// destructor sees the first one's unit. At each dispatch where something ran since the last
/// one (the generic unpack, a destructor), this checks for tracing, and warmth (a destructor may
/// have warmed the code up). It stops for the interpreter to go on where tracing went on. The
/// last store, dispatched in warm code, may head a pair with the instruction after the run (an
/// odd number of stores, or a run warmed up in its middle): that instruction then runs as its
/// second half, without a check of its own.
///
/// # Safety
/// GIL held on thread state `t`; `site` is the UNPACK_SEQUENCE's own, owned by the compiled
/// code; the stores are as described and their locals in range (checked by the compiler).
pub unsafe extern "C" fn pg_unpack_store(
    t: *mut ThreadState,
    frame: *mut InterpreterFrame,
    sp: Sp,
    site: *const Site,
    locals_low: u64,
    locals_high: u64,
) -> UnpackStored {
    // SAFETY: per the contract.
    unsafe {
        let site = &*site;
        let n = (locals_high >> 56) as usize & 0xf;
        let (sp, fast) = unpack_sequence(sp, n, site);
        let stop = |sp: Sp, then: usize| UnpackStored { sp, then };
        if sp as usize & 1 != 0 {
            return stop(sp, UNPACK_STORE_ON);
        }
        if fast {
            site.cache.hits.set(site.cache.hits.get() + 1);
        }
        store_run(t, frame, sp, site, locals_low, locals_high, 0, !fast)
    }
}

/// [`pg_unpack_store`] from store `k` = bits 48-51 of `locals_high` on, after the shared routine
/// (`baseline::shared_lookups`) unpacked the sequence and ran stores 0 to k - 1, none of which
/// released anything for the last time (so nothing ran since the UNPACK_SEQUENCE), and found
/// store k's old value about to die. The stack holds items k to n - 1, item k on top.
///
/// # Safety
/// As for [`pg_unpack_store`], the stack as described.
pub unsafe extern "C" fn pg_unpack_store_rest(
    t: *mut ThreadState,
    frame: *mut InterpreterFrame,
    sp: Sp,
    site: *const Site,
    locals_low: u64,
    locals_high: u64,
) -> UnpackStored {
    // SAFETY: per the contract.
    unsafe {
        let k = (locals_high >> UNPACK_STORE_RESUME_SHIFT) as usize & 0xf;
        store_run(t, frame, sp, &*site, locals_low, locals_high, k, false)
    }
}

/// Where [`pg_unpack_store_rest`] finds the store to go on at.
pub const UNPACK_STORE_RESUME_SHIFT: u32 = 48;

/// The stores of a run from store `k` on (items k to n - 1 on the stack, item k on top), one
/// dispatch at a time as ceval runs them (see [`pg_unpack_store`]); `ran` says whether anything
/// ran since the last tracing check. Entered at k > 0 only when nothing ran since the
/// UNPACK_SEQUENCE: the code's warmth is then what it was there, and in warm code store k is a
/// second half if k is odd (the stores pair from the first).
///
/// # Safety
/// As for [`pg_unpack_store`].
#[inline(always)]
unsafe fn store_run(
    t: *mut ThreadState,
    frame: *mut InterpreterFrame,
    mut sp: Sp,
    site: &Site,
    locals_low: u64,
    locals_high: u64,
    mut k: usize,
    mut ran: bool,
) -> UnpackStored {
    // SAFETY: per the contract.
    unsafe {
        let n = (locals_high >> 56) as usize & 0xf;
        let last_pairs = locals_high & UNPACK_STORE_LAST_PAIRS != 0;
        let stop = |sp: Sp, then: usize| UnpackStored { sp, then };
        // Store k's unit (store 0's minus one: UNPACK_SEQUENCE's cache entry, its last unit).
        let store_unit = |k: usize| site.unit.add(1 + cache_entries(op::UNPACK_SEQUENCE) + k);
        let tracing = || (*(*t).cframe).use_tracing != 0;
        let locals: [u8; 16] = std::mem::transmute([locals_low.to_le(), locals_high.to_le()]);
        // One store: the value on top into its local; the old value released, `prev_instr` at
        // `unit` if it dies. Whether it died.
        let store = |sp: &mut Sp, k: usize, unit: *mut u16| {
            *sp = sp.sub(1);
            let slot = local_slot(frame, locals[k] as u32);
            let old = std::mem::replace(&mut *slot, **sp);
            if old.is_null() {
                return false;
            }
            let dies = ffi::Py_REFCNT(old) == 1;
            if dies {
                (*frame).prev_instr = unit;
            }
            ffi::Py_DECREF(old);
            dies
        };
        // The generic unpack may have run code: ceval's check as it dispatches the first store.
        if ran && tracing() {
            return stop(sp, store_unit(k).sub(1) as usize);
        }
        ran = false;
        let mut warm = site.is_warm();
        let mut second = warm && k % 2 == 1;
        while k < n {
            if second {
                ran |= store(&mut sp, k, store_unit(k - 1));
                second = false;
            } else {
                // Dispatching store k: ceval's check, if anything ran since the last one.
                if ran {
                    ran = false;
                    if tracing() {
                        return stop(sp, store_unit(k).sub(1) as usize);
                    }
                    warm = site.is_warm();
                }
                ran |= store(&mut sp, k, store_unit(k));
                if warm && k + 1 < n {
                    second = true;
                } else if warm && k == n - 1 && last_pairs {
                    return stop(sp, UNPACK_STORE_PAIRED);
                }
            }
            k += 1;
        }
        if ran && tracing() {
            return stop(sp, store_unit(n - 1) as usize);
        }
        stop(sp, UNPACK_STORE_ON)
    }
}

/// `_Py_Specialize_UnpackSequence`: an exact tuple or list of exactly `n` items.
unsafe fn unpack_specialize(seq: *mut PyObject, n: usize) -> u8 {
    // SAFETY: GIL held; a live object; sizes read after the exact-type checks.
    unsafe {
        if ffi::PyTuple_CheckExact(seq) != 0 && ffi::PyTuple_GET_SIZE(seq) as usize == n {
            UNPACK_TUPLE
        } else if ffi::PyList_CheckExact(seq) != 0 && ffi::PyList_GET_SIZE(seq) as usize == n {
            UNPACK_LIST
        } else {
            ADAPTIVE
        }
    }
}

/// The DEOPT_IF checks of the UNPACK_SEQUENCE forms.
unsafe fn unpack_guard(form: u8, seq: *mut PyObject, n: usize) -> bool {
    // SAFETY: as for `unpack_specialize`.
    unsafe {
        match form {
            UNPACK_TUPLE => ffi::PyTuple_CheckExact(seq) != 0 && ffi::PyTuple_GET_SIZE(seq) as usize == n,
            _ => ffi::PyList_CheckExact(seq) != 0 && ffi::PyList_GET_SIZE(seq) as usize == n,
        }
    }
}

/// The error exit of ceval's `unpack_iterable` and then UNPACK_SEQUENCE: releases the `n` values
/// unpacked so far, stored downwards from `low + n`, starting at `low` (the last one unpacked, so
/// the first one unpacked dies last), then the iterator, then the sequence.
unsafe fn release_unpacked(low: Sp, n: usize, it: *mut PyObject, seq: *mut PyObject) {
    // SAFETY: n owned items at low..low+n; `it` and `seq` owned.
    unsafe {
        for j in 0..n {
            ffi::Py_DECREF(*low.add(j));
        }
        ffi::Py_DECREF(it);
        ffi::Py_DECREF(seq);
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting and functions

/// FORMAT_VALUE: oparg & 3 picks the conversion (none, str, repr, ascii), oparg & 4 says a format
/// spec is on the stack above the value.
pub unsafe extern "C" fn pg_format_value(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: 1 or 2 values on the stack.
    unsafe {
        let have_spec = oparg & 4 != 0;
        let mut sp = sp;
        let spec = if have_spec {
            sp = sp.sub(1);
            *sp
        } else {
            std::ptr::null_mut()
        };
        let mut value = peek(sp, 1);
        let conv: Option<unsafe extern "C" fn(*mut PyObject) -> *mut PyObject> = match oparg & 3 {
            1 => Some(ffi::PyObject_Str),
            2 => Some(ffi::PyObject_Repr),
            3 => Some(ffi::PyObject_ASCII),
            _ => None,
        };
        if let Some(conv) = conv {
            let converted = conv(value);
            ffi::Py_DECREF(value);
            if converted.is_null() {
                ffi::Py_XDECREF(spec);
                return error_at(sp.sub(1));
            }
            value = converted;
        }
        let result = if ffi::PyUnicode_CheckExact(value) != 0 && spec.is_null() {
            value
        } else {
            let r = ffi::PyObject_Format(value, spec);
            ffi::Py_DECREF(value);
            ffi::Py_XDECREF(spec);
            if r.is_null() {
                return error_at(sp.sub(1));
            }
            r
        };
        put(sp, 1, result);
        sp
    }
}

/// MAKE_FUNCTION: code object on top; below it, per flag bit, closure (8), annotations (4),
/// keyword defaults (2), defaults (1).
pub unsafe extern "C" fn pg_make_function(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: the stack holds the code object and one value per set flag.
    unsafe {
        let codeobj = peek(sp, 1);
        let func = ffi::PyFunction_New(codeobj, (*frame).f_globals);
        ffi::Py_DECREF(codeobj);
        let mut sp = sp.sub(1);
        if func.is_null() {
            // ceval leaves the flag operands on the stack for the unwinder.
            return error_at(sp);
        }
        // As ceval: the fields take the references straight from the stack (annotations are a
        // tuple here, which PyFunction_SetAnnotations would reject).
        let f = func as *mut FunctionObject;
        if oparg & 8 != 0 {
            sp = sp.sub(1);
            (*f).func_closure = *sp;
        }
        if oparg & 4 != 0 {
            sp = sp.sub(1);
            (*f).func_annotations = *sp;
        }
        if oparg & 2 != 0 {
            sp = sp.sub(1);
            (*f).func_kwdefaults = *sp;
        }
        if oparg & 1 != 0 {
            sp = sp.sub(1);
            (*f).func_defaults = *sp;
        }
        put(sp, 0, func);
        sp.add(1)
    }
}

/// LOAD_ASSERTION_ERROR
pub unsafe extern "C" fn pg_load_assertion_error(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: room for one value.
    unsafe {
        let v = ffi::PyExc_AssertionError;
        ffi::Py_INCREF(v);
        put(sp, 0, v);
        sp.add(1)
    }
}
