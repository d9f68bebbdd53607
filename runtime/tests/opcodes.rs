//! Checks the opcode table in `runtime::bytecode` against the installed CPython's `opcode` module:
//! names, numbers and inline cache sizes, so the decoder agrees with the interpreter.

use peregrine_runtime::bytecode::OPCODES;
use std::process::Command;

#[test]
fn opcode_table_matches_the_interpreter() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let out = Command::new(python)
        .args(["-c", "import opcode\nfor k, v in sorted(opcode.opmap.items(), key=lambda kv: kv[1]):\n    print(k, v, opcode._inline_cache_entries[v])"])
        .output()
        .expect("run python3");
    assert!(out.status.success());
    let theirs: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
    let ours: Vec<String> = OPCODES.iter().map(|(n, v, c)| format!("{n} {v} {c}")).collect();
    assert_eq!(ours, theirs);
    assert_eq!(ours.len(), 110, "3.11 has 108 base opcodes plus CACHE and EXTENDED_ARG");
}
