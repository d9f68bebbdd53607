//! Family: names (see docs/status.md). Semantics live in `peregrine_runtime::jit::names`.

use crate::templates::Template;
use crate::CodeView;

/// The template for `opcode` if it belongs to this family.
pub fn template(_opcode: u8) -> Option<Template> {
    None
}

/// Whether `oparg` indexes something that exists, for this family's opcodes.
pub fn arg_in_range(_opcode: u8, _oparg: usize, _view: &CodeView) -> Option<bool> {
    None
}
