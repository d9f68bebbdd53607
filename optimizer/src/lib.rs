//! Tier 2, the optimizer: SSA IR built from bytecode plus the baseline's type feedback, type
//! inference, unboxing, inlining, lowered through Cranelift on a background thread.
//!
//! Status: not implemented yet (see docs/status.md). [`compile`] refuses every code object with
//! [`CompileError::NotSupported`]; frames stay in the lower tiers.

use peregrine_runtime::code_state::CompiledCode;
use peregrine_runtime::cpython::ffi;
use peregrine_runtime::CompileError;

/// Compiles `code` for the optimizing tier.
///
/// # Safety
/// GIL held; `code` is a live code object.
pub unsafe fn compile(_code: *mut ffi::PyObject) -> Result<Box<dyn CompiledCode>, CompileError> {
    Err(CompileError::NotSupported("the optimizing tier is not implemented yet".to_string()))
}
