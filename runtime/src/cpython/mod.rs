//! CPython 3.11 bindings in one place.
//!
//! The public C API comes from `pyo3-ffi` (re-exported as [`ffi`]). The internal structs a JIT must
//! read and write (`_PyInterpreterFrame`, `_PyCFrame`, `PyCodeObject`, `PyGenObject`, the prefix of
//! `PyThreadState`, `_ceval_state`) are not described by pyo3-ffi, so they are written out by hand in
//! [`layout`]; `runtime/tests/layout.rs` checks every offset against the C compiler's `offsetof` on
//! the installed headers.

pub mod layout;

pub use pyo3_ffi as ffi;

use std::os::raw::c_int;

pub use layout::{
    CFrame, CFunctionObject, CellObject, CevalState, CodeObject, FrameObject, FunctionObject, GenObject, InterpreterFrame,
    MethodDescrObject, MethodObject, StackChunk, ThreadState,
};

/// `PyObject *f(PyThreadState *tstate, _PyInterpreterFrame *frame, int throwflag)`: the PEP 523
/// frame-evaluation function type of 3.11.
pub type EvalFrameFn =
    unsafe extern "C" fn(*mut ThreadState, *mut InterpreterFrame, c_int) -> *mut ffi::PyObject;

/// `void free(void *)`, as `_PyEval_RequestCodeExtraIndex` takes it.
pub type FreeFunc = unsafe extern "C" fn(*mut std::ffi::c_void);

// Exported from libpython3.11 but private (underscore) API, so pyo3-ffi does not declare them.
// Checked with `nm -D --defined-only libpython3.11.so` (shared/design/cpython-3.11.md).
extern "C" {
    pub fn _PyEval_EvalFrameDefault(
        tstate: *mut ThreadState,
        frame: *mut InterpreterFrame,
        throwflag: c_int,
    ) -> *mut ffi::PyObject;
    pub fn _PyInterpreterState_SetEvalFrameFunc(
        interp: *mut ffi::PyInterpreterState,
        eval_frame: EvalFrameFn,
    );
    pub fn _PyInterpreterState_GetEvalFrameFunc(
        interp: *mut ffi::PyInterpreterState,
    ) -> EvalFrameFn;
    pub fn _PyEval_RequestCodeExtraIndex(free: FreeFunc) -> ffi::Py_ssize_t;
    pub fn _PyCode_GetExtra(
        code: *mut ffi::PyObject,
        index: ffi::Py_ssize_t,
        extra: *mut *mut std::ffi::c_void,
    ) -> c_int;
    /// `_Py_EnterRecursiveCallTstate`'s slow path, once `recursion_remaining` ran out: raises
    /// RecursionError (and restores the count) unless the interpreter's limit was raised since.
    pub fn _Py_CheckRecursiveCall(tstate: *mut ThreadState, where_: *const std::os::raw::c_char) -> c_int;
    /// Deallocates an object whose reference count reached zero (what `Py_DECREF` calls).
    pub fn _Py_Dealloc(op: *mut ffi::PyObject);
    /// The canonical bytecode (`co.co_code`): a new reference to a bytes object.
    pub fn PyCode_GetCode(code: *mut CodeObject) -> *mut ffi::PyObject;
    /// Equality of two str objects (no error for exact strs).
    pub fn _PyUnicode_Equal(a: *mut ffi::PyObject, b: *mut ffi::PyObject) -> c_int;
    /// Raises KeyError(key), wrapping a tuple key so it is not taken as the exception's args.
    pub fn _PyErr_SetKeyError(key: *mut ffi::PyObject);
    pub fn _PyLong_AsInt(obj: *mut ffi::PyObject) -> c_int;
    pub fn _PyDict_NewPresized(minused: ffi::Py_ssize_t) -> *mut ffi::PyObject;
    /// `_PyDict_FromItems(&kwnames[0], 1, values, 1, len(kwnames))` (Objects/call.c): the
    /// only exported way to ceval's BUILD_MAP/BUILD_CONST_KEY_MAP dict constructor. It reads
    /// `kwnames`'s `ob_size` and the address of `ob_item`, nothing else (the 3.11 source, and
    /// the 3.11.7 binary's six instructions); a new reference, or null with an exception set.
    pub fn _PyStack_AsDict(values: *const *mut ffi::PyObject, kwnames: *mut ffi::PyObject) -> *mut ffi::PyObject;
    /// `separator.join(items[:seqlen])` straight from an array (what ceval's BUILD_STRING
    /// calls): a new reference, or null with an exception set.
    pub fn _PyUnicode_JoinArray(
        separator: *mut ffi::PyObject,
        items: *const *mut ffi::PyObject,
        seqlen: ffi::Py_ssize_t,
    ) -> *mut ffi::PyObject;
    pub fn _PyObject_GetMethod(
        obj: *mut ffi::PyObject,
        name: *mut ffi::PyObject,
        method: *mut *mut ffi::PyObject,
    ) -> c_int;
    pub static mut PyMethod_Type: ffi::PyTypeObject;
    pub static mut PyCoro_Type: ffi::PyTypeObject;
    pub static mut PyGen_Type: ffi::PyTypeObject;
    pub static mut PyAsyncGen_Type: ffi::PyTypeObject;
    pub static mut _PyAsyncGenWrappedValue_Type: ffi::PyTypeObject;
    pub fn _PyObject_GC_New(tp: *mut ffi::PyTypeObject) -> *mut ffi::PyObject;
    /// The attribute `name` found along the type's MRO (a borrowed reference), or null; sets no
    /// error.
    pub fn _PyType_Lookup(tp: *mut ffi::PyTypeObject, name: *mut ffi::PyObject) -> *mut ffi::PyObject;
    pub fn _PyObject_LookupSpecial(obj: *mut ffi::PyObject, name: *mut ffi::PyObject) -> *mut ffi::PyObject;
    pub fn _PyErr_FormatFromCause(exc: *mut ffi::PyObject, format: *const std::os::raw::c_char, ...) -> *mut ffi::PyObject;
    /// `PyObject_GC_NewVar`: a GC object of `tp` with `n` items, not yet tracked; null with
    /// MemoryError set.
    pub fn _PyObject_GC_NewVar(tp: *mut ffi::PyTypeObject, n: ffi::Py_ssize_t) -> *mut ffi::PyVarObject;
    /// StopIteration carrying `value` (wrapped when it is a tuple or an exception); 0, or -1
    /// when making the exception failed.
    pub fn _PyGen_SetStopIterationValue(value: *mut ffi::PyObject) -> c_int;
    /// The runtime state; only `ceval.signals_pending` is read (see layout.rs).
    pub static mut _PyRuntime: u8;
    pub fn _PyCode_SetExtra(
        code: *mut ffi::PyObject,
        index: ffi::Py_ssize_t,
        extra: *mut std::ffi::c_void,
    ) -> c_int;
}

/// Reference accounting of a `Py_REF_DEBUG` interpreter (a `Py_DEBUG` build such as Debian's
/// `python3.11d`): there every `Py_INCREF`/`Py_DECREF` also moves the global `_Py_RefTotal`,
/// which `sys.gettotalrefcount()` reports and `python -m test -R` uses to find leaks. Rust code
/// gets this from pyo3-ffi; machine code that adjusts reference counts inline must do the same,
/// or C code and compiled code disagree about the total. Decided when the extension is built
/// (`build.rs`), because a debug interpreter only loads extensions built for it.
pub mod ref_debug {
    /// Whether the interpreter this extension is built for keeps `_Py_RefTotal`.
    pub const ENABLED: bool = cfg!(py_sys_config = "Py_REF_DEBUG");

    #[cfg(py_sys_config = "Py_REF_DEBUG")]
    extern "C" {
        static mut _Py_RefTotal: super::ffi::Py_ssize_t;
    }

    /// The address of `_Py_RefTotal`, or 0 when the interpreter does not keep it.
    pub fn total_addr() -> usize {
        #[cfg(py_sys_config = "Py_REF_DEBUG")]
        {
            // Only the address is taken (no unsafe needed); libpython defines the variable in
            // debug builds.
            std::ptr::addr_of_mut!(_Py_RefTotal) as usize
        }
        #[cfg(not(py_sys_config = "Py_REF_DEBUG"))]
        {
            0
        }
    }

    /// `Py_DECREF` as a function (`Py_DecRef`, part of the stable ABI): in a debug build it also
    /// moves the total and checks for a negative count, as the header's inline form does there.
    pub fn decref_fn() -> usize {
        super::ffi::Py_DecRef as *const () as usize
    }
}

/// Code flags this project reads (Include/cpython/code.h).
pub mod co_flags {
    pub const CO_OPTIMIZED: i32 = 0x0001;
    pub const CO_NEWLOCALS: i32 = 0x0002;
    pub const CO_VARARGS: i32 = 0x0004;
    pub const CO_VARKEYWORDS: i32 = 0x0008;
    pub const CO_NESTED: i32 = 0x0010;
    pub const CO_GENERATOR: i32 = 0x0020;
    pub const CO_COROUTINE: i32 = 0x0080;
    pub const CO_ITERABLE_COROUTINE: i32 = 0x0100;
    pub const CO_ASYNC_GENERATOR: i32 = 0x0200;
    /// Frames of code with any of these flags are suspended and resumed mid-way.
    pub const RESUMABLE: i32 = CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR | CO_ITERABLE_COROUTINE;
}

/// `gi_frame_state` values (Include/internal/pycore_frame.h).
pub mod frame_state {
    pub const CREATED: i8 = -2;
    pub const SUSPENDED: i8 = -1;
    pub const EXECUTING: i8 = 0;
    pub const COMPLETED: i8 = 1;
    pub const CLEARED: i8 = 4;
}

/// Specialized opcodes the JIT must recognise in `co_code_adaptive` (Include/opcode.h).
pub mod specialized {
    pub const RESUME_QUICK: u8 = 150;
}

/// `_PyAsyncGenWrappedValue` (Objects/genobject.c; not in the installed headers, so its layout
/// is taken from the 3.11 source: the object header and the wrapped value).
#[repr(C)]
pub struct AsyncGenWrappedValue {
    pub ob_refcnt: ffi::Py_ssize_t,
    pub ob_type: *mut ffi::PyTypeObject,
    pub agw_val: *mut ffi::PyObject,
}

/// `_PyInterpreterFrame.owner` values (Include/internal/pycore_frame.h).
pub mod frame_owner {
    pub const OWNED_BY_THREAD: i8 = 0;
    pub const OWNED_BY_GENERATOR: i8 = 1;
    pub const OWNED_BY_FRAME_OBJECT: i8 = 2;
}
