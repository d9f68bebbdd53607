//! Why a tier did not compile a code object. Errors stay values until the Python boundary, where
//! `capi` turns them into `peregrine.CompileError`.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompileError {
    /// The tier does not handle something in this code object (yet); the frame runs in a lower
    /// tier. The text names the construct, e.g. "opcode MATCH_CLASS".
    NotSupported(String),
    /// The bytecode is not something the CPython compiler produces (e.g. built with
    /// `code.replace`); it is refused rather than run.
    Malformed(String),
}

impl CompileError {
    /// A short, stable key for counting failures by reason (`stats()["compile_failures"]`).
    pub fn reason(&self) -> String {
        match self {
            CompileError::NotSupported(what) => format!("not supported: {what}"),
            CompileError::Malformed(what) => format!("malformed bytecode: {what}"),
        }
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason())
    }
}

impl std::error::Error for CompileError {}
