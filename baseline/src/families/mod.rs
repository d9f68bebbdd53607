//! Opcode families beyond the core set, one module each, so they can grow independently. Each
//! module exposes `template(opcode) -> Option<Template>` and `check(opcode, oparg, view)`, which
//! refuses arguments its templates would trust (indices into names or locals, operand shapes)
//! and legal shapes they do not handle.

pub mod gen;
pub mod names;
pub mod unpack;

use crate::CodeView;
use peregrine_runtime::CompileError;

/// What a family says about one instruction of a code object.
pub enum Verdict {
    /// The template can run it.
    Fine,
    /// Bytecode CPython's compiler does not produce (the message says what is wrong).
    Malformed(&'static str),
    /// Legal, but this template does not handle it (the code object runs in the interpreter).
    NotSupported(&'static str),
}

impl Verdict {
    pub fn from_range(ok: bool) -> Verdict {
        if ok { Verdict::Fine } else { Verdict::Malformed("argument out of range for this code object") }
    }
}

/// The families' verdict on `opcode oparg`, `None` when no family knows the opcode.
pub fn check(opcode: u8, oparg: usize, view: &CodeView) -> Option<Verdict> {
    names::check(opcode, oparg, view)
        .or_else(|| unpack::check(opcode, oparg, view))
        .or_else(|| gen::check(opcode, oparg, view))
}

/// Turns a verdict into the compiler's result, naming the instruction.
pub fn verdict_result(v: Verdict, name: &str, oparg: usize, offset: usize) -> Result<(), CompileError> {
    match v {
        Verdict::Fine => Ok(()),
        Verdict::Malformed(what) => Err(CompileError::Malformed(format!("{name} {oparg} at offset {offset}: {what}"))),
        Verdict::NotSupported(what) => Err(CompileError::NotSupported(format!("{name}: {what}"))),
    }
}
