//! Value-level semantics: what an opcode means for its operands, apart from any tier's calling
//! convention (CinderX's `jit_rt`). Each function takes the operands as borrowed references and
//! returns a new reference (or a status), null (or -1) with an exception set on error, exactly as
//! the C API does; it never touches a value stack or a frame. The baseline's stack-ABI helpers
//! (`jit::ops`) are shells around these, and tier 2's slow paths call them directly.
//!
//! Fast paths here must be unobservable: they give the same result, raise the same exception
//! and run no Python code where the generic path would run none, allocate the same objects (an
//! extra or a missing GC allocation moves the next collection), and count no recursion level
//! the generic path would count or vice versa. Where the interpreter's specialized forms differ
//! observably from its generic ones, the choice belongs to the site (`jit::specialize`), not here.

pub mod attrs;
pub(crate) mod errors;
pub mod exceptions;
pub mod names;
pub mod operators;
pub mod subscr;
