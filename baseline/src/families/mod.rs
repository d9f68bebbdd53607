//! Opcode families beyond the core set, one module each, so they can grow independently. Each
//! module exposes `template(opcode) -> Option<Template>` and `arg_in_range(opcode, oparg, view)`
//! for the arguments its templates index with (constants, names, locals).

pub mod gen;
pub mod names;
pub mod unpack;

use crate::CodeView;

/// Whether `oparg` is valid for `opcode` in this code object, for the families' opcodes; `None`
/// when no family knows the opcode or it has no argument to check.
pub fn arg_in_range(opcode: u8, oparg: usize, view: &CodeView) -> Option<bool> {
    names::arg_in_range(opcode, oparg, view)
        .or_else(|| unpack::arg_in_range(opcode, oparg, view))
        .or_else(|| gen::arg_in_range(opcode, oparg, view))
}
