//! `peregrine._peregrine`, the extension CPython loads: module initialisation, the frame hook and
//! the Python API. It wires the tiers together; the tiers themselves live in `baseline/` and
//! `optimizer/`, and what they share in `runtime/`.

mod api;
mod hook;
mod logger;
mod tier_up;

use pyo3::prelude::*;
use pyo3::types::PyList;

/// Problems found in the environment at import, for the Python side to print once.
fn startup_warnings() -> Vec<String> {
    let mut warnings = Vec::new();
    if let Err(e) = logger::init(std::env::var("PEREGRINE_LOG").ok().as_deref()) {
        warnings.push(e);
    }
    for e in peregrine_runtime::options::load_from_env(|var| std::env::var(var).ok()) {
        warnings.push(format!("{e}; keeping the default"));
    }
    warnings
}

#[pymodule]
fn _peregrine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    peregrine_runtime::code_state::init_code_extra_index()
        .map_err(pyo3::exceptions::PyRuntimeError::new_err)?;
    peregrine_runtime::jit::precall_forms::init_callable_cache().map_err(pyo3::exceptions::PyRuntimeError::new_err)?;
    let py = m.py();
    m.add("_startup_warnings", PyList::new(py, startup_warnings())?)?;
    m.add("CompileError", py.get_type::<api::CompileError>())?;
    m.add_function(wrap_pyfunction!(api::enable, m)?)?;
    m.add_function(wrap_pyfunction!(api::disable, m)?)?;
    m.add_function(wrap_pyfunction!(api::is_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(api::set_thresholds, m)?)?;
    m.add_function(wrap_pyfunction!(api::get_thresholds, m)?)?;
    m.add_function(wrap_pyfunction!(api::stats, m)?)?;
    m.add_function(wrap_pyfunction!(api::reset_stats, m)?)?;
    m.add_function(wrap_pyfunction!(api::exits, m)?)?;
    m.add_function(wrap_pyfunction!(api::profile, m)?)?;
    m.add_function(wrap_pyfunction!(api::exit_reasons, m)?)?;
    m.add_function(wrap_pyfunction!(api::tier_of, m)?)?;
    m.add_function(wrap_pyfunction!(api::compile, m)?)?;
    m.add_function(wrap_pyfunction!(api::disassemble, m)?)?;
    Ok(())
}
