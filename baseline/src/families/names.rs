//! Family: names (see docs/status.md). Semantics live in `peregrine_runtime::jit::names`.
//!
//! LOAD_NAME, STORE_NAME, DELETE_NAME, LOAD_CLASSDEREF, LOAD_BUILD_CLASS, SETUP_ANNOTATIONS,
//! IMPORT_NAME, IMPORT_FROM, IMPORT_STAR, PRINT_EXPR: all real helpers. None of them is followed
//! by an eval-breaker check in ceval (they end with a plain DISPATCH), so none is a
//! `CallingHelper` even though several can run arbitrary code.

use crate::templates::Template;
use super::Verdict;
use crate::CodeView;
use peregrine_runtime::bytecode::op;
use peregrine_runtime::jit::names as h;

/// The template for `opcode` if it belongs to this family.
pub fn template(opcode: u8) -> Option<Template> {
    use op::*;
    use Template::*;
    Some(match opcode {
        LOAD_NAME => Helper(h::pg_load_name),
        STORE_NAME => Helper(h::pg_store_name),
        DELETE_NAME => Helper(h::pg_delete_name),
        LOAD_CLASSDEREF => Helper(h::pg_load_classderef),
        LOAD_BUILD_CLASS => Helper(h::pg_load_build_class),
        SETUP_ANNOTATIONS => Helper(h::pg_setup_annotations),
        IMPORT_NAME => Helper(h::pg_import_name),
        IMPORT_FROM => Helper(h::pg_import_from),
        IMPORT_STAR => Helper(h::pg_import_star),
        PRINT_EXPR => Helper(h::pg_print_expr),
        _ => return None,
    })
}

/// This family's verdict on an instruction (see `families::check`).
pub fn check(opcode: u8, oparg: usize, view: &CodeView) -> Option<Verdict> {
    use op::*;
    match opcode {
        LOAD_NAME | STORE_NAME | DELETE_NAME | IMPORT_NAME | IMPORT_FROM => Some(Verdict::from_range(oparg < view.n_names)),
        LOAD_CLASSDEREF => Some(Verdict::from_range(view.is_cell_or_free(oparg))),
        // IMPORT_STAR's helper relies on the code object having no fast locals to synchronise
        // with f_locals (true of all module-level code, the only place Python's compiler emits
        // it); anything else runs in the interpreter.
        IMPORT_STAR if view.n_localsplus != 0 => Some(Verdict::NotSupported("in a code object with fast locals")),
        _ => None,
    }
}
