//! Compares every hand-written CPython layout in `runtime::cpython::layout` with the C compiler's
//! `offsetof`/`sizeof` on the installed Python 3.11 headers. A mismatch means our structs would read
//! the wrong memory, so this test must fail loudly rather than skip.

use peregrine_runtime::cpython::layout::{CONSTANTS, FIELDS, OFFSETS, POINTER_OFFSETS, SIZES};
use std::fmt::Write as _;
use std::process::Command;

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn python_include_dir() -> String {
    let out = Command::new(python())
        .args(["-c", "import sysconfig; print(sysconfig.get_paths()['include'])"])
        .output()
        .expect("run python3 to find the include directory");
    assert!(out.status.success(), "python3 failed: {:?}", out);
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn hand_written_layouts_match_the_c_compiler() {
    let include = python_include_dir();
    let mut probe = String::from(
        "#define Py_BUILD_CORE 1\n#include <Python.h>\n#include <stddef.h>\n\
         #include \"internal/pycore_frame.h\"\n#include \"internal/pycore_interp.h\"\n\
         #include \"internal/pycore_runtime.h\"\n#include \"internal/pycore_dict.h\"\n\
         #include \"internal/pycore_moduleobject.h\"\n#include \"internal/pycore_object.h\"\n\
         #include \"structmember.h\"\n\
         #include <stdio.h>\nint main(void) {\n  PyObject *o = (PyObject *)4096;\n",
    );
    let mut expected = Vec::new();
    for f in FIELDS {
        writeln!(probe, "  printf(\"%zu\\n\", offsetof({}, {}));", f.c_type, f.c_field).unwrap();
        expected.push((format!("offsetof({}, {})", f.c_type, f.c_field), f.offset));
    }
    for (ty, field, off) in OFFSETS {
        writeln!(probe, "  printf(\"%zu\\n\", offsetof({}, {}));", ty, field).unwrap();
        expected.push((format!("offsetof({}, {})", ty, field), *off));
    }
    for (name, expr, off) in POINTER_OFFSETS {
        writeln!(probe, "  printf(\"%zd\\n\", {expr} - (char *)o);").unwrap();
        expected.push((name.to_string(), *off as usize));
    }
    for (name, expr, value) in CONSTANTS {
        writeln!(probe, "  printf(\"%zd\\n\", {expr});").unwrap();
        expected.push((name.to_string(), *value as usize));
    }
    for (ty, size) in SIZES {
        writeln!(probe, "  printf(\"%zu\\n\", sizeof({}));", ty).unwrap();
        expected.push((format!("sizeof({})", ty), *size));
    }
    probe.push_str("  return 0;\n}\n");

    let dir = std::env::temp_dir().join(format!("peregrine-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("probe.c");
    let exe = dir.join("probe");
    std::fs::write(&src, &probe).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(&cc)
        .arg(format!("-I{include}"))
        // The pointer helpers assert a flag of the object's type; the probe only does arithmetic.
        .arg("-DNDEBUG")
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("run the C compiler");
    assert!(status.success(), "the C layout probe did not compile:\n{probe}");
    let out = Command::new(&exe).output().expect("run the layout probe");
    let text = String::from_utf8(out.stdout).unwrap();
    let actual: Vec<usize> = text.lines().map(|l| l.parse::<isize>().unwrap() as usize).collect();
    assert_eq!(actual.len(), expected.len());

    let mismatches: Vec<String> = expected
        .iter()
        .zip(&actual)
        .filter(|((_, ours), c)| ours != *c)
        .map(|((what, ours), c)| format!("{what}: C says {c}, Rust says {ours}"))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(mismatches.is_empty(), "layout mismatches:\n{}", mismatches.join("\n"));
    assert!(expected.len() > 70, "the probe must check every listed field");
}
