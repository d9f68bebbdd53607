//! Tier 1, the baseline compiler: one x86-64 template per bytecode instruction, stitched with
//! dynasm-rs over the interpreter's own frame layout.
//!
//! Status: not implemented yet (see docs/status.md). [`compile`] refuses every code object with
//! [`CompileError::NotSupported`], so the hook counts the refusal and runs the frame in the
//! interpreter; nothing is ever run half-compiled.

use peregrine_runtime::code_state::CompiledCode;
use peregrine_runtime::cpython::ffi;
use peregrine_runtime::CompileError;

/// Compiles `code` for the baseline tier.
///
/// # Safety
/// GIL held; `code` is a live code object.
pub unsafe fn compile(_code: *mut ffi::PyObject) -> Result<Box<dyn CompiledCode>, CompileError> {
    Err(CompileError::NotSupported("the baseline tier is not implemented yet".to_string()))
}
