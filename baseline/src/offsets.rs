//! Field offsets the machine code reads and writes, each written once: CPython's structs as
//! `peregrine_runtime::cpython` declares them (checked against the C compiler by the runtime's
//! layout test), as `i32` displacements for dynasm.

use peregrine_runtime::cpython::layout::{DictKeysObject, DictObject, ModuleObject};
use peregrine_runtime::cpython::{ffi, CFrame, CellObject, CodeObject, FunctionObject, GenObject, InterpreterFrame, StackChunk, ThreadState};
use std::mem::offset_of;

/// A displacement as a byte, for `[BYTE reg + const { d8(FIELD) }]`: dynasm encodes a named
/// displacement in 4 bytes unless told it fits in one (3 bytes saved per memory operand, on the
/// `prev_instr` store and tracing check of every instruction among others). Evaluated at compile
/// time, so a field that does not fit is a build error, not a wrong address.
pub(crate) const fn d8(disp: i32) -> i8 {
    assert!(disp >= i8::MIN as i32 && disp <= i8::MAX as i32, "displacement does not fit in a byte");
    disp as i8
}

pub(crate) const OB_TYPE: i32 = offset_of!(ffi::PyObject, ob_type) as i32;

pub(crate) const TSTATE_INTERP: i32 = offset_of!(ThreadState, interp) as i32;
pub(crate) const TSTATE_CFRAME: i32 = offset_of!(ThreadState, cframe) as i32;
pub(crate) const TSTATE_RECURSION_REMAINING: i32 = offset_of!(ThreadState, recursion_remaining) as i32;
pub(crate) const TSTATE_DS_CHUNK: i32 = offset_of!(ThreadState, datastack_chunk) as i32;
pub(crate) const TSTATE_DS_TOP: i32 = offset_of!(ThreadState, datastack_top) as i32;
pub(crate) const TSTATE_DS_LIMIT: i32 = offset_of!(ThreadState, datastack_limit) as i32;
pub(crate) const TSTATE_EXC_INFO: i32 = offset_of!(ThreadState, exc_info) as i32;

pub(crate) const CFRAME_USE_TRACING: i32 = offset_of!(CFrame, use_tracing) as i32;
pub(crate) const CFRAME_CURRENT_FRAME: i32 = offset_of!(CFrame, current_frame) as i32;
pub(crate) const CFRAME_PREVIOUS: i32 = offset_of!(CFrame, previous) as i32;

pub(crate) const CHUNK_DATA: i32 = offset_of!(StackChunk, data) as i32;

pub(crate) const FUNC_CODE: i32 = offset_of!(FunctionObject, func_code) as i32;
pub(crate) const FUNC_GLOBALS: i32 = offset_of!(FunctionObject, func_globals) as i32;
pub(crate) const FUNC_BUILTINS: i32 = offset_of!(FunctionObject, func_builtins) as i32;
pub(crate) const FUNC_DEFAULTS: i32 = offset_of!(FunctionObject, func_defaults) as i32;
pub(crate) const FUNC_CLOSURE: i32 = offset_of!(FunctionObject, func_closure) as i32;

pub(crate) const OB_SIZE: i32 = offset_of!(ffi::PyVarObject, ob_size) as i32;

pub(crate) const TUPLE_ITEMS: i32 = offset_of!(ffi::PyTupleObject, ob_item) as i32;

pub(crate) const CO_FLAGS: i32 = offset_of!(CodeObject, co_flags) as i32;
pub(crate) const CO_ARGCOUNT: i32 = offset_of!(CodeObject, co_argcount) as i32;
pub(crate) const CO_KWONLYARGCOUNT: i32 = offset_of!(CodeObject, co_kwonlyargcount) as i32;
pub(crate) const CO_NLOCALSPLUS: i32 = offset_of!(CodeObject, co_nlocalsplus) as i32;
pub(crate) const CO_STACKSIZE: i32 = offset_of!(CodeObject, co_stacksize) as i32;
pub(crate) const CO_EXTRA: i32 = offset_of!(CodeObject, co_extra) as i32;
pub(crate) const CO_CODE_ADAPTIVE: i32 = offset_of!(CodeObject, co_code_adaptive) as i32;

pub(crate) const F_FUNC: i32 = offset_of!(InterpreterFrame, f_func) as i32;
pub(crate) const F_GLOBALS: i32 = offset_of!(InterpreterFrame, f_globals) as i32;
pub(crate) const F_BUILTINS: i32 = offset_of!(InterpreterFrame, f_builtins) as i32;
pub(crate) const F_LOCALS: i32 = offset_of!(InterpreterFrame, f_locals) as i32;
pub(crate) const F_CODE: i32 = offset_of!(InterpreterFrame, f_code) as i32;
pub(crate) const F_FRAME_OBJ: i32 = offset_of!(InterpreterFrame, frame_obj) as i32;
pub(crate) const F_PREV_INSTR: i32 = offset_of!(InterpreterFrame, prev_instr) as i32;
pub(crate) const F_STACKTOP: i32 = offset_of!(InterpreterFrame, stacktop) as i32;
pub(crate) const F_IS_ENTRY: i32 = offset_of!(InterpreterFrame, is_entry) as i32;
pub(crate) const F_OWNER: i32 = offset_of!(InterpreterFrame, owner) as i32;
pub(crate) const F_LOCALSPLUS: i32 = offset_of!(InterpreterFrame, localsplus) as i32;
pub(crate) const F_PREVIOUS: i32 = offset_of!(InterpreterFrame, previous) as i32;

pub(crate) const GI_CODE: i32 = offset_of!(GenObject, gi_code) as i32;
pub(crate) const GI_FRAME_STATE: i32 = offset_of!(GenObject, gi_frame_state) as i32;
pub(crate) const GI_IFRAME: i32 = offset_of!(GenObject, gi_iframe) as i32;
pub(crate) const GI_EXC_STATE: i32 = offset_of!(GenObject, gi_exc_state) as i32;

pub(crate) const TP_VERSION: i32 = offset_of!(ffi::PyTypeObject, tp_version_tag) as i32;

pub(crate) const FLOAT_VALUE: i32 = offset_of!(ffi::PyFloatObject, ob_fval) as i32;

pub(crate) const LIST_ITEMS: i32 = offset_of!(ffi::PyListObject, ob_item) as i32;

pub(crate) const HT_CACHED_KEYS: i32 = offset_of!(ffi::PyHeapTypeObject, ht_cached_keys) as i32;

pub(crate) const DK_NENTRIES: i32 = offset_of!(DictKeysObject, dk_nentries) as i32;
pub(crate) const DK_KIND: i32 = offset_of!(DictKeysObject, dk_kind) as i32;
pub(crate) const DK_LOG2_INDEX_BYTES: i32 = offset_of!(DictKeysObject, dk_log2_index_bytes) as i32;
pub(crate) const DK_INDICES: i32 = offset_of!(DictKeysObject, dk_indices) as i32;

pub(crate) const MA_VERSION: i32 = offset_of!(DictObject, ma_version_tag) as i32;
pub(crate) const MA_KEYS: i32 = offset_of!(DictObject, ma_keys) as i32;
pub(crate) const MA_VALUES: i32 = offset_of!(DictObject, ma_values) as i32;

pub(crate) const MD_DICT: i32 = offset_of!(ModuleObject, md_dict) as i32;

pub(crate) const CELL_REF: i32 = offset_of!(CellObject, ob_ref) as i32;
