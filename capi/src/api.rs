//! The Python API of `peregrine._peregrine`. Errors from the Rust side become Python exceptions
//! here, with messages that say what to do.

use crate::hook;
use crate::tier_up::{compile_into, describe_code};
use peregrine_runtime::code_arena;
use peregrine_runtime::code_state::CodeState;
use peregrine_runtime::options::{OptionSpec, BASELINE_THRESHOLD, OPTIMIZE_THRESHOLD};
use peregrine_runtime::stats::{TierStats, STATS};
use peregrine_runtime::{bytecode, ExitReason, Tier};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyCode, PyDict, PyInt, PyList, PyString, PyTuple};
use std::collections::BTreeMap;

pyo3::create_exception!(
    peregrine,
    CompileError,
    PyRuntimeError,
    "A tier could not compile a code object; the message says which tier and why."
);

/// Switches the JIT on for this interpreter.
#[pyfunction]
pub fn enable() -> PyResult<()> {
    hook::install().map_err(PyRuntimeError::new_err)
}

/// Switches the JIT off: every frame runs in CPython's interpreter again. Compiled code is kept
/// and used again after `enable()`.
#[pyfunction]
pub fn disable() {
    hook::uninstall()
}

/// Whether the JIT's hook is installed in this interpreter.
#[pyfunction]
pub fn is_enabled() -> bool {
    hook::is_installed()
}

/// Validates one threshold argument: an int in range, or "off" where the option allows it.
fn threshold_arg(spec: &OptionSpec, value: &Bound<'_, PyAny>) -> PyResult<Option<u32>> {
    let type_error = || {
        let got = value.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        PyTypeError::new_err(format!("{} must be {}, not {}", spec.name, spec.expected(), got))
    };
    if value.is_instance_of::<PyBool>() {
        return Err(type_error());
    }
    if let Ok(s) = value.cast::<PyString>() {
        if spec.allows_off && s.to_str()? == "off" {
            return Ok(None);
        }
        return Err(if spec.allows_off {
            PyValueError::new_err(format!("{} must be {}, got {:?}", spec.name, spec.expected(), s.to_str()?))
        } else {
            type_error()
        });
    }
    if !value.is_instance_of::<PyInt>() {
        return Err(type_error());
    }
    let n: i128 = value.extract().map_err(|_| {
        PyValueError::new_err(format!("{} must be {}, got {}", spec.name, spec.expected(), value))
    })?;
    spec.check_count(n).map(Some).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Sets the tier-up thresholds. An omitted parameter (or None) keeps its value; nothing changes
/// unless every given value is valid.
#[pyfunction]
#[pyo3(signature = (*, baseline=None, optimize=None))]
pub fn set_thresholds(
    baseline: Option<&Bound<'_, PyAny>>,
    optimize: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let baseline = baseline.map(|v| threshold_arg(&BASELINE_THRESHOLD, v)).transpose()?;
    let optimize = optimize.map(|v| threshold_arg(&OPTIMIZE_THRESHOLD, v)).transpose()?;
    if let Some(v) = baseline {
        BASELINE_THRESHOLD.set(v);
    }
    if let Some(v) = optimize {
        OPTIMIZE_THRESHOLD.set(v);
    }
    Ok(())
}

fn threshold_value<'py>(py: Python<'py>, spec: &OptionSpec) -> PyResult<Bound<'py, PyAny>> {
    Ok(match spec.get() {
        Some(n) => n.into_pyobject(py)?.into_any(),
        None => PyString::new(py, "off").into_any(),
    })
}

/// The current thresholds: `{"baseline": int, "optimize": int or "off"}`.
#[pyfunction]
pub fn get_thresholds(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("baseline", threshold_value(py, &BASELINE_THRESHOLD)?)?;
    d.set_item("optimize", threshold_value(py, &OPTIMIZE_THRESHOLD)?)?;
    Ok(d)
}

fn tier_dict<'py>(py: Python<'py>, t: &TierStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("compiled", t.compiled.get())?;
    d.set_item("entries", t.entries.get())?;
    d.set_item("direct_calls", t.direct_calls.get())?;
    d.set_item("direct_resumes", t.direct_resumes.get())?;
    d.set_item("direct_c_calls", t.direct_c_calls.get())?;
    d.set_item("compile_ns", t.compile_ns.get())?;
    d.set_item("code_bytes", t.code_bytes.get())?;
    d.set_item("deopts", t.deopts.get())?;
    d.set_item("failed", t.failed.get())?;
    Ok(d)
}

/// A snapshot of every statistic, as plain dicts and ints.
#[pyfunction]
pub fn stats(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("enabled", hook::is_installed())?;
    let interp = PyDict::new(py);
    interp.set_item("entries", STATS.interpreter_entries.get())?;
    d.set_item("interpreter", interp)?;
    d.set_item("baseline", tier_dict(py, &STATS.baseline)?)?;
    d.set_item("optimized", tier_dict(py, &STATS.optimized)?)?;
    let exits = PyDict::new(py);
    for r in ExitReason::ALL {
        exits.set_item(r.name(), STATS.exit(r))?;
    }
    d.set_item("exits", exits)?;
    d.set_item("exit_sites", STATS.exit_sites.get())?;
    d.set_item("exit_sites_dropped", STATS.exit_sites_dropped.get())?;
    let failures = PyDict::new(py);
    let by_tier = [("baseline", PyDict::new(py)), ("optimized", PyDict::new(py))];
    for (tier, reason, n) in STATS.compile_failures() {
        if let Some((_, reasons)) = by_tier.iter().find(|(name, _)| *name == tier) {
            reasons.set_item(reason, n)?;
        }
    }
    for (tier, reasons) in by_tier {
        failures.set_item(tier, reasons)?;
    }
    d.set_item("compile_failures", failures)?;
    d.set_item("live_code_states", STATS.live_code_states.get())?;
    d.set_item("stack_segments", STATS.stack_segments.get())?;
    let arena = code_arena::usage();
    let a = PyDict::new(py);
    a.set_item("reserved", arena.reserved)?;
    a.set_item("used", arena.used)?;
    a.set_item("live", arena.live)?;
    a.set_item("blocks", arena.blocks)?;
    a.set_item("free", arena.free)?;
    d.set_item("code_arena", a)?;
    Ok(d)
}

/// Every exit reason: `{name: {"code": int, "when": "entry" or "mid_frame", "doc": str}}`, in
/// code order.
#[pyfunction]
pub fn exit_reasons(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    for r in ExitReason::ALL {
        let info = PyDict::new(py);
        info.set_item("code", r as u32)?;
        info.set_item("when", r.when().name())?;
        info.set_item("doc", r.doc())?;
        d.set_item(r.name(), info)?;
    }
    Ok(d)
}

/// Where `func_or_code`'s frames left compiled code, or did not enter it, since the last
/// `reset_stats()`: `{(offset, reason): count}`, sorted by offset. `offset` is the `dis` offset
/// of the instruction where the interpreter took the frame over (the one it raised at, for an
/// exception).
#[pyfunction]
pub fn exits<'py>(func_or_code: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let py = func_or_code.py();
    let code = code_of(func_or_code, "exits")?;
    // SAFETY: GIL held (we have a Python token) and `code` is a live code object.
    let state = unsafe { CodeState::existing(code.as_ptr()) };
    let sites = state.map(|s| s.exit_sites()).unwrap_or_default();
    let d = PyDict::new(py);
    if sites.is_empty() {
        return Ok(d);
    }
    // Sites are code units; name each by its instruction (a unit inside EXTENDED_ARG prefixes or
    // inline caches, such as CALL's last cache unit, belongs to the instruction after or before).
    let co_code = code.getattr("co_code")?;
    let instrs = bytecode::decode(co_code.cast::<PyBytes>()?.as_bytes()).unwrap_or_default();
    let offset_of_unit = |unit: u32| -> u32 {
        let u = unit as usize;
        let i = instrs.partition_point(|ins| ins.start <= u);
        match i.checked_sub(1).map(|i| &instrs[i]) {
            Some(ins) if u < ins.next => 2 * ins.index as u32,
            _ => 2 * unit,
        }
    };
    let mut by_offset: BTreeMap<(u32, ExitReason), u64> = BTreeMap::new();
    for (unit, reason, n) in sites {
        *by_offset.entry((offset_of_unit(unit), reason)).or_insert(0) += n as u64;
    }
    for ((offset, reason), n) in by_offset {
        let key = PyTuple::new(py, [offset.into_pyobject(py)?.into_any(), PyString::new(py, reason.name()).into_any()])?;
        d.set_item(key, n)?;
    }
    Ok(d)
}

/// What the baseline's inline caches and specialization sites of `func_or_code` saw: one dict per
/// site, in code order, with `offset` (as `dis` shows it), `opname`, `cache` (the armed fast
/// path's kind, or None), `hits` (inline fast path taken), `misses` (slow path taken), `types`
/// (operand types the slow path saw; pairs for two-operand sites), `megamorphic` (more than
/// four), `form` (the ceval form the site replays, 0 for the generic one) and, for BINARY_OP,
/// `float_hits` and `int_hits`. Empty when the function has no baseline code. This is the
/// type profile the optimizing tier starts from.
#[pyfunction]
pub fn profile<'py>(func_or_code: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    use peregrine_runtime::jit::inline_cache::kind_name;
    let py = func_or_code.py();
    let code = code_of(func_or_code, "profile")?;
    let out = PyList::empty(py);
    // SAFETY: GIL held, live code object.
    let state = unsafe { CodeState::existing(code.as_ptr()) };
    let Some(state) = state else { return Ok(out) };
    let mut err = None;
    state.with_compiled(Tier::Baseline, |compiled| {
        let Some(base) = compiled.as_any().downcast_ref::<peregrine_baseline::BaselineCode>() else { return };
        for site in base.sites() {
            let entry = (|| -> PyResult<Bound<'py, PyDict>> {
                let d = PyDict::new(py);
                let c = &site.cache;
                d.set_item("offset", site.bytecode_offset)?;
                d.set_item("opname", bytecode::name(site.opcode).unwrap_or("?"))?;
                d.set_item("cache", kind_name(c.kind.get()))?;
                d.set_item("hits", c.total_hits())?;
                d.set_item("ways", c.ways().filter(|w| w.kind.get() != 0).count())?;
                d.set_item("misses", c.misses.get())?;
                let p = c.profile.borrow();
                let types: Vec<&str> = p.seen.iter().map(|(_, name)| name.as_str()).collect();
                d.set_item("types", types)?;
                d.set_item("megamorphic", p.megamorphic)?;
                d.set_item("form", site.form())?;
                if site.opcode == bytecode::op::BINARY_OP {
                    d.set_item("float_hits", c.key2.get())?;
                    d.set_item("int_hits", c.key3.get())?;
                }
                Ok(d)
            })();
            match entry.and_then(|d| out.append(d)) {
                Ok(()) => {}
                Err(e) => {
                    err = Some(e);
                    return;
                }
            }
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Zeroes the statistics (compiled code stays compiled).
#[pyfunction]
pub fn reset_stats() {
    STATS.reset()
}

/// The code object behind a function, method or code object.
fn code_of<'py>(obj: &Bound<'py, PyAny>, caller: &str) -> PyResult<Bound<'py, PyCode>> {
    if let Ok(code) = obj.cast::<PyCode>() {
        return Ok(code.clone());
    }
    let target = match obj.getattr("__func__") {
        Ok(func) => func,
        Err(_) => obj.clone(),
    };
    if let Ok(code) = target.getattr("__code__") {
        if let Ok(code) = code.cast_into::<PyCode>() {
            return Ok(code);
        }
    }
    let got = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
    Err(PyTypeError::new_err(format!(
        "{caller}() expects a Python function, method or code object, not {got}"
    )))
}

/// Which tier runs `func_or_code`'s frames: "interpreter", "baseline" or "optimized".
#[pyfunction]
pub fn tier_of(func_or_code: &Bound<'_, PyAny>) -> PyResult<&'static str> {
    let code = code_of(func_or_code, "tier_of")?;
    // SAFETY: GIL held (we have a Python token) and `code` is a live code object.
    let state = unsafe { CodeState::existing(code.as_ptr()) };
    Ok(state.map_or(Tier::Interpreter, |s| s.tier()).name())
}

/// The annotated native disassembly of `func`'s baseline code.
#[pyfunction]
pub fn disassemble(func: &Bound<'_, PyAny>) -> PyResult<String> {
    let code = code_of(func, "disassemble")?;
    // SAFETY: GIL held, live code object.
    let state = unsafe { CodeState::existing(code.as_ptr()) };
    let text = state.and_then(|s| {
        s.with_compiled(Tier::Baseline, |compiled| {
            compiled
                .as_any()
                .downcast_ref::<peregrine_baseline::BaselineCode>()
                .map(peregrine_baseline::disassemble)
        })
        .flatten()
    });
    text.ok_or_else(|| {
        // SAFETY: as above.
        let name = unsafe { describe_code(code.as_ptr()) };
        PyValueError::new_err(format!(
            "{name} has no baseline code (it runs in the {}); peregrine.compile(func) compiles it",
            state.map_or(Tier::Interpreter, |s| s.tier()).name()
        ))
    })
}

/// Compiles `func` for `tier` now, raising `CompileError` if that tier cannot compile it.
#[pyfunction]
#[pyo3(signature = (func, tier="baseline"))]
pub fn compile(func: &Bound<'_, PyAny>, tier: &str) -> PyResult<()> {
    let code = code_of(func, "compile")?;
    let tier = match Tier::from_name(tier) {
        Some(t @ (Tier::Baseline | Tier::Optimized)) => t,
        _ => {
            return Err(PyValueError::new_err(format!(
                "tier must be \"baseline\" or \"optimized\", not {tier:?}"
            )))
        }
    };
    // SAFETY: GIL held, live code object.
    let state = unsafe { CodeState::get_or_create(code.as_ptr()) }
        .ok_or_else(|| PyRuntimeError::new_err("could not attach JIT state to the code object (out of memory)"))?;
    // SAFETY: GIL held, `code` is the state's live code object.
    unsafe { compile_into(state, code.as_ptr(), tier) }.map_err(|e| {
        // SAFETY: as above.
        let name = unsafe { describe_code(code.as_ptr()) };
        CompileError::new_err(format!("the {} tier cannot compile {}: {}", tier.name(), name, e))
    })
}
