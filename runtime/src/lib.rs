//! Everything the tiers share: CPython 3.11 bindings and layouts, the per-code state kept in
//! `co_extra`, options (thresholds), statistics and fallback reasons.
//!
//! Dependency direction: `capi` -> (`baseline`, `optimizer`) -> `runtime`. Nothing here knows about
//! a particular tier's code generator; tiers report through the types defined here.

pub mod bytecode;
pub mod code_state;
pub mod compile_error;
pub mod cpython;
pub mod cstack;
pub mod deopt;
pub mod fallback;
pub mod jit;
pub mod opcodes;
pub mod options;
pub mod stats;
pub mod tier;

pub use compile_error::CompileError;
pub use deopt::DeoptReason;
pub use fallback::FallbackReason;
pub use tier::Tier;
