//! Native disassembly of baseline code for people debugging the JIT: each bytecode instruction's
//! template under a `; offset OPNAME oparg` header, calls to runtime helpers named, and the cold
//! stubs (error exits, hand-offs) after a separator.

use crate::compiled::BaselineCode;
use crate::templates::{template, Template};
use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter, Mnemonic, OpKind};
use peregrine_runtime::bytecode;
use peregrine_runtime::cpython::{self, ffi};
use peregrine_runtime::jit::frame;
use std::collections::HashMap;
use std::fmt::Write;

/// Names of the functions compiled code calls, by address.
fn known_functions() -> HashMap<u64, String> {
    let mut names: HashMap<u64, String> = HashMap::new();
    let fixed = [
        (peregrine_runtime::jit::ops::pg_pop_truth as *const () as usize, "pg_pop_truth"),
        (peregrine_runtime::jit::ops::pg_peek_truth as *const () as usize, "pg_peek_truth"),
        (peregrine_runtime::jit::ops::pg_for_iter as *const () as usize, "pg_for_iter"),
        (peregrine_runtime::jit::ops::pg_unbound_local as *const () as usize, "pg_unbound_local"),
        (peregrine_runtime::jit::gen::pg_send as *const () as usize, "pg_send"),
        (frame::pg_frame_enter as *const () as usize, "pg_frame_enter"),
        (frame::pg_frame_return as *const () as usize, "pg_frame_return"),
        (frame::pg_frame_handoff as *const () as usize, "pg_frame_handoff"),
        (frame::pg_eval_breaker as *const () as usize, "pg_eval_breaker"),
        (frame::pg_handle_pending as *const () as usize, "pg_handle_pending"),
        (cpython::_Py_Dealloc as *const () as usize, "_Py_Dealloc"),
        (cpython::_PyEval_EvalFrameDefault as *const () as usize, "_PyEval_EvalFrameDefault"),
        (peregrine_runtime::jit::ops::pg_call as *const () as usize, "pg_call"),
        (peregrine_runtime::jit::ops::pg_precall as *const () as usize, "pg_precall"),
        (peregrine_runtime::jit::ops::pg_binary_subscr as *const () as usize, "pg_binary_subscr"),
        (peregrine_runtime::jit::ops::pg_unpack_store as *const () as usize, "pg_unpack_store"),
        (peregrine_runtime::jit::exceptions::pg_unwind as *const () as usize, "pg_unwind"),
        (frame::pg_frame_handoff_traced as *const () as usize, "pg_frame_handoff_traced"),
        (peregrine_runtime::jit::pg_bad_stack_move as *const () as usize, "pg_bad_stack_move"),
        (ffi::PyFloat_FromDouble as *const () as usize, "PyFloat_FromDouble"),
        (ffi::PyLong_FromLongLong as *const () as usize, "PyLong_FromLongLong"),
    ];
    // The slow paths of inline caches and site fast paths (`fast_paths`).
    use peregrine_runtime::jit::{inline_cache as ic, ops};
    let slow_paths: [(usize, &str); 7] = [
        (ic::pg_binary_op_cached as *const () as usize, "BINARY_OP"),
        (ic::pg_load_global_cached as *const () as usize, "LOAD_GLOBAL"),
        (ic::pg_load_attr_cached as *const () as usize, "LOAD_ATTR"),
        (ic::pg_store_attr_cached as *const () as usize, "STORE_ATTR"),
        (ic::pg_load_method_cached as *const () as usize, "LOAD_METHOD"),
        (ops::pg_compare_op_jump as *const () as usize, "COMPARE_OP"),
        (ops::pg_unpack_sequence as *const () as usize, "UNPACK_SEQUENCE"),
    ];
    for (addr, name) in [
        (crate::direct_entry::call_stub().unwrap_or(0), "direct call stub"),
        (crate::direct_entry::send_stub() as usize, "SEND stub"),
        (crate::direct_entry::for_iter_stub() as usize, "FOR_ITER stub"),
    ] {
        names.entry(addr as u64).or_insert_with(|| name.to_string());
    }
    if let Some(l) = crate::shared_lookups::lookups() {
        for (addr, name) in [(l.load_global, "LOAD_GLOBAL"), (l.load_attr, "LOAD_ATTR"), (l.load_method, "LOAD_METHOD")] {
            names.insert(addr as u64, format!("cache lookup of {name}"));
        }
    }
    for (addr, name) in slow_paths {
        names.insert(addr as u64, format!("slow path of {name}"));
    }
    for (addr, name) in fixed {
        names.insert(addr as u64, name.to_string());
    }
    for opcode in 0..=255u8 {
        if let (Some(name), Some(Template::Helper(f) | Template::CallingHelper(f) | Template::RaisingHelper(f))) =
            (bytecode::name(opcode), template(opcode))
        {
            names.entry(f as *const () as usize as u64).or_insert_with(|| format!("helper for {name}"));
        }
    }
    names
}

/// The annotated disassembly of `code`.
pub fn disassemble(code: &BaselineCode) -> String {
    let bytes = code.bytes();
    let base = bytes.as_ptr() as u64;
    let names = known_functions();
    let mut headers: HashMap<usize, String> = HashMap::new();
    for i in code.instr_offsets() {
        let name = bytecode::name(i.opcode).unwrap_or("?");
        headers.insert(i.native as usize, format!("; {:>5} {} {}", i.bytecode, name, i.oparg));
    }
    let mut out = String::new();
    let _ = writeln!(out, "; baseline code at {:#x}, {} bytes (prologue, then one template per instruction)", base, bytes.len());
    // Calls reach functions directly (`call rel32` from the code arena) or, out of the arena's
    // reach, through the code's trampolines (`mov rax, imm64; jmp rax` at the end): a call is
    // named by the function it reaches.
    let mut trampolines: HashMap<u64, u64> = HashMap::new();
    let mut previous: Option<Instruction> = None;
    for instr in Decoder::with_ip(64, bytes, base, DecoderOptions::NONE) {
        if let Some(p) = previous {
            let loads_rax = p.mnemonic() == Mnemonic::Mov && p.op_count() == 2 && p.op1_kind() == OpKind::Immediate64 && p.op0_register() == iced_x86::Register::RAX;
            if loads_rax && instr.mnemonic() == Mnemonic::Jmp && instr.op0_kind() == OpKind::Register && instr.op0_register() == iced_x86::Register::RAX {
                trampolines.insert(p.ip(), p.immediate64());
            }
        }
        previous = Some(instr);
    }
    let mut decoder = Decoder::with_ip(64, bytes, base, DecoderOptions::NONE);
    let mut formatter = IntelFormatter::new();
    let mut text = String::new();
    let mut instr = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut instr);
        let offset = (instr.ip() - base) as usize;
        if offset == code.cold_start() {
            let _ = writeln!(out, "; ---- cold code: shared tails, error exits and hand-offs to the interpreter");
        }
        if let Some(h) = headers.get(&offset) {
            let _ = writeln!(out, "{h}");
        }
        text.clear();
        formatter.format(&instr, &mut text);
        let mut note = String::new();
        if instr.mnemonic() == Mnemonic::Mov && instr.op_count() == 2 && instr.op1_kind() == OpKind::Immediate64 {
            if let Some(name) = names.get(&instr.immediate64()) {
                note = format!("  ; {name}");
            }
        }
        if instr.mnemonic() == Mnemonic::Call && instr.op0_kind() == OpKind::NearBranch64 {
            let target = instr.near_branch64();
            if let Some(name) = names.get(trampolines.get(&target).unwrap_or(&target)) {
                note = format!("  ; {name}");
            }
        }
        let _ = writeln!(out, "  {offset:>6x}  {text}{note}");
    }
    out
}
