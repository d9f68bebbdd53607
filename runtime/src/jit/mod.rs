//! Functions machine code calls: the frame protocol (entering, returning, handing a frame to the
//! interpreter, the eval breaker) and the slow paths of opcodes. Tier-neutral: the baseline calls
//! them today, the optimizer's slow paths will too.
//!
//! Every function here is `extern "C"`, runs with the GIL held, and must not unwind: they contain
//! no panicking operations on their paths (a panic in an `extern "C"` function aborts).

pub mod direct_call;
pub mod direct_resume;
pub mod exceptions;
pub mod frame;
pub mod gen;
pub mod inline_cache;
pub mod names;
pub mod ops;
pub mod precall_forms;
pub mod specialize;
mod support;
pub mod trace;
pub mod unpack;

use crate::cpython::ffi::PyObject;

/// A value-stack pointer: the next free slot, as ceval's `stack_pointer`.
pub type Sp = *mut *mut PyObject;

/// Opcode helpers return the new stack pointer; the low bit set means an exception was raised
/// (the pointer, with the bit cleared, is the stack as the interpreter's error path expects it).
#[inline(always)]
pub fn error_at(sp: Sp) -> Sp {
    (sp as usize | 1) as Sp
}

/// Called by compiled code built with debug assertions when the code of `opcode oparg` moved
/// the value-stack pointer from `before` to `after`, which the opcode table
/// (`opcodes::moves`) does not allow: the stack no longer matches what the verifier checked, so
/// this reports and aborts rather than run on with a corrupt frame.
pub extern "C" fn pg_bad_stack_move(opcode: u32, oparg: u32, before: usize, after: usize) -> ! {
    let moved = (after as isize).wrapping_sub(before as isize) / 8;
    let name = crate::opcodes::name(opcode as u8).unwrap_or("?");
    let expected = crate::opcodes::moves(opcode as u8, oparg);
    eprintln!("peregrine: {name} {oparg} moved the value stack by {moved} slots; the opcode table says {expected:?}");
    std::process::abort()
}
