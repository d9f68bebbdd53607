//! Everything the tiers share: CPython 3.11 bindings and layouts, the per-code state kept in
//! `co_extra`, options (thresholds), statistics and exit reasons.
//!
//! Dependency direction: `capi` -> (`baseline`, `optimizer`) -> `runtime`. Nothing here knows about
//! a particular tier's code generator; tiers report through the types defined here.

pub mod bytecode;
pub mod code_arena;
pub mod code_state;
pub mod compile_error;
pub mod cpython;
pub mod cstack;
pub mod exits;
pub mod jit;
pub mod opcodes;
pub mod options;
pub mod semantics;
pub mod stats;
pub mod tier;

pub use compile_error::CompileError;
pub use exits::{ExitReason, ExitWhen};
pub use tier::Tier;
