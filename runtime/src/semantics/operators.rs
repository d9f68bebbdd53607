//! Binary operators and comparisons.

use crate::cpython::{self, ffi};
use ffi::PyObject;
use std::os::raw::c_int;

type BinaryFn = unsafe extern "C" fn(*mut PyObject, *mut PyObject) -> *mut PyObject;

unsafe extern "C" fn power(a: *mut PyObject, b: *mut PyObject) -> *mut PyObject {
    // SAFETY: GIL held; live operands.
    unsafe { ffi::PyNumber_Power(a, b, ffi::Py_None()) }
}

unsafe extern "C" fn inplace_power(a: *mut PyObject, b: *mut PyObject) -> *mut PyObject {
    // SAFETY: GIL held; live operands.
    unsafe { ffi::PyNumber_InPlacePower(a, b, ffi::Py_None()) }
}

/// BINARY_OP's operators, indexed by oparg in the order of `opcode._nb_ops`.
static BINARY_OPS: [BinaryFn; 26] = [
    ffi::PyNumber_Add,
    ffi::PyNumber_And,
    ffi::PyNumber_FloorDivide,
    ffi::PyNumber_Lshift,
    ffi::PyNumber_MatrixMultiply,
    ffi::PyNumber_Multiply,
    ffi::PyNumber_Remainder,
    ffi::PyNumber_Or,
    power,
    ffi::PyNumber_Rshift,
    ffi::PyNumber_Subtract,
    ffi::PyNumber_TrueDivide,
    ffi::PyNumber_Xor,
    ffi::PyNumber_InPlaceAdd,
    ffi::PyNumber_InPlaceAnd,
    ffi::PyNumber_InPlaceFloorDivide,
    ffi::PyNumber_InPlaceLshift,
    ffi::PyNumber_InPlaceMatrixMultiply,
    ffi::PyNumber_InPlaceMultiply,
    ffi::PyNumber_InPlaceRemainder,
    ffi::PyNumber_InPlaceOr,
    inplace_power,
    ffi::PyNumber_InPlaceRshift,
    ffi::PyNumber_InPlaceSubtract,
    ffi::PyNumber_InPlaceTrueDivide,
    ffi::PyNumber_InPlaceXor,
];

/// The number of BINARY_OP operators (valid opargs are below it).
pub const BINARY_OP_COUNT: usize = BINARY_OPS.len();

/// `opcode._nb_ops` numbers; the in-place form of operator `k` is `k + NB_INPLACE`.
pub mod nb {
    pub const ADD: u32 = 0;
    pub const AND: u32 = 1;
    pub const FLOOR_DIVIDE: u32 = 2;
    pub const MULTIPLY: u32 = 5;
    pub const REMAINDER: u32 = 6;
    pub const OR: u32 = 7;
    pub const SUBTRACT: u32 = 10;
    pub const TRUE_DIVIDE: u32 = 11;
    pub const XOR: u32 = 12;
    pub const INPLACE: u32 = 13;
}

/// `lhs <op> rhs` for BINARY_OP `op` (< [`BINARY_OP_COUNT`]): a new reference, or null with an
/// exception set.
///
/// Exact floats and exact ints of at most one digit are computed directly: for them the number
/// protocol ends in `float_add`, `long_add` and their kin, which compute the same value into the
/// same kind of new object (or the same cached small int) and run no Python code, so skipping
/// the dispatch is unobservable. Everything else, and every case that raises (division by zero),
/// takes the number protocol.
///
/// # Safety
/// GIL held; live operands; `op` < [`BINARY_OP_COUNT`].
#[inline]
pub unsafe fn binary_op(op: u32, lhs: *mut PyObject, rhs: *mut PyObject) -> *mut PyObject {
    // SAFETY: per the contract.
    unsafe {
        let base = if op >= nb::INPLACE { op - nb::INPLACE } else { op };
        // Floats and ints have no in-place slots: their in-place operators are the plain ones.
        if let Some(res) = binary_op_fast(base, lhs, rhs) {
            return res;
        }
        BINARY_OPS[op as usize](lhs, rhs)
    }
}

/// The directly computed cases of [`binary_op`] (`op` a plain operator); `None` for the rest.
#[inline(always)]
unsafe fn binary_op_fast(op: u32, lhs: *mut PyObject, rhs: *mut PyObject) -> Option<*mut PyObject> {
    // SAFETY: exact-type checks come before each type's accessor.
    unsafe {
        let tl = ffi::Py_TYPE(lhs);
        if tl != ffi::Py_TYPE(rhs) {
            return None;
        }
        if tl == std::ptr::addr_of_mut!(ffi::PyFloat_Type) {
            let (a, b) = (ffi::PyFloat_AS_DOUBLE(lhs), ffi::PyFloat_AS_DOUBLE(rhs));
            let r = match op {
                nb::ADD => a + b,
                nb::SUBTRACT => a - b,
                nb::MULTIPLY => a * b,
                // float_div raises ZeroDivisionError for 0.0: the generic path does that.
                nb::TRUE_DIVIDE if b != 0.0 => a / b,
                _ => return None,
            };
            return Some(ffi::PyFloat_FromDouble(r));
        }
        if tl == std::ptr::addr_of_mut!(ffi::PyLong_Type) {
            let (a, b) = (small_int(lhs)?, small_int(rhs)?);
            // One digit is 30 bits: every result below fits an i64.
            let r = match op {
                nb::ADD => a + b,
                nb::SUBTRACT => a - b,
                nb::MULTIPLY => a * b,
                nb::AND => a & b,
                nb::OR => a | b,
                nb::XOR => a ^ b,
                // Python's floor division and modulo round towards minus infinity; b == 0 takes
                // the generic path, which raises.
                nb::FLOOR_DIVIDE if b != 0 => {
                    let q = a / b;
                    if a % b != 0 && (a < 0) != (b < 0) { q - 1 } else { q }
                }
                nb::REMAINDER if b != 0 => {
                    let m = a % b;
                    if m != 0 && (m < 0) != (b < 0) { m + b } else { m }
                }
                _ => return None,
            };
            return Some(ffi::PyLong_FromLongLong(r));
        }
        None
    }
}

/// The value of an exact int of at most one digit (`Py_SIZE` in -1..=1), as ceval's
/// specialized int forms test it; `None` for a larger one.
///
/// # Safety
/// `v` is an exact int.
#[inline(always)]
pub(crate) unsafe fn small_int(v: *mut PyObject) -> Option<i64> {
    // SAFETY: per the contract; an int has at least one digit after its header (layout checked).
    unsafe {
        let size = ffi::Py_SIZE(v);
        if size.unsigned_abs() > 1 {
            return None;
        }
        let digit = *((v as *const u8).add(crate::cpython::layout::LONG_DIGIT_OFFSET) as *const u32);
        Some(size as i64 * digit as i64)
    }
}

/// `lhs <op> rhs` for COMPARE_OP `op` (<= Py_GE): the generic comparison, which counts a
/// recursion level ("in comparison"). A new reference, or null with an exception set.
///
/// # Safety
/// GIL held; live operands; `op` <= Py_GE.
#[inline]
pub unsafe fn compare_op(op: c_int, lhs: *mut PyObject, rhs: *mut PyObject) -> *mut PyObject {
    // SAFETY: per the contract.
    unsafe { ffi::PyObject_RichCompare(lhs, rhs, op) }
}

/// The result of `lhs <op> rhs` where ceval's combined compare-and-jump forms compute it
/// directly: two exact floats, neither NaN; two exact ints of at most one digit; two exact strs
/// compared with == or !=. `None` elsewhere (the generic path). Unlike the generic comparison it
/// counts no recursion level, which is observable: only sites where ceval would run a combined
/// form may use it.
///
/// # Safety
/// GIL held; live objects.
pub unsafe fn compare_specialized(lhs: *mut PyObject, rhs: *mut PyObject, op: c_int) -> Option<bool> {
    // SAFETY: exact-type checks come before each type's accessor.
    unsafe {
        let ord = if ffi::PyFloat_CheckExact(lhs) != 0 && ffi::PyFloat_CheckExact(rhs) != 0 {
            // A NaN operand has no ordering: ceval bails out to the generic compare too.
            ffi::PyFloat_AS_DOUBLE(lhs).partial_cmp(&ffi::PyFloat_AS_DOUBLE(rhs))?
        } else if ffi::PyLong_CheckExact(lhs) != 0 && ffi::PyLong_CheckExact(rhs) != 0 {
            small_int(lhs)?.cmp(&small_int(rhs)?)
        } else if ffi::PyUnicode_CheckExact(lhs) != 0 && ffi::PyUnicode_CheckExact(rhs) != 0 {
            let equal = cpython::_PyUnicode_Equal(lhs, rhs) != 0;
            return match op {
                ffi::Py_EQ => Some(equal),
                ffi::Py_NE => Some(!equal),
                _ => None,
            };
        } else {
            return None;
        };
        use std::cmp::Ordering::*;
        Some(match op {
            ffi::Py_LT => ord == Less,
            ffi::Py_LE => ord != Greater,
            ffi::Py_EQ => ord == Equal,
            ffi::Py_NE => ord != Equal,
            ffi::Py_GT => ord == Greater,
            _ => ord != Less, // Py_GE
        })
    }
}
