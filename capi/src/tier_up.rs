//! Compiling a code object for a tier and recording the outcome: shared by the hook (counter
//! tripped) and `peregrine.compile()` (forced).

use log::{info, log_enabled, Level};
use peregrine_runtime::code_state::{CodeState, CompiledCode};
use peregrine_runtime::cpython::{ffi, CodeObject};
use peregrine_runtime::stats::STATS;
use peregrine_runtime::{CompileError, Tier};
use std::panic::AssertUnwindSafe;
use std::time::Instant;

/// Compiles `code` for `tier`, stores the result in `state` and counts it.
///
/// # Safety
/// GIL held; `code` is the live code object `state` belongs to.
pub unsafe fn compile_into(
    state: &CodeState,
    code: *mut ffi::PyObject,
    tier: Tier,
) -> Result<(), CompileError> {
    let start = Instant::now();
    // A panic in a compiler must not unwind into CPython: it becomes a refusal like any other.
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| -> Result<Box<dyn CompiledCode>, CompileError> {
        // SAFETY: forwarded from the caller (GIL held, live code object).
        unsafe {
            match tier {
                Tier::Baseline => peregrine_baseline::compile(code, state.warmth_counters()),
                Tier::Optimized => peregrine_optimizer::compile(code),
                Tier::Interpreter => Err(CompileError::NotSupported(
                    "the interpreter tier is not compiled".to_string(),
                )),
            }
        }
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Err(CompileError::NotSupported(format!("internal compiler error: {what}")))
    });
    let elapsed = start.elapsed().as_nanos() as u64;
    let tier_stats = STATS.tier(tier).expect("compiled tiers have statistics");
    tier_stats.compile_ns.add_atomic(elapsed);
    match result {
        Ok(compiled) => {
            tier_stats.compiled.add_atomic(1);
            tier_stats.code_bytes.add_atomic(compiled.code_bytes() as u64);
            if log_enabled!(Level::Info) {
                // SAFETY: forwarded from the caller.
                let name = unsafe { describe_code(code) };
                info!("{} compiled {} ({} bytes, {} ns)", tier.name(), name, compiled.code_bytes(), elapsed);
            }
            state.install(tier, Ok(compiled));
            Ok(())
        }
        Err(e) => {
            STATS.count_compile_failure(tier, e.reason());
            if log_enabled!(Level::Info) {
                // SAFETY: forwarded from the caller.
                let name = unsafe { describe_code(code) };
                info!("{} refused {}: {}", tier.name(), name, e);
            }
            state.install(tier, Err(e.clone()));
            Err(e)
        }
    }
}

/// `qualname (file:line)` of a code object, for messages.
///
/// # Safety
/// GIL held; `code` is a live code object.
pub unsafe fn describe_code(code: *mut ffi::PyObject) -> String {
    // SAFETY: a live code object has these fields set (strings and an int).
    unsafe {
        let co = code as *const CodeObject;
        format!(
            "{} ({}:{})",
            str_of((*co).co_qualname),
            str_of((*co).co_filename),
            (*co).co_firstlineno
        )
    }
}

/// The text of a `str` object, or `?` if it has none.
///
/// # Safety
/// GIL held; `s` is null or a live object.
unsafe fn str_of(s: *mut ffi::PyObject) -> String {
    if s.is_null() {
        return "?".to_string();
    }
    // SAFETY: GIL held; PyUnicode_AsUTF8AndSize checks the type and sets an error if it is not a str.
    unsafe {
        let mut len: ffi::Py_ssize_t = 0;
        let p = ffi::PyUnicode_AsUTF8AndSize(s, &mut len);
        if p.is_null() {
            ffi::PyErr_Clear();
            return "?".to_string();
        }
        let bytes = std::slice::from_raw_parts(p as *const u8, len as usize);
        String::from_utf8_lossy(bytes).into_owned()
    }
}
