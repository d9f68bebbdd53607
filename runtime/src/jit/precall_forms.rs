//! PRECALL's specialized forms (`_Py_Specialize_Precall` in Python/specialize.c, the PRECALL_*
//! targets of Python/ceval.c, 3.11): which form a call site takes, each form's guards, and what
//! each form that calls a C function itself does in place of the generic CALL.
//!
//! Those forms are observable, not only fast: they call the C function directly, so they count
//! a recursion level only where ceval's form does (METH_O and METH_NOARGS), leave the caller's
//! `prev_instr` on PRECALL, and release the arguments in the form's own order. Compiled code
//! runs them in one step through [`C_FORM_HANDLERS`], one monomorphic handler per form that
//! checks the form's guard and runs PRECALL and CALL together; the generic CALL (`ops::pg_call`)
//! runs the same [`run_c_form`] when PRECALL ran a form first.

use super::specialize::Site;
use super::support::{new_bool, peek};
use super::ops::SiteHelper;
use super::{error_at, Sp};
use crate::cpython::{self, ffi, CFunctionObject, InterpreterFrame, MethodDescrObject, ThreadState};
use crate::stats::STATS;
use ffi::PyObject;
use std::os::raw::{c_char, c_int};
use std::sync::atomic::{AtomicPtr, Ordering};

/// The builtins `len` and `isinstance` and the method descriptor `list.append` as the
/// interpreter found them at start-up: ceval's `callable_cache`, which its PRECALL
/// specializations compare callables against.
static CALLABLE_LEN: AtomicPtr<PyObject> = AtomicPtr::new(std::ptr::null_mut());
static CALLABLE_ISINSTANCE: AtomicPtr<PyObject> = AtomicPtr::new(std::ptr::null_mut());
static CALLABLE_LIST_APPEND: AtomicPtr<PyObject> = AtomicPtr::new(std::ptr::null_mut());

/// Fills the callable cache from the `builtins` module and the `list` type; the references are
/// kept for the life of the process, as the interpreter keeps its own.
pub fn init_callable_cache() -> Result<(), String> {
    // SAFETY: called with the GIL held (module initialization).
    unsafe {
        let builtins = ffi::PyImport_ImportModule(b"builtins\0".as_ptr() as *const c_char);
        if builtins.is_null() {
            ffi::PyErr_Clear();
            return Err("cannot import builtins".into());
        }
        let list = std::ptr::addr_of_mut!(ffi::PyList_Type) as *mut PyObject;
        for (slot, owner, name) in [
            (&CALLABLE_LEN, builtins, &b"len\0"[..]),
            (&CALLABLE_ISINSTANCE, builtins, &b"isinstance\0"[..]),
            (&CALLABLE_LIST_APPEND, list, &b"append\0"[..]),
        ] {
            let obj = ffi::PyObject_GetAttrString(owner, name.as_ptr() as *const c_char);
            if obj.is_null() {
                ffi::PyErr_Clear(); // never matched: those calls take the generic path
            } else if slot.compare_exchange(std::ptr::null_mut(), obj, Ordering::Relaxed, Ordering::Relaxed).is_err() {
                ffi::Py_DECREF(obj); // initialized before (the module imported again)
            }
        }
        ffi::Py_DECREF(builtins);
        Ok(())
    }
}

const CALL_KINDS: c_int =
    ffi::METH_VARARGS | ffi::METH_FASTCALL | ffi::METH_NOARGS | ffi::METH_O | ffi::METH_KEYWORDS | ffi::METH_METHOD;

/// PRECALL_PYFUNC's form number: compiled code runs it inline (its guard is the callable's type).
pub const PRECALL_PYFUNC: u8 = PrecallForm::PyFunc as u8;

/// The forms PRECALL_ADAPTIVE specializes to (`_Py_Specialize_Precall`), numbered for a
/// [`Site`]. All but the last two call the C function themselves and skip CALL (`SKIP_CALL`):
/// while they run, the frame's `prev_instr` stays on PRECALL.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum PrecallForm {
    Len = 1,
    IsInstance,
    Str1,
    Type1,
    Tuple1,
    BuiltinClass,
    BuiltinO,
    BuiltinFast,
    BuiltinFastWithKeywords,
    MethodDescriptorNoArgs,
    MethodDescriptorO,
    MethodDescriptorFast,
    MethodDescriptorFastWithKeywords,
    ListAppend,
    PyFunc,
    BoundMethod,
}

impl PrecallForm {
    const ALL: [PrecallForm; 16] = {
        use PrecallForm::*;
        [
            Len, IsInstance, Str1, Type1, Tuple1, BuiltinClass, BuiltinO, BuiltinFast, BuiltinFastWithKeywords,
            MethodDescriptorNoArgs, MethodDescriptorO, MethodDescriptorFast, MethodDescriptorFastWithKeywords,
            ListAppend, PyFunc, BoundMethod,
        ]
    };

    /// From a [`Site`]'s form number (never [`ADAPTIVE`]).
    pub(crate) fn from_u8(form: u8) -> PrecallForm {
        Self::ALL[form as usize - 1]
    }

    pub(crate) fn skips_call(self) -> bool {
        !matches!(self, PrecallForm::PyFunc | PrecallForm::BoundMethod)
    }
}

/// `_Py_Specialize_Precall` (Python/specialize.c): the form PRECALL_ADAPTIVE picks for this
/// call, `None` where it fails. `callable` is what the stack holds before PRECALL unpacks a bound
/// method; `total` counts `self` for a method call; `pops_result` says whether POP_TOP follows the
/// CALL (`list.append` is only specialized then).
///
/// # Safety
/// GIL held; `callable` is a live object.
pub(crate) unsafe fn precall_specialize(
    callable: *mut PyObject,
    total: usize,
    kwnames: *mut PyObject,
    oparg: usize,
    pops_result: impl FnOnce() -> bool,
) -> Option<PrecallForm> {
    // SAFETY: per the contract; types and method definitions are read from live objects.
    unsafe {
        use PrecallForm::*;
        let ty = ffi::Py_TYPE(callable);
        let no_kw = kwnames.is_null();
        if ty == std::ptr::addr_of_mut!(ffi::PyCFunction_Type) {
            ffi::PyCFunction_GetFunction(callable)?;
            return match ffi::PyCFunction_GetFlags(callable) & CALL_KINDS {
                ffi::METH_O if no_kw && total == 1 => {
                    Some(if callable == CALLABLE_LEN.load(Ordering::Relaxed) { Len } else { BuiltinO })
                }
                ffi::METH_FASTCALL if no_kw => Some(
                    if total == 2 && callable == CALLABLE_ISINSTANCE.load(Ordering::Relaxed) { IsInstance } else { BuiltinFast },
                ),
                k if k == ffi::METH_FASTCALL | ffi::METH_KEYWORDS => Some(BuiltinFastWithKeywords),
                _ => None,
            };
        }
        if ty == std::ptr::addr_of_mut!(ffi::PyFunction_Type) {
            return Some(PyFunc);
        }
        if ffi::PyType_Check(callable) != 0 {
            let tp = callable as *mut ffi::PyTypeObject;
            // Both slots are read from type objects, so their addresses compare meaningfully.
            let object_new = (*std::ptr::addr_of!(ffi::PyBaseObject_Type)).tp_new.map(|f| f as usize);
            if (*tp).tp_new.map(|f| f as usize) == object_new || (*tp).tp_flags & ffi::Py_TPFLAGS_IMMUTABLETYPE == 0 {
                return None;
            }
            if total == 1 && no_kw && oparg == 1 {
                if tp == std::ptr::addr_of_mut!(ffi::PyUnicode_Type) {
                    return Some(Str1);
                } else if tp == std::ptr::addr_of_mut!(ffi::PyType_Type) {
                    return Some(Type1);
                } else if tp == std::ptr::addr_of_mut!(ffi::PyTuple_Type) {
                    return Some(Tuple1);
                }
            }
            return (*tp).tp_vectorcall.is_some().then_some(BuiltinClass);
        }
        if ty == std::ptr::addr_of_mut!(ffi::PyMethodDescr_Type) {
            if !no_kw {
                return None;
            }
            let descr = callable as *mut MethodDescrObject;
            return match (*(*descr).d_method).ml_flags & CALL_KINDS {
                ffi::METH_NOARGS => (total == 1).then_some(MethodDescriptorNoArgs),
                ffi::METH_O if total == 2 => Some(
                    if callable == CALLABLE_LIST_APPEND.load(Ordering::Relaxed) && oparg == 1 && pops_result() {
                        ListAppend
                    } else {
                        MethodDescriptorO
                    },
                ),
                ffi::METH_FASTCALL => Some(MethodDescriptorFast),
                k if k == ffi::METH_FASTCALL | ffi::METH_KEYWORDS => Some(MethodDescriptorFastWithKeywords),
                _ => None,
            };
        }
        (ty == std::ptr::addr_of_mut!(cpython::PyMethod_Type)).then_some(BoundMethod)
    }
}

/// The DEOPT_IF guards of the specialized form `form` (Python/ceval.c): whether it runs for
/// this call, or misses and leaves it to the generic PRECALL and CALL.
///
/// # Safety
/// GIL held; `callable` and the `total` arguments at `args` are live objects; `is_meth` says
/// whether LOAD_METHOD put `self` first.
#[inline(always)]
pub(crate) unsafe fn precall_guard(
    form: PrecallForm,
    callable: *mut PyObject,
    args: *mut *mut PyObject,
    total: usize,
    is_meth: bool,
) -> bool {
    // SAFETY: per the contract.
    unsafe {
        use PrecallForm::*;
        let ty = ffi::Py_TYPE(callable);
        let cfunction_flags = || {
            (ty == std::ptr::addr_of_mut!(ffi::PyCFunction_Type)).then(|| (*(*(callable as *mut CFunctionObject)).m_ml).ml_flags)
        };
        // A method descriptor's flags, when `self` (the first argument) is of its exact type.
        let descr_flags = || {
            if ty != std::ptr::addr_of_mut!(ffi::PyMethodDescr_Type) || total == 0 {
                return None;
            }
            let descr = callable as *mut MethodDescrObject;
            (ffi::Py_TYPE(*args) == (*descr).d_type).then(|| (*(*descr).d_method).ml_flags)
        };
        match form {
            Len => total == 1 && callable == CALLABLE_LEN.load(Ordering::Relaxed),
            IsInstance => total == 2 && callable == CALLABLE_ISINSTANCE.load(Ordering::Relaxed),
            Str1 => !is_meth && callable == std::ptr::addr_of_mut!(ffi::PyUnicode_Type) as *mut PyObject,
            Type1 => !is_meth && callable == std::ptr::addr_of_mut!(ffi::PyType_Type) as *mut PyObject,
            Tuple1 => !is_meth && callable == std::ptr::addr_of_mut!(ffi::PyTuple_Type) as *mut PyObject,
            BuiltinClass => {
                ffi::PyType_Check(callable) != 0 && (*(callable as *mut ffi::PyTypeObject)).tp_vectorcall.is_some()
            }
            BuiltinO => total == 1 && cfunction_flags() == Some(ffi::METH_O),
            BuiltinFast => cfunction_flags() == Some(ffi::METH_FASTCALL),
            BuiltinFastWithKeywords => cfunction_flags() == Some(ffi::METH_FASTCALL | ffi::METH_KEYWORDS),
            MethodDescriptorNoArgs => total == 1 && descr_flags() == Some(ffi::METH_NOARGS),
            MethodDescriptorO => total == 2 && descr_flags() == Some(ffi::METH_O),
            MethodDescriptorFast => descr_flags() == Some(ffi::METH_FASTCALL),
            MethodDescriptorFastWithKeywords => descr_flags() == Some(ffi::METH_FASTCALL | ffi::METH_KEYWORDS),
            ListAppend => {
                callable == CALLABLE_LIST_APPEND.load(Ordering::Relaxed) && total == 2 && ffi::PyList_Check(*args) != 0
            }
            PyFunc => ty == std::ptr::addr_of_mut!(ffi::PyFunction_Type),
            BoundMethod => !is_meth && ty == std::ptr::addr_of_mut!(cpython::PyMethod_Type),
        }
    }
}


/// What ceval's forms pass `_Py_EnterRecursiveCallTstate` for the C calls they count.
const RECURSION_WHERE: &[u8] = b" while calling a Python object\0";

/// `_Py_EnterRecursiveCallTstate`: counts one level; true (RecursionError set, the count
/// restored by `_Py_CheckRecursiveCall`) when the limit is reached.
///
/// # Safety
/// GIL held; `t` is the current thread state.
#[inline(always)]
unsafe fn enter_recursive_call(t: *mut ThreadState) -> bool {
    // SAFETY: per the contract.
    unsafe {
        let remaining = (*t).recursion_remaining;
        (*t).recursion_remaining = remaining - 1;
        remaining <= 0 && cpython::_Py_CheckRecursiveCall(t, RECURSION_WHERE.as_ptr() as *const c_char) != 0
    }
}

/// The stack of a call at PRECALL, or at CALL once PRECALL ran: (NULL or a method, the callable
/// or `self`, the arguments).
pub(crate) struct CallShape {
    /// The first slot of the callable pair, where the result goes.
    pub(crate) base: Sp,
    pub(crate) callable: *mut PyObject,
    /// The `total` arguments, `self` first in a method call.
    pub(crate) args: Sp,
    pub(crate) total: usize,
    pub(crate) is_meth: bool,
}

impl CallShape {
    /// # Safety
    /// `oparg + 2` slots on the stack below `sp`.
    #[inline(always)]
    pub(crate) unsafe fn at(sp: Sp, oparg: usize) -> CallShape {
        // SAFETY: per the contract.
        unsafe {
            let base = sp.sub(oparg + 2);
            let is_meth = !(*base).is_null();
            let total = oparg + is_meth as usize;
            CallShape { base, callable: peek(sp, total + 1), args: sp.sub(total), total, is_meth }
        }
    }

    /// The argument `i`.
    #[inline(always)]
    pub(crate) unsafe fn arg(&self, i: usize) -> *mut PyObject {
        // SAFETY: `i < total`, the caller's check.
        unsafe { *self.args.add(i) }
    }

    /// The end of a form that consumed the callable and the arguments: `res` replaces the
    /// callable pair, the stack pointer after it (tagged when `res` is null).
    #[inline(always)]
    pub(crate) unsafe fn push_result(&self, res: *mut PyObject) -> Sp {
        // SAFETY: `base` is on the stack.
        unsafe {
            *self.base = res;
            if res.is_null() { error_at(self.base.add(1)) } else { self.base.add(1) }
        }
    }

    /// `Py_DECREF` of the arguments from `from` on, in order.
    #[inline(always)]
    pub(crate) unsafe fn release_args(&self, from: usize) {
        // SAFETY: the stack owns a reference to each argument.
        unsafe {
            for i in from..self.total {
                ffi::Py_DECREF(self.arg(i));
            }
        }
    }
}

/// Runs the C form `form` (one that [`PrecallForm::skips_call`]) whose guard passed, for a call
/// whose stack is `s` and whose keyword names (forms that take them) are `kwnames`: the C call,
/// the releases in the form's order, and the result in place of the callable pair, as the
/// form's target in ceval. Returns the new stack pointer, tagged when the call raised; where
/// ceval's form jumps to its error label before consuming anything (a recursion limit, `len`
/// failing) the stack is left whole, as ceval leaves it.
///
/// `list.append` pushes None for the POP_TOP after its CALL, which ceval's form skips.
///
/// # Safety
/// GIL held; `t` is the current thread state; the form's guard passed for `s`; `kwnames` is
/// null or a tuple of str naming the last arguments.
#[inline(always)]
pub(crate) unsafe fn run_c_form(t: *mut ThreadState, form: PrecallForm, s: &CallShape, kwnames: *mut PyObject) -> Sp {
    // SAFETY: per the contract: the guard checked each C function's signature (its METH_*
    // flags) and the argument counts the form reads.
    unsafe {
        use PrecallForm::*;
        let nkw = if kwnames.is_null() { 0 } else { ffi::PyTuple_GET_SIZE(kwnames) as usize };
        let callable = s.callable;
        let whole_stack = s.args.add(s.total);
        match form {
            Len => {
                let arg = s.arg(0);
                let n = ffi::PyObject_Length(arg);
                if n < 0 {
                    return error_at(whole_stack);
                }
                let res = ffi::PyLong_FromSsize_t(n);
                ffi::Py_DECREF(callable);
                ffi::Py_DECREF(arg);
                s.push_result(res)
            }
            IsInstance => {
                let (inst, cls) = (s.arg(0), s.arg(1));
                let r = ffi::PyObject_IsInstance(inst, cls);
                if r < 0 {
                    // ceval has popped `cls`.
                    ffi::Py_DECREF(cls);
                    return error_at(whole_stack.sub(1));
                }
                let res = new_bool(r != 0);
                ffi::Py_DECREF(inst);
                ffi::Py_DECREF(cls);
                ffi::Py_DECREF(callable);
                s.push_result(res)
            }
            Str1 | Tuple1 => {
                let arg = s.arg(0);
                let res = if form == Str1 { ffi::PyObject_Str(arg) } else { ffi::PySequence_Tuple(arg) };
                ffi::Py_DECREF(arg);
                ffi::Py_DECREF(callable);
                s.push_result(res)
            }
            Type1 => {
                let obj = s.arg(0);
                let res = ffi::Py_TYPE(obj) as *mut PyObject;
                ffi::Py_INCREF(res);
                ffi::Py_DECREF(callable);
                ffi::Py_DECREF(obj);
                s.push_result(res)
            }
            BuiltinClass => {
                let tp = callable as *mut ffi::PyTypeObject;
                // The guard checked the slot.
                let vectorcall = (*tp).tp_vectorcall.unwrap_unchecked();
                let res = vectorcall(callable, s.args, (s.total - nkw) as usize, kwnames);
                s.release_args(0);
                ffi::Py_DECREF(callable);
                s.push_result(res)
            }
            BuiltinO => {
                let function = callable as *mut CFunctionObject;
                if enter_recursive_call(t) {
                    return error_at(whole_stack);
                }
                let arg = s.arg(0);
                let res = ((*(*function).m_ml).ml_meth.PyCFunction)((*function).m_self, arg);
                (*t).recursion_remaining += 1;
                ffi::Py_DECREF(arg);
                ffi::Py_DECREF(callable);
                s.push_result(res)
            }
            BuiltinFast | BuiltinFastWithKeywords => {
                let function = callable as *mut CFunctionObject;
                let meth = (*(*function).m_ml).ml_meth;
                let res = if form == BuiltinFast {
                    (meth.PyCFunctionFast)((*function).m_self, s.args, s.total as ffi::Py_ssize_t)
                } else {
                    (meth.PyCFunctionFastWithKeywords)((*function).m_self, s.args, (s.total - nkw) as ffi::Py_ssize_t, kwnames)
                };
                s.release_args(0);
                ffi::Py_DECREF(callable);
                s.push_result(res)
            }
            MethodDescriptorNoArgs | MethodDescriptorO => {
                let meth = (*(*(callable as *mut MethodDescrObject)).d_method).ml_meth;
                if enter_recursive_call(t) {
                    return error_at(whole_stack);
                }
                let this = s.arg(0);
                let arg = if form == MethodDescriptorO { s.arg(1) } else { std::ptr::null_mut() };
                let res = (meth.PyCFunction)(this, arg);
                (*t).recursion_remaining += 1;
                ffi::Py_DECREF(this);
                if !arg.is_null() {
                    ffi::Py_DECREF(arg);
                }
                ffi::Py_DECREF(callable);
                s.push_result(res)
            }
            MethodDescriptorFast | MethodDescriptorFastWithKeywords => {
                let meth = (*(*(callable as *mut MethodDescrObject)).d_method).ml_meth;
                let this = s.arg(0);
                let nargs = s.total - 1;
                let res = if form == MethodDescriptorFast {
                    (meth.PyCFunctionFast)(this, s.args.add(1), nargs as ffi::Py_ssize_t)
                } else {
                    (meth.PyCFunctionFastWithKeywords)(this, s.args.add(1), (nargs - nkw) as ffi::Py_ssize_t, kwnames)
                };
                s.release_args(1);
                ffi::Py_DECREF(this);
                ffi::Py_DECREF(callable);
                s.push_result(res)
            }
            ListAppend => {
                let (list, arg) = (s.arg(0), s.arg(1));
                // `_PyList_AppendTakeRef`: the list takes the stack's reference to `arg`.
                let failed = ffi::PyList_Append(list, arg) < 0;
                ffi::Py_DECREF(arg);
                if failed {
                    return error_at(whole_stack.sub(1));
                }
                ffi::Py_DECREF(list);
                ffi::Py_DECREF(callable);
                let none = ffi::Py_None();
                ffi::Py_INCREF(none);
                s.push_result(none)
            }
            PyFunc | BoundMethod => unreachable!("PRECALL_PYFUNC and PRECALL_BOUND_METHOD leave the call to CALL"),
        }
    }
}

/// PRECALL and CALL in one step at a site (without keywords) running the C form `FORM`: if the
/// form's guard passes, what ceval's form does, with `prev_instr` on PRECALL as there; else
/// null, having changed nothing, and PRECALL and CALL then run as usual and count the miss. A
/// form that hits changes nothing in the site (`Site::execute`). Stack: as CALL leaves it,
/// tagged when the call raised.
unsafe extern "C" fn c_form<const FORM: u8>(
    t: *mut ThreadState,
    frame: *mut InterpreterFrame,
    sp: Sp,
    oparg: u32,
    site: *const Site,
) -> Sp {
    // SAFETY: oparg + 2 slots on the stack; `site` is this PRECALL's, owned by the compiled code,
    // which runs with the GIL held on thread state `t`.
    unsafe {
        let form = PrecallForm::from_u8(FORM);
        let s = CallShape::at(sp, oparg as usize);
        if !precall_guard(form, s.callable, s.args, s.total, s.is_meth) {
            return std::ptr::null_mut();
        }
        (*frame).prev_instr = (*site).unit;
        STATS.baseline.direct_c_calls.add_with_gil(1);
        run_c_form(t, form, &s, std::ptr::null_mut())
    }
}

/// The handler of a site whose form calls no C function (adaptive, PRECALL_PYFUNC,
/// PRECALL_BOUND_METHOD): always a miss.
unsafe extern "C" fn no_c_form(_t: *mut ThreadState, _f: *mut InterpreterFrame, _sp: Sp, _o: u32, _s: *const Site) -> Sp {
    std::ptr::null_mut()
}

/// By a site's form number: the handler compiled code calls at a warm PRECALL without keywords
/// ([`c_form`] for the forms that call a C function, else [`no_c_form`]).
pub static C_FORM_HANDLERS: [SiteHelper; 17] = {
    use PrecallForm::*;
    [
        no_c_form,
        c_form::<{ Len as u8 }>,
        c_form::<{ IsInstance as u8 }>,
        c_form::<{ Str1 as u8 }>,
        c_form::<{ Type1 as u8 }>,
        c_form::<{ Tuple1 as u8 }>,
        c_form::<{ BuiltinClass as u8 }>,
        c_form::<{ BuiltinO as u8 }>,
        c_form::<{ BuiltinFast as u8 }>,
        c_form::<{ BuiltinFastWithKeywords as u8 }>,
        c_form::<{ MethodDescriptorNoArgs as u8 }>,
        c_form::<{ MethodDescriptorO as u8 }>,
        c_form::<{ MethodDescriptorFast as u8 }>,
        c_form::<{ MethodDescriptorFastWithKeywords as u8 }>,
        c_form::<{ ListAppend as u8 }>,
        no_c_form,
        no_c_form,
    ]
};
