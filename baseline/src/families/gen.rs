//! Family: generators and coroutines. Semantics live in `peregrine_runtime::jit::gen`;
//! YIELD_VALUE and SEND are inline templates in templates.rs (they leave or branch the frame).
//!
//! RETURN_GENERATOR only runs in the call that creates the generator, which the hook leaves to
//! the interpreter; END_ASYNC_FOR only runs in the exception handler of `async for`. Both hand
//! the frame to the interpreter if ever reached.

use crate::templates::Template;
use super::Verdict;
use crate::CodeView;
use peregrine_runtime::bytecode::op;
use peregrine_runtime::jit::gen as h;

/// The template for `opcode` if it belongs to this family.
pub fn template(opcode: u8) -> Option<Template> {
    use op::*;
    use Template::*;
    Some(match opcode {
        YIELD_VALUE | SEND => Inline,
        GET_AWAITABLE => Helper(h::pg_get_awaitable),
        GET_AITER => Helper(h::pg_get_aiter),
        GET_ANEXT => Helper(h::pg_get_anext),
        GET_YIELD_FROM_ITER => Helper(h::pg_get_yield_from_iter),
        ASYNC_GEN_WRAP => Helper(h::pg_async_gen_wrap),
        BEFORE_ASYNC_WITH => Helper(h::pg_before_async_with),
        RETURN_GENERATOR | END_ASYNC_FOR => HandOff,
        _ => return None,
    })
}

/// No opcode of this family indexes constants, names or locals.
pub fn check(_opcode: u8, _oparg: usize, _view: &CodeView) -> Option<Verdict> {
    None
}
