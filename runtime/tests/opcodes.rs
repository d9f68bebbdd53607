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

/// The net stack effects in `stack_use` agree with `dis.stack_effect` (compile.c's table) for
/// every base opcode and a range of arguments, on both paths of jumps.
#[test]
fn stack_effects_match_dis() {
    use peregrine_runtime::bytecode::stack_use;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = "import dis, opcode\n\
        for name, op in sorted(opcode.opmap.items(), key=lambda kv: kv[1]):\n\
        \x20   for arg in (0, 1, 2, 3, 5, 8, 15, 0x103):\n\
        \x20       if op < opcode.HAVE_ARGUMENT and arg: continue\n\
        \x20       for jump in (False, True):\n\
        \x20           try: e = dis.stack_effect(op, arg if op >= opcode.HAVE_ARGUMENT else None, jump=jump)\n\
        \x20           except ValueError: e = 'invalid'\n\
        \x20           print(op, arg, int(jump), e)\n";
    let out = std::process::Command::new(python).args(["-c", script]).output().expect("run python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut checked = 0;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (op, arg, jump): (u8, u32, bool) = (f[0].parse().unwrap(), f[1].parse().unwrap(), f[2] == "1");
        let ours = stack_use(op, arg);
        if f[3] == "invalid" {
            continue; // CACHE and friends: the decoder never yields them as instructions
        }
        let theirs: i32 = f[3].parse().unwrap();
        let u = ours.unwrap_or_else(|| panic!("no stack use for opcode {op}"));
        let e = if jump { u.jump_effect.unwrap_or(u.effect) } else { u.effect };
        assert_eq!(e, theirs, "opcode {op} oparg {arg} jump {jump}");
        checked += 1;
    }
    assert!(checked > 1000, "only {checked} cases checked");
}
