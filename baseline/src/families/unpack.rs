//! Family: unpack (see docs/status.md). Semantics live in `peregrine_runtime::jit::unpack`.
//!
//! Star calls and displays, starred assignment, `with` entry and pattern matching. Every opcode
//! is a helper call; `CALL_FUNCTION_EX` calls arbitrary code the way CALL does, so it is followed
//! by ceval's eval-breaker check.

use crate::templates::Template;
use super::Verdict;
use crate::CodeView;
use peregrine_runtime::bytecode::op;
use peregrine_runtime::jit::unpack as h;

/// The template for `opcode` if it belongs to this family.
pub fn template(opcode: u8) -> Option<Template> {
    use op::*;
    use Template::*;
    Some(match opcode {
        CALL_FUNCTION_EX => CallingHelper(h::pg_call_function_ex),
        DICT_MERGE => Helper(h::pg_dict_merge),
        DICT_UPDATE => Helper(h::pg_dict_update),
        LIST_EXTEND => Helper(h::pg_list_extend),
        SET_UPDATE => Helper(h::pg_set_update),
        UNPACK_EX => Helper(h::pg_unpack_ex),
        BEFORE_WITH => Helper(h::pg_before_with),
        MATCH_CLASS => Helper(h::pg_match_class),
        MATCH_KEYS => Helper(h::pg_match_keys),
        MATCH_MAPPING => Helper(h::pg_match_mapping),
        MATCH_SEQUENCE => Helper(h::pg_match_sequence),
        _ => return None,
    })
}

/// This family's verdict on an instruction (see `families::check`): the helpers' stack layouts
/// depend on these arguments.
pub fn check(opcode: u8, oparg: usize, _view: &CodeView) -> Option<Verdict> {
    use op::*;
    match opcode {
        CALL_FUNCTION_EX => Some(Verdict::from_range(oparg <= 1)),
        LIST_EXTEND | SET_UPDATE | DICT_UPDATE | DICT_MERGE => Some(Verdict::from_range(oparg >= 1)),
        _ => None,
    }
}
