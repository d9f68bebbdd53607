//! Checks the opcode table (`runtime::opcodes`) against the installed CPython's `opcode` and
//! `dis` modules: one row per opcode with its name, number and inline cache size, operand kinds
//! that agree with `opcode.has*`, and stack effects that agree with `dis.stack_effect`, so the
//! decoder, the stack verifier and the compilers' argument checks agree with the interpreter.

use peregrine_runtime::opcodes::{info, JumpKind, Operand, OPCODES};
use std::process::Command;

fn python(script: &str) -> Vec<String> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let out = Command::new(python).args(["-c", script]).output().expect("run python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

/// Every opcode of `opcode.opmap` has exactly one row, with its number and cache entries.
#[test]
fn opcode_table_matches_the_interpreter() {
    let theirs = python(
        "import opcode\nfor k, v in sorted(opcode.opmap.items(), key=lambda kv: kv[1]):\n    print(k, v, opcode._inline_cache_entries[v])",
    );
    let ours: Vec<String> = OPCODES.iter().map(|r| format!("{} {} {}", r.name, r.number, r.caches)).collect();
    assert_eq!(ours, theirs);
    assert_eq!(ours.len(), 110, "3.11 has 108 base opcodes plus CACHE and EXTENDED_ARG");
}

/// The operand column agrees with what `opcode` says of each argument: none below
/// `HAVE_ARGUMENT`, relative jumps (`hasjrel`; backward ones are named so), constants, names,
/// locals, cells and free variables, comparison numbers (`cmp_op`) and BINARY_OP's operators
/// (`_nb_ops`). Arguments `opcode` says nothing about must not claim one of those kinds.
#[test]
fn operand_kinds_match_the_opcode_module() {
    let theirs = python(
        "import opcode\n\
        for name, op in sorted(opcode.opmap.items(), key=lambda kv: kv[1]):\n\
        \x20   if op < opcode.HAVE_ARGUMENT: kind = 'unused'\n\
        \x20   elif op in opcode.hasjrel: kind = 'backward' if 'BACKWARD' in name else 'forward'\n\
        \x20   elif op in opcode.hasconst: kind = 'const'\n\
        \x20   elif op in opcode.hasname: kind = 'name'\n\
        \x20   elif op in opcode.haslocal: kind = 'local'\n\
        \x20   elif op in opcode.hasfree: kind = 'free'\n\
        \x20   elif op in opcode.hascompare: kind = f'range 0 {len(opcode.cmp_op) - 1}'\n\
        \x20   elif name == 'BINARY_OP': kind = f'range 0 {len(opcode._nb_ops) - 1}'\n\
        \x20   else: kind = 'other'\n\
        \x20   print(op, kind)\n",
    );
    assert_eq!(theirs.len(), OPCODES.len());
    for line in theirs {
        let (number, kind) = line.split_once(' ').unwrap();
        let row = info(number.parse().unwrap()).unwrap_or_else(|| panic!("no row for opcode {number}"));
        let ours = match (row.operand, row.jump) {
            (Operand::Unused, _) => "unused".to_string(),
            (Operand::JumpOffset, JumpKind::Forward) => "forward".to_string(),
            (Operand::JumpOffset, JumpKind::Backward) => "backward".to_string(),
            (Operand::Const, _) => "const".to_string(),
            (Operand::Name | Operand::GlobalName, _) => "name".to_string(),
            (Operand::Local, _) => "local".to_string(),
            (Operand::CellOrFree, _) => "free".to_string(),
            (Operand::Range(lo, hi), _) if kind.starts_with("range") => format!("range {lo} {hi}"),
            _ => "other".to_string(),
        };
        assert_eq!(ours, kind, "{}: {:?} {:?}", row.name, row.operand, row.jump);
    }
}

/// The net stack effects of the table agree with `dis.stack_effect` (compile.c's table) for
/// every base opcode and a range of arguments, on both paths of jumps.
#[test]
fn stack_effects_match_dis() {
    use peregrine_runtime::opcodes::stack_use;
    let script = "import dis, opcode\n\
        for name, op in sorted(opcode.opmap.items(), key=lambda kv: kv[1]):\n\
        \x20   for arg in (0, 1, 2, 3, 5, 8, 15, 0x103):\n\
        \x20       if op < opcode.HAVE_ARGUMENT and arg: continue\n\
        \x20       for jump in (False, True):\n\
        \x20           try: e = dis.stack_effect(op, arg if op >= opcode.HAVE_ARGUMENT else None, jump=jump)\n\
        \x20           except ValueError: e = 'invalid'\n\
        \x20           print(op, arg, int(jump), e)\n";
    let mut checked = 0;
    for line in python(script) {
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
