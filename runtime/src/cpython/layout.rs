//! Hand-written `#[repr(C)]` copies of CPython 3.11 internal structs.
//!
//! Only the fields the JIT touches are named; a struct whose tail we never read is declared as a
//! prefix (documented on the type). Every field listed in [`FIELDS`] is compared with the C
//! compiler's `offsetof` by `runtime/tests/layout.rs`, so a header change fails the tests instead of
//! corrupting memory.

use super::ffi::{self, PyObject, Py_ssize_t};
use std::mem::offset_of;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::atomic::AtomicI32;

/// `_PyInterpreterFrame` (Include/internal/pycore_frame.h). `localsplus` is a flexible array:
/// locals, then cells and free variables, then the value stack.
#[repr(C)]
pub struct InterpreterFrame {
    pub f_func: *mut PyObject,
    pub f_globals: *mut PyObject,
    pub f_builtins: *mut PyObject,
    pub f_locals: *mut PyObject,
    pub f_code: *mut CodeObject,
    pub frame_obj: *mut PyObject,
    pub previous: *mut InterpreterFrame,
    /// The code unit *before* the next instruction, inside `co_code_adaptive`.
    pub prev_instr: *mut u16,
    /// Offset of the top of the value stack from `localsplus`; -1 while ceval runs the frame.
    pub stacktop: c_int,
    pub is_entry: bool,
    pub owner: c_char,
    pub localsplus: [*mut PyObject; 1],
}

/// `_PyCFrame` (Include/cpython/pystate.h): threaded through the C stack by every evaluation loop.
#[repr(C)]
pub struct CFrame {
    /// 0 or 255: non-zero while sys.settrace / sys.setprofile is active.
    pub use_tracing: u8,
    pub current_frame: *mut InterpreterFrame,
    pub previous: *mut CFrame,
}

/// Prefix of `struct _ts` (`PyThreadState`, Include/cpython/pystate.h) up to `datastack_limit`.
#[repr(C)]
pub struct ThreadState {
    pub prev: *mut ThreadState,
    pub next: *mut ThreadState,
    pub interp: *mut c_void,
    pub _initialized: c_int,
    pub _static: c_int,
    pub recursion_remaining: c_int,
    pub recursion_limit: c_int,
    pub recursion_headroom: c_int,
    pub tracing: c_int,
    pub tracing_what: c_int,
    pub cframe: *mut CFrame,
    pub c_profilefunc: *mut c_void,
    pub c_tracefunc: *mut c_void,
    pub c_profileobj: *mut PyObject,
    pub c_traceobj: *mut PyObject,
    pub curexc_type: *mut PyObject,
    pub curexc_value: *mut PyObject,
    pub curexc_traceback: *mut PyObject,
    pub exc_info: *mut c_void,
    pub dict: *mut PyObject,
    pub gilstate_counter: c_int,
    pub async_exc: *mut PyObject,
    pub thread_id: std::os::raw::c_ulong,
    pub native_thread_id: std::os::raw::c_ulong,
    pub trash_delete_nesting: c_int,
    pub trash_delete_later: *mut PyObject,
    pub on_delete: *mut c_void,
    pub on_delete_data: *mut c_void,
    pub coroutine_origin_tracking_depth: c_int,
    pub async_gen_firstiter: *mut PyObject,
    pub async_gen_finalizer: *mut PyObject,
    pub context: *mut PyObject,
    pub context_ver: u64,
    pub id: u64,
    /// `PyTraceInfo`: a code object pointer and a `PyCodeAddressRange`, never read here.
    pub trace_info: [u64; 6],
    /// The data stack that frames are pushed on: the current chunk, its first free slot and its
    /// end (`_PyThreadState_BumpFramePointer` pushes while `top + size < limit`).
    pub datastack_chunk: *mut StackChunk,
    pub datastack_top: *mut *mut PyObject,
    pub datastack_limit: *mut *mut PyObject,
}

/// `_PyStackChunk` (Include/cpython/pystate.h): one chunk of a thread's frame data stack.
#[repr(C)]
pub struct StackChunk {
    pub previous: *mut StackChunk,
    pub size: usize,
    pub top: usize,
    pub data: [*mut PyObject; 1],
}

/// `PyCodeObject` (Include/cpython/code.h, `_PyCode_DEF`), up to the start of `co_code_adaptive`.
#[repr(C)]
pub struct CodeObject {
    pub ob_refcnt: Py_ssize_t,
    pub ob_type: *mut c_void,
    pub ob_size: Py_ssize_t,
    pub co_consts: *mut PyObject,
    pub co_names: *mut PyObject,
    pub co_exceptiontable: *mut PyObject,
    pub co_flags: c_int,
    pub co_warmup: i16,
    pub _co_linearray_entry_size: i16,
    pub co_argcount: c_int,
    pub co_posonlyargcount: c_int,
    pub co_kwonlyargcount: c_int,
    pub co_stacksize: c_int,
    pub co_firstlineno: c_int,
    pub co_nlocalsplus: c_int,
    pub co_nlocals: c_int,
    pub co_nplaincellvars: c_int,
    pub co_ncellvars: c_int,
    pub co_nfreevars: c_int,
    pub co_localsplusnames: *mut PyObject,
    pub co_localspluskinds: *mut PyObject,
    pub co_filename: *mut PyObject,
    pub co_name: *mut PyObject,
    pub co_qualname: *mut PyObject,
    pub co_linetable: *mut PyObject,
    pub co_weakreflist: *mut PyObject,
    pub _co_code: *mut PyObject,
    pub _co_linearray: *mut c_char,
    pub _co_firsttraceable: c_int,
    pub co_extra: *mut c_void,
    /// Flexible array: the quickened (adaptive) bytecode, caches included.
    pub co_code_adaptive: [u16; 0],
}

/// `_PyErr_StackItem`: one entry of the exception stack.
#[repr(C)]
pub struct ErrStackItem {
    pub exc_value: *mut PyObject,
    pub previous_item: *mut ErrStackItem,
}

/// `PyGenObject` (Include/cpython/genobject.h); coroutines and async generators share the layout.
#[repr(C)]
pub struct GenObject {
    pub ob_refcnt: Py_ssize_t,
    pub ob_type: *mut c_void,
    pub gi_code: *mut CodeObject,
    pub gi_weakreflist: *mut PyObject,
    pub gi_name: *mut PyObject,
    pub gi_qualname: *mut PyObject,
    pub gi_exc_state: ErrStackItem,
    pub gi_origin_or_finalizer: *mut PyObject,
    pub gi_hooks_inited: c_char,
    pub gi_closed: c_char,
    pub gi_running_async: c_char,
    pub gi_frame_state: i8,
    /// The generator's own `_PyInterpreterFrame` lives here.
    pub gi_iframe: [*mut PyObject; 1],
}

/// `PyCellObject` (Include/cpython/cellobject.h).
#[repr(C)]
pub struct CellObject {
    pub ob_refcnt: Py_ssize_t,
    pub ob_type: *mut c_void,
    /// The content, or null when empty.
    pub ob_ref: *mut PyObject,
}

/// `PyMethodObject` (Include/cpython/classobject.h), up to `im_self`.
#[repr(C)]
pub struct MethodObject {
    pub ob_refcnt: Py_ssize_t,
    pub ob_type: *mut c_void,
    pub im_func: *mut PyObject,
    pub im_self: *mut PyObject,
}

/// `PyCFunctionObject` (Include/cpython/methodobject.h), up to `m_self`: a builtin function
/// such as `len` or a bound method of a C type such as `[].append`.
#[repr(C)]
pub struct CFunctionObject {
    pub ob_refcnt: Py_ssize_t,
    pub ob_type: *mut c_void,
    /// The method definition: the C function and its `METH_*` flags.
    pub m_ml: *mut ffi::PyMethodDef,
    /// What the C function gets as its first argument (`PyCFunction_GET_SELF` without
    /// METH_STATIC, which no form admits).
    pub m_self: *mut PyObject,
}

/// `PyMethodDescrObject` (Include/cpython/descrobject.h), up to `d_method`: a method of a
/// builtin type such as `list.append`, as `LOAD_METHOD` finds it.
#[repr(C)]
pub struct MethodDescrObject {
    pub ob_refcnt: Py_ssize_t,
    pub ob_type: *mut c_void,
    /// `d_common.d_type`: the type the method belongs to.
    pub d_type: *mut ffi::PyTypeObject,
    pub d_name: *mut PyObject,
    pub d_qualname: *mut PyObject,
    pub d_method: *mut ffi::PyMethodDef,
}

/// `PyFunctionObject` (Include/cpython/funcobject.h), up to `func_version`.
#[repr(C)]
pub struct FunctionObject {
    pub ob_refcnt: Py_ssize_t,
    pub ob_type: *mut c_void,
    pub func_globals: *mut PyObject,
    pub func_builtins: *mut PyObject,
    pub func_name: *mut PyObject,
    pub func_qualname: *mut PyObject,
    pub func_code: *mut PyObject,
    pub func_defaults: *mut PyObject,
    pub func_kwdefaults: *mut PyObject,
    pub func_closure: *mut PyObject,
    pub func_doc: *mut PyObject,
    pub func_dict: *mut PyObject,
    pub func_weakreflist: *mut PyObject,
    pub func_module: *mut PyObject,
    pub func_annotations: *mut PyObject,
    pub vectorcall: *mut c_void,
    /// The specializer's version of the function; 0 until it asks for one.
    pub func_version: u32,
}

/// `PyFrameObject` (`struct _frame`, Include/internal/pycore_frame.h): what ceval's `call_trace`
/// and `maybe_call_line_trace` read and write, and the frame data a frame object owns once the
/// frame it was made for has finished while the object is still referenced (`take_ownership`).
#[repr(C)]
pub struct FrameObject {
    pub ob_refcnt: Py_ssize_t,
    pub ob_type: *mut c_void,
    pub f_back: *mut PyObject,
    pub f_frame: *mut InterpreterFrame,
    pub f_trace: *mut PyObject,
    /// Non-zero only while a trace function runs (`call_trace` sets it); else computed.
    pub f_lineno: c_int,
    pub f_trace_lines: c_char,
    pub f_trace_opcodes: c_char,
    pub f_fast_as_locals: c_char,
    /// Flexible array: an `_PyInterpreterFrame` owned by the frame object.
    pub _f_frame_data: [*mut PyObject; 1],
}

/// `PyDictObject` (Include/cpython/dictobject.h), up to `ma_values`. `ma_version_tag` is PEP
/// 509's: a number from one global counter, taken afresh by every change of any dict, so equal
/// tags mean the same dict in the same state (inline caches of globals and modules key on it).
#[repr(C)]
pub struct DictObject {
    pub ob_refcnt: Py_ssize_t,
    pub ob_type: *mut c_void,
    pub ma_used: Py_ssize_t,
    pub ma_version_tag: u64,
    pub ma_keys: *mut DictKeysObject,
    pub ma_values: *mut PyObject,
}

/// `PyDictKeysObject` (`struct _dictkeysobject`, Include/internal/pycore_dict.h), up to its
/// index table. A type's shared keys (`ht_cached_keys`) only ever grow: entries are appended,
/// never removed, so a key absent while `dk_nentries` is unchanged is still absent.
#[repr(C)]
pub struct DictKeysObject {
    pub dk_refcnt: Py_ssize_t,
    pub dk_log2_size: u8,
    pub dk_log2_index_bytes: u8,
    pub dk_kind: u8,
    pub dk_version: u32,
    pub dk_usable: Py_ssize_t,
    pub dk_nentries: Py_ssize_t,
    /// Flexible: `1 << dk_log2_index_bytes` bytes of indices, then the entries.
    pub dk_indices: [u8; 0],
}

/// `dk_kind` of keys whose entries are `PyDictKeyEntry`s (with a hash); every other kind
/// (`DICT_KEYS_UNICODE`, `DICT_KEYS_SPLIT`: all keys strs) has `PyDictUnicodeEntry`s.
pub const DICT_KEYS_GENERAL: u8 = 0;
/// `dk_kind` of keys of a combined table whose keys are all strs (`PyDictUnicodeEntry`s holding
/// their values; not shared with other dicts).
pub const DICT_KEYS_UNICODE: u8 = 1;

/// Constants of CPython's headers, checked like the offsets: name, C expression, our value.
pub const CONSTANTS: &[(&str, &str, isize)] = &[
    ("DICT_KEYS_GENERAL", "(Py_ssize_t)DICT_KEYS_GENERAL", DICT_KEYS_GENERAL as isize),
    ("DICT_KEYS_UNICODE", "(Py_ssize_t)DICT_KEYS_UNICODE", DICT_KEYS_UNICODE as isize),
];

/// `PyDictUnicodeEntry` (Include/internal/pycore_dict.h).
#[repr(C)]
pub struct DictUnicodeEntry {
    pub me_key: *mut PyObject,
    pub me_value: *mut PyObject,
}

/// `PyModuleObject` (Include/internal/pycore_moduleobject.h), up to `md_dict`.
#[repr(C)]
pub struct ModuleObject {
    pub ob_refcnt: Py_ssize_t,
    pub ob_type: *mut c_void,
    pub md_dict: *mut PyObject,
}

/// `PyMemberDescrObject` (Include/cpython/descrobject.h): a `__slots__` entry or a member of a
/// builtin type.
#[repr(C)]
pub struct MemberDescrObject {
    pub ob_refcnt: Py_ssize_t,
    pub ob_type: *mut c_void,
    pub d_type: *mut ffi::PyTypeObject,
    pub d_name: *mut PyObject,
    pub d_qualname: *mut PyObject,
    pub d_member: *mut MemberDef,
}

/// `PyMemberDef` (Include/structmember.h).
#[repr(C)]
pub struct MemberDef {
    pub name: *const c_char,
    pub type_: c_int,
    pub offset: Py_ssize_t,
    pub flags: c_int,
    pub doc: *const c_char,
}

/// `T_OBJECT_EX` and `READONLY` (Include/structmember.h): an object member that raises
/// AttributeError when unset, and the flag of a member that cannot be assigned.
pub const T_OBJECT_EX: c_int = 16;
pub const MEMBER_READONLY: c_int = 1;

/// Where an object of a type with `Py_TPFLAGS_MANAGED_DICT` keeps its attributes, before its
/// header (Include/internal/pycore_object.h, `_PyObject_ValuesPointer` and
/// `_PyObject_ManagedDictPointer`): the values array (slots indexed as the type's shared keys),
/// then the dict once one was made. Checked with the C compiler by runtime/tests/layout.rs.
pub const MANAGED_VALUES_OFFSET: isize = -32;
pub const MANAGED_DICT_OFFSET: isize = -24;

/// `struct _ceval_state` (Include/internal/pycore_interp.h), up to `pending.async_exc`.
#[repr(C)]
pub struct CevalState {
    pub recursion_limit: c_int,
    /// Non-zero when the eval loop must leave its fast path (signals, pending calls, GIL drop).
    pub eval_breaker: AtomicI32,
    pub gil_drop_request: AtomicI32,
    /// `pending.lock`
    pub pending_lock: *mut c_void,
    /// `pending.calls_to_do`
    pub pending_calls_to_do: AtomicI32,
    /// `pending.async_exc`: "look at tstate->async_exc"; cleared when it is raised.
    pub pending_async_exc: c_int,
}

/// `offsetof(PyInterpreterState, ceval)`. `struct _is` is large and we read nothing else from it,
/// so only this offset is kept (checked like the fields).
pub const INTERP_CEVAL_OFFSET: usize = 96;

/// `offsetof(PyInterpreterState, import_func)`: the original `builtins.__import__`, which
/// IMPORT_NAME bypasses when the frame's builtins still hold it.
pub const INTERP_IMPORT_FUNC_OFFSET: usize = 1416;

/// `offsetof(PyInterpreterState, eval_frame)`: the PEP 523 frame-evaluation function, NULL for
/// the default one. Direct calls read it to tell whether the hook in place is ours.
pub const INTERP_EVAL_FRAME_OFFSET: usize = 1424;

/// `offsetof(PyLongObject, ob_digit)`: an int's first 30-bit digit (`uint32_t`), which with the
/// sign in `ob_size` is the whole value of an int of at most one digit.
pub const LONG_DIGIT_OFFSET: usize = 24;

/// `offsetof(_PyRuntimeState, ceval.signals_pending)`: set when a signal arrived and its Python
/// handler has not run yet.
pub const RUNTIME_SIGNALS_PENDING_OFFSET: usize = 352;

/// One checked field: C type name, C field path, and our offset for it.
pub struct FieldCheck {
    pub c_type: &'static str,
    pub c_field: &'static str,
    pub offset: usize,
}

macro_rules! fields {
    ($( $cty:literal, $rust:ty => [$( $field:ident ),* $(,)?] );* $(;)?) => {
        &[ $( $( FieldCheck {
            c_type: $cty,
            c_field: stringify!($field),
            offset: offset_of!($rust, $field),
        }, )* )* ]
    };
}

/// Every hand-written field whose offset must equal the C compiler's.
pub const FIELDS: &[FieldCheck] = fields! {
    "_PyInterpreterFrame", InterpreterFrame => [f_func, f_globals, f_builtins, f_locals, f_code,
        frame_obj, previous, prev_instr, stacktop, is_entry, owner, localsplus];
    "_PyCFrame", CFrame => [use_tracing, current_frame, previous];
    "PyThreadState", ThreadState => [prev, next, interp, recursion_remaining, recursion_limit,
        recursion_headroom, tracing, tracing_what, cframe, c_profilefunc, c_tracefunc,
        c_profileobj, c_traceobj, curexc_type, curexc_value, curexc_traceback, exc_info, dict,
        gilstate_counter, async_exc, thread_id, native_thread_id, trash_delete_nesting,
        trash_delete_later, on_delete, on_delete_data, coroutine_origin_tracking_depth,
        async_gen_firstiter, async_gen_finalizer, context, context_ver, id, trace_info,
        datastack_chunk, datastack_top, datastack_limit];
    "_PyStackChunk", StackChunk => [previous, size, top, data];
    "PyCodeObject", CodeObject => [co_consts, co_names, co_exceptiontable, co_flags, co_warmup,
        co_argcount, co_posonlyargcount, co_kwonlyargcount, co_stacksize, co_firstlineno,
        co_nlocalsplus, co_nlocals, co_nplaincellvars, co_ncellvars, co_nfreevars,
        co_localsplusnames, co_localspluskinds, co_filename, co_name, co_qualname, co_linetable,
        co_weakreflist, _co_code, _co_linearray, _co_firsttraceable, co_extra, co_code_adaptive];
    "PyGenObject", GenObject => [gi_code, gi_weakreflist, gi_name, gi_qualname, gi_exc_state,
        gi_origin_or_finalizer, gi_hooks_inited, gi_closed, gi_running_async, gi_frame_state,
        gi_iframe];
    "PyCellObject", CellObject => [ob_ref];
    "PyMethodObject", MethodObject => [im_func, im_self];
    "PyMethodDescrObject", MethodDescrObject => [d_method];
    "PyCFunctionObject", CFunctionObject => [m_ml, m_self];
    "PyFunctionObject", FunctionObject => [func_globals, func_builtins, func_name, func_qualname,
        func_code, func_defaults, func_kwdefaults, func_closure, func_doc, func_dict,
        func_weakreflist, func_module, func_annotations, vectorcall, func_version];
    "PyFrameObject", FrameObject => [f_back, f_frame, f_trace, f_lineno, f_trace_lines, f_trace_opcodes,
        f_fast_as_locals, _f_frame_data];
    "struct _ceval_state", CevalState => [recursion_limit, eval_breaker, gil_drop_request];
    "PyDictObject", DictObject => [ma_used, ma_version_tag, ma_keys, ma_values];
    "PyDictKeysObject", DictKeysObject => [dk_refcnt, dk_log2_size, dk_log2_index_bytes, dk_kind,
        dk_version, dk_usable, dk_nentries, dk_indices];
    "PyDictUnicodeEntry", DictUnicodeEntry => [me_key, me_value];
    "PyModuleObject", ModuleObject => [md_dict];
    "PyMemberDescrObject", MemberDescrObject => [d_member];
    "PyMemberDef", MemberDef => [name, offset, flags, doc];
};

/// Whole-struct sizes that must match `sizeof` (only for structs declared completely).
pub const SIZES: &[(&str, usize)] = &[
    ("_PyInterpreterFrame", std::mem::size_of::<InterpreterFrame>()),
    ("_PyCFrame", std::mem::size_of::<CFrame>()),
    ("_PyErr_StackItem", std::mem::size_of::<ErrStackItem>()),
    ("PyCellObject", std::mem::size_of::<CellObject>()),
    ("PyDictUnicodeEntry", std::mem::size_of::<DictUnicodeEntry>()),
    ("PyMemberDef", std::mem::size_of::<MemberDef>()),
    ("PyTraceInfo", std::mem::size_of::<[u64; 6]>()),
];

/// Extra offsets that are not fields of a struct declared here.
pub const OFFSETS: &[(&str, &str, usize)] = &[
    ("PyInterpreterState", "ceval", INTERP_CEVAL_OFFSET),
    ("PyInterpreterState", "import_func", INTERP_IMPORT_FUNC_OFFSET),
    ("PyInterpreterState", "eval_frame", INTERP_EVAL_FRAME_OFFSET),
    ("struct _longobject", "ob_digit", LONG_DIGIT_OFFSET),
    ("_PyRuntimeState", "ceval.signals_pending", RUNTIME_SIGNALS_PENDING_OFFSET),
    ("PyMethodDescrObject", "d_common.d_type", offset_of!(MethodDescrObject, d_type)),
    ("PyMethodDescrObject", "d_common.d_name", offset_of!(MethodDescrObject, d_name)),
    ("PyMethodDescrObject", "d_common.d_qualname", offset_of!(MethodDescrObject, d_qualname)),
    ("struct _ceval_state", "pending.lock", offset_of!(CevalState, pending_lock)),
    ("struct _ceval_state", "pending.calls_to_do", offset_of!(CevalState, pending_calls_to_do)),
    ("struct _ceval_state", "pending.async_exc", offset_of!(CevalState, pending_async_exc)),
    ("PyMemberDef", "type", offset_of!(MemberDef, type_)),
    ("PyTypeObject", "tp_flags", offset_of!(ffi::PyTypeObject, tp_flags)),
    ("PyTypeObject", "tp_version_tag", offset_of!(ffi::PyTypeObject, tp_version_tag)),
    ("PyTypeObject", "tp_getattro", offset_of!(ffi::PyTypeObject, tp_getattro)),
    ("PyTypeObject", "tp_setattro", offset_of!(ffi::PyTypeObject, tp_setattro)),
    ("PyTypeObject", "tp_dictoffset", offset_of!(ffi::PyTypeObject, tp_dictoffset)),
    ("PyHeapTypeObject", "ht_cached_keys", offset_of!(ffi::PyHeapTypeObject, ht_cached_keys)),
    ("PyASCIIObject", "length", offset_of!(ffi::PyASCIIObject, length)),
    ("PyListObject", "ob_item", offset_of!(ffi::PyListObject, ob_item)),
    ("PyTupleObject", "ob_item", offset_of!(ffi::PyTupleObject, ob_item)),
    ("PyFloatObject", "ob_fval", offset_of!(ffi::PyFloatObject, ob_fval)),
    ("PyVarObject", "ob_size", offset_of!(ffi::PyVarObject, ob_size)),
];

/// Pointer differences the C compiler computes from CPython's own inline functions: name,
/// a C expression over `PyObject *o` giving a `char *`, and our offset from `o`.
pub const POINTER_OFFSETS: &[(&str, &str, isize)] = &[
    ("_PyObject_ValuesPointer", "(char *)_PyObject_ValuesPointer(o)", MANAGED_VALUES_OFFSET),
    ("_PyObject_ManagedDictPointer", "(char *)_PyObject_ManagedDictPointer(o)", MANAGED_DICT_OFFSET),
];

// ---------------------------------------------------------------------------------------------
// Layouts private to one .c file of CPython (no header declares them, so the C compiler cannot
// check them): verified at run time on live objects by [`iterator_layouts_verified`] before any
// machine code relies on them.

/// `rangeiterobject` (Objects/rangeobject.c): `iter(range(...))` when every value fits a C long.
#[repr(C)]
pub struct RangeIterObject {
    pub ob_refcnt: Py_ssize_t,
    pub ob_type: *mut c_void,
    pub index: std::os::raw::c_long,
    pub start: std::os::raw::c_long,
    pub step: std::os::raw::c_long,
    pub len: std::os::raw::c_long,
}

/// `listiterobject` (Objects/listobject.c) and `tupleiterobject` (Objects/tupleobject.c), which
/// share this layout: the next index, and the sequence (null once exhausted).
#[repr(C)]
pub struct SeqIterObject {
    pub ob_refcnt: Py_ssize_t,
    pub ob_type: *mut c_void,
    pub it_index: Py_ssize_t,
    pub it_seq: *mut PyObject,
}

/// Whether [`RangeIterObject`] and [`SeqIterObject`] match the running interpreter: iterators
/// over a range, a list and a tuple are made and advanced once, and their fields must read back
/// as expected. Computed once.
///
/// # Safety
/// GIL held.
pub unsafe fn iterator_layouts_verified() -> bool {
    static VERIFIED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    // SAFETY: per the contract (the GIL serialises the first call's work); the objects are
    // read through our layouts only after their types were checked.
    *VERIFIED.get_or_init(|| unsafe { verify_iterator_layouts() })
}

unsafe fn verify_iterator_layouts() -> bool {
    // SAFETY: GIL held; every object made here is checked for null and released.
    unsafe {
        let mut ok = true;
        let range = ffi::PyObject_CallFunction(
            std::ptr::addr_of_mut!(ffi::PyRange_Type) as *mut PyObject,
            b"(lll)\0".as_ptr() as *const c_char,
            3 as std::os::raw::c_long,
            100 as std::os::raw::c_long,
            7 as std::os::raw::c_long,
        );
        let list = ffi::Py_BuildValue(b"[iii]\0".as_ptr() as *const c_char, 1, 2, 3);
        let tuple = ffi::Py_BuildValue(b"(iii)\0".as_ptr() as *const c_char, 1, 2, 3);
        for (seq, tp) in [
            (range, std::ptr::addr_of_mut!(ffi::PyRangeIter_Type)),
            (list, std::ptr::addr_of_mut!(ffi::PyListIter_Type)),
            (tuple, std::ptr::addr_of_mut!(ffi::PyTupleIter_Type)),
        ] {
            let it = if seq.is_null() { std::ptr::null_mut() } else { ffi::PyObject_GetIter(seq) };
            if it.is_null() || ffi::Py_TYPE(it) != tp {
                ok = false;
            } else {
                let first = ffi::PyIter_Next(it);
                ok &= !first.is_null();
                ffi::Py_XDECREF(first);
                if tp == std::ptr::addr_of_mut!(ffi::PyRangeIter_Type) {
                    let r = &*(it as *const RangeIterObject);
                    ok &= r.index == 1 && r.start == 3 && r.step == 7 && r.len == 14;
                } else {
                    let s = &*(it as *const SeqIterObject);
                    ok &= s.it_index == 1 && s.it_seq == seq;
                }
            }
            ffi::Py_XDECREF(it);
            ffi::Py_XDECREF(seq);
        }
        ffi::PyErr_Clear();
        if !ok {
            log::warn!("peregrine: range/list/tuple iterator layouts differ from CPython 3.11's; FOR_ITER stays generic");
        }
        ok
    }
}
