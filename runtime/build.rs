//! Emits pyo3's interpreter cfgs (`py_sys_config="Py_REF_DEBUG"` among them) for this crate, so
//! the JIT knows at build time whether the interpreter it is built for is a debug build.
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
