//! Direct entry into compiled frames in machine code: routines shared by every site that do
//! what the Rust paths `jit::direct_call` and `jit::direct_resume` do for the most common cases,
//! without the Rust glue between compiled frames.
//!
//! - [`call_stub`]: a CALL without keywords of an exact Python function taking its positional
//!   arguments (the rest from defaults; generator and coroutine functions too, whose call runs
//!   to RETURN_GENERATOR): push the callee's frame on the data stack,
//!   steal the callable and the arguments into it, move the caller's `prev_instr` to CALL's last
//!   cache unit, count the entry as the hook would, enter the callee's machine code at its
//!   direct entry (which shares the caller's cframe, as ceval's inline calls do: see
//!   `Emitter::prologue`), then clear and pop the frame (in Rust, `pg_direct_call_finish`, when a
//!   frame object outlives it). Called from compiled code only, with its registers (`r12` the
//!   caller's frame, `r13` the thread state, `r14` its stack pointer) and `ecx` = oparg, `r8` =
//!   CALL's last cache unit, `r9` = the site; returns in `rax` the caller's new stack pointer
//!   (tagged with `error_at` when the callee raised) or 0 when it did not handle the call, which
//!   then goes to `pg_call`. Clobbers `rbx` (scratch in compiled code) and the C ABI's
//!   caller-saved registers.
//! - [`send_stub`] and [`for_iter_stub`]: SEND into, and FOR_ITER over, a suspended exact
//!   generator (or coroutine, for SEND): `gen_send_ex2`'s steps up to running the frame; a yield
//!   is finished here, anything else in Rust (`pg_send_resumed`, `pg_for_iter_resumed`). They
//!   have the opcode helpers' signature and stand in for `pg_send` and `pg_for_iter`, to which
//!   they jump for everything else.
//!
//! Every state in which the hook would decide something (tracing, a tier due, the C stack near
//! its end, another frame-evaluation function) is declined before anything is touched
//! ([`entry_checks`]).

use crate::offsets::*;
use crate::emitter::x64;
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi, ExecutableBuffer};
use peregrine_runtime::code_state::{self, offsets as state};
use peregrine_runtime::cpython::layout::INTERP_EVAL_FRAME_OFFSET;
use peregrine_runtime::cpython::{co_flags, ffi, ref_debug};
use peregrine_runtime::cpython::{frame_state, layout::ErrStackItem, GenObject};
use peregrine_runtime::jit::ops::{self, OpHelper};
use peregrine_runtime::jit::{direct_call, gen, specialize::RUNNING_OFFSET};
use peregrine_runtime::options::{OptionSpec, OPTIMIZE_THRESHOLD};
use peregrine_runtime::stats::STATS;
use std::mem::offset_of;
use std::sync::OnceLock;

/// The routines, emitted on first use into one buffer: their offsets in it.
struct Stubs {
    buffer: ExecutableBuffer,
    call: dynasmrt::AssemblyOffset,
    send: dynasmrt::AssemblyOffset,
    for_iter: dynasmrt::AssemblyOffset,
}

static STUBS: OnceLock<Option<Stubs>> = OnceLock::new();

fn stubs() -> Option<&'static Stubs> {
    STUBS.get_or_init(|| emit().ok()).as_ref()
}

/// The direct call's address; `None` if no executable memory could be had (CALL sites then only
/// call `pg_call`).
pub fn call_stub() -> Option<usize> {
    stubs().map(|s| s.buffer.ptr(s.call) as usize)
}

/// SEND's helper: the machine-code resumption, or `pg_send` itself without executable memory.
pub fn send_stub() -> OpHelper {
    match stubs() {
        // SAFETY: the routine at this offset has the opcode helpers' C ABI (see the module doc).
        Some(s) => unsafe { std::mem::transmute::<*const u8, OpHelper>(s.buffer.ptr(s.send)) },
        None => gen::pg_send,
    }
}

/// FOR_ITER's helper for iterators without an inline path: as [`send_stub`], over `pg_for_iter`.
pub fn for_iter_stub() -> OpHelper {
    match stubs() {
        // SAFETY: as for `send_stub`.
        Some(s) => unsafe { std::mem::transmute::<*const u8, OpHelper>(s.buffer.ptr(s.for_iter)) },
        None => ops::pg_for_iter,
    }
}

// `is_entry` and `owner` are written by one 16-bit store.
const _: () = assert!(F_OWNER == F_IS_ENTRY + 1);

/// `Py_XDECREF(rdi)`; may run a destructor. Clobbers the caller-saved registers. Against a debug
/// interpreter, its own function (which keeps `_Py_RefTotal` and checks the count).
fn xdecref_rdi(ops: &mut dynasmrt::x64::Assembler) {
    if ref_debug::ENABLED {
        x64!(ops ; mov rax, QWORD ref_debug::decref_fn() as i64 ; call rax);
        return;
    }
    x64!(ops
        ; test rdi, rdi
        ; jz >done
        ; sub QWORD [rdi], 1
        ; jnz >done
        ; mov rax, QWORD peregrine_runtime::cpython::_Py_Dealloc as *const () as usize as i64
        ; call rax
        ; done:
    );
}

fn emit() -> std::io::Result<Stubs> {
    let mut ops = dynasmrt::x64::Assembler::new()?;
    let call = ops.offset();
    emit_call(&mut ops);
    let send = ops.offset();
    emit_resume(&mut ops, Resumer::Send);
    let for_iter = ops.offset();
    emit_resume(&mut ops, Resumer::ForIter);
    let buffer = ops.finalize().map_err(|_| std::io::Error::other("could not make the direct-entry stubs executable"))?;
    Ok(Stubs { buffer, call, send, for_iter })
}

/// `push rbp` .. `sub rsp, 24`: the routines' frame, callee-saved registers kept, `[rsp]` and
/// `[rsp + 8]` free, `rsp` 16-byte aligned for calls.
fn prologue(ops: &mut dynasmrt::x64::Assembler) {
    x64!(ops
        ; push rbp
        ; mov rbp, rsp
        ; push rbx
        ; push r12
        ; push r13
        ; push r14
        ; push r15
        ; sub rsp, 24
    );
}

fn epilogue(ops: &mut dynasmrt::x64::Assembler) {
    x64!(ops
        ; add rsp, 24
        ; pop r15
        ; pop r14
        ; pop r13
        ; pop r12
        ; pop rbx
        ; pop rbp
    );
}

/// What `direct_call::compiled_entry` and `our_hook_installed` check before a frame of the code
/// in `Rq(code)` enters its machine code, with the thread state in `Rq(tstate)`: our hook is the
/// frame evaluator (else stock runs frames through that other function), tracing is off (the
/// hook runs traced frames in the interpreter), the code's state (read from `co_extra` in place,
/// as `CodeState::existing` does) has the baseline as its best tier, no optimizer tier is due,
/// the C stack is not near its end (the hook moves deep recursion to a fresh segment). Jumps to
/// `declined` otherwise; leaves the state in `rax` and its entry at `entry` (a `code_state::
/// offsets` field) in `rdx`. Clobbers `rcx` and `rdi`; `rsi` and `r8`-`r11` are kept.
///
/// What is fixed once the JIT is set up is read now and embedded: our hook function's address
/// (the evaluator is compared with it, which also declines while the hook is off) and our
/// `co_extra` index, once the extras layout is verified.
fn entry_checks(ops: &mut dynasmrt::x64::Assembler, tstate: u8, code: u8, entry: i32, declined: DynamicLabel) {
    entry_checks_with(ops, tstate, code, entry, declined, true, 7);
}

/// [`entry_checks`], the check that our hook is installed left out (`check_hook` false: the
/// hook itself), with `scratch` (not `rsi` nor `r8`-`r11`'s users' registers) instead of `rdi`.
fn entry_checks_with(
    ops: &mut dynasmrt::x64::Assembler,
    tstate: u8,
    code: u8,
    entry: i32,
    declined: DynamicLabel,
    check_hook: bool,
    scratch: u8,
) {
    let hook_addr = direct_call::hook_fn_addr();
    // SAFETY: a static word, read with the GIL held (the stubs are emitted while compiling).
    let hook = unsafe { *hook_addr } as i64;
    let (extra_index, extras_verified) = code_state::extra_slot_addrs();
    // SAFETY: static words, as above.
    let (index, verified) = unsafe { (*extra_index, *extras_verified) };
    let optimize_threshold = OPTIMIZE_THRESHOLD.value_addr() as i64;
    let (_, thread, limit) = peregrine_runtime::cstack::cache_addrs();
    debug_assert_eq!(OptionSpec::OFF, u32::MAX);
    if !check_hook {
    } else if hook != 0 {
        x64!(ops ; mov rax, [Rq(tstate) + TSTATE_INTERP]);
        x64!(ops
            ; mov rcx, QWORD hook
            ; cmp [rax + INTERP_EVAL_FRAME_OFFSET as i32], rcx
            ; jne =>declined
        );
    } else {
        x64!(ops
            ; mov rax, [Rq(tstate) + TSTATE_INTERP]
            ; mov rax, [rax + INTERP_EVAL_FRAME_OFFSET as i32]
            ; test rax, rax
            ; jz =>declined
            ; mov rcx, QWORD hook_addr as i64
            ; cmp rax, [rcx]
            ; jne =>declined
        );
    }
    x64!(ops
        // (Defensive at CALL: its prelude checked for tracing and nothing has run since.)
        ; mov rax, [Rq(tstate) + TSTATE_CFRAME]
        ; cmp BYTE [BYTE rax + const { d8(CFRAME_USE_TRACING) }], 0
        ; jne =>declined
        ; mov rax, [Rq(code) + CO_EXTRA]
        ; test rax, rax
        ; jz =>declined
    );
    if verified && (0..(i32::MAX as isize - 8) / 8).contains(&index) {
        x64!(ops
            ; cmp QWORD [rax], index as i32
            ; jle =>declined
            ; mov rax, [rax + 8 * index as i32 + 8]
        );
    } else {
        x64!(ops
            ; mov rcx, QWORD extras_verified as i64
            ; cmp BYTE [rcx], 0
            ; je =>declined
            ; mov rcx, QWORD extra_index as i64
            ; mov rcx, [rcx]
            ; test rcx, rcx
            ; js =>declined
            ; cmp rcx, [rax]
            ; jge =>declined
            ; mov rax, [rax + rcx * 8 + 8]
        );
    }
    x64!(ops
        ; test rax, rax
        ; jz =>declined
        // A state released while its code object is deallocated reads "not yours".
        ; cmp [rax + state::OWNER], Rq(code)
        ; jne =>declined
        ; mov rdx, [rax + entry]
        ; test rdx, rdx
        ; jz =>declined
        // `optimize_due`: the threshold on (OFF is u32::MAX) and reached, the tier not tried.
        ; mov rcx, QWORD optimize_threshold
        ; mov ecx, [rcx]
        ; cmp [rax + state::ENTRIES], ecx
        ; jb >not_due
        ; cmp BYTE [rax + state::OPTIMIZER_TRIED], 0
        ; je =>declined
        ; not_due:
        // `cstack::nearly_exhausted`, from its cache: the limit read before the thread it is
        // for (see `cstack::cache_addrs` for why that order needs no sequence word here).
        // (Deep recursion also reaches the hook at each full data-stack chunk, a few hundred
        // frames apart, well within the reserve: this check is what makes that a margin
        // rather than the mechanism.)
        ; mov rcx, QWORD limit as i64
        ; cmp rsp, [rcx]
        ; jb =>declined
    );
    // mov scratch, fs:[0] (the thread pointer), which the assembler does not spell: REX.W (+R
    // for r8-r15), 8B /r with ModRM mod 00, r/m 100 (SIB: no base, no index, disp32 0).
    let (rex, reg) = (0x48 | (((scratch >> 3) & 1) << 2), scratch & 7);
    ops.extend([0x64, rex, 0x8b, 0x04 | (reg << 3), 0x25, 0x00, 0x00, 0x00, 0x00]);
    x64!(ops
        ; mov rcx, QWORD thread as i64
        ; cmp Rq(scratch), [rcx]
        ; jne =>declined
    );
}

/// Counts the entry of the frame whose code's state is in `rax` as `direct_call::run_frame`
/// does: the state's entries (saturating), the tier's entries, and `counter`. Clobbers `rcx`.
fn count_entry(ops: &mut dynasmrt::x64::Assembler, counter: &peregrine_runtime::stats::Counter) {
    x64!(ops
        // Saturating: the carry of an add that wrapped is taken back.
        ; add DWORD [rax + state::ENTRIES], 1
        ; sbb DWORD [rax + state::ENTRIES], 0
        ; mov rcx, QWORD STATS.baseline.entries.as_ptr() as i64
        ; add QWORD [rcx], 1
        ; mov rcx, QWORD counter.as_ptr() as i64
        ; add QWORD [rcx], 1
    );
}

/// `Py_INCREF(rdi)`; clobbers `rsi` against a debug interpreter.
fn incref_rdi(ops: &mut dynasmrt::x64::Assembler) {
    x64!(ops ; inc QWORD [rdi]);
    if ref_debug::ENABLED {
        x64!(ops ; mov rsi, QWORD ref_debug::total_addr() as i64 ; inc QWORD [rsi]);
    }
}

fn emit_call(ops: &mut dynasmrt::x64::Assembler) {
    // SAFETY-free: the address of a type object, embedded as a constant.
    let function_type = std::ptr::addr_of!(ffi::PyFunction_Type) as i64;
    let finish = direct_call::pg_direct_call_finish as *const () as i64;
    let rejected = co_flags::CO_VARARGS | co_flags::CO_VARKEYWORDS;
    let (declined, done) = (ops.new_dynamic_label(), ops.new_dynamic_label());
    // Called from compiled code only, whose registers it relies on (`r12` the caller's frame,
    // `r13` the thread state, `r14` its stack pointer): it saves only `r15`, which holds the
    // callee's frame across the callee (whose entry saves every register compiled code uses);
    // `rbx`, scratch in compiled code, holds the result's slot. Two free words at `[rsp]`.
    x64!(ops
        ; push r15
        ; sub rsp, 16
        // The callable and arguments, as CALL finds them: the method slot set (a method call,
        // `self` first) or NULL with the callable above it.
        ; mov eax, ecx
        ; shl rax, 3
        ; mov r10, r14
        ; sub r10, rax             // r10: sp - 8 * oparg
        ; lea rbx, [r10 - 16]
        ; mov r11, [rbx]
        ; test r11, r11
        ; jz >plain
        ; sub r10, 8
        ; add ecx, 1
        ; jmp >selected
        ; plain:
        ; mov r11, [rbx + 8]
        ; selected:
        // r11: the callable, r10: its ecx arguments (up to r14). Nothing is touched until every
        // check below passed.
        ; mov rax, QWORD function_type
        ; cmp [BYTE r11 + const { d8(OB_TYPE) }], rax
        ; jne =>declined
        // The code's shape: positional parameters only, as many as passed or the rest with
        // defaults (`initialize_locals`' positional binding, as CALL_PY_WITH_DEFAULTS binds).
        ; mov rsi, [BYTE r11 + const { d8(FUNC_CODE) }]
        ; mov eax, [BYTE rsi + const { d8(CO_FLAGS) }]
        ; test eax, co_flags::CO_OPTIMIZED
        ; jz =>declined
        ; test eax, rejected
        ; jnz =>declined
        ; cmp DWORD [BYTE rsi + const { d8(CO_KWONLYARGCOUNT) }], 0
        ; jne =>declined
        ; mov eax, [BYTE rsi + const { d8(CO_ARGCOUNT) }]
        ; cmp eax, ecx
        ; je >bound
        ; jb =>declined
        ; mov rdx, [BYTE r11 + const { d8(FUNC_DEFAULTS) }]
        ; test rdx, rdx
        ; jz =>declined
        ; sub eax, ecx             // parameters without an argument: the last defaults
        ; cmp [BYTE rdx + const { d8(OB_SIZE) }], rax
        ; jb =>declined
        ; bound:
        // The recursion limit: the callee's entry counts its level without checking it.
        ; cmp DWORD [BYTE r13 + const { d8(TSTATE_RECURSION_REMAINING) }], 0
        ; jle =>declined
    );
    entry_checks(ops, 13, 6, state::DIRECT_ENTRY, declined);
    x64!(ops
        ; mov r15, rdx             // the callee's direct entry
        // Room in the data stack's chunk, not at its first slot (`push_frame`). A thread that
        // never pushed a frame has all three null: no room below a null limit.
        ; mov rdi, [r13 + TSTATE_DS_TOP]
        ; mov rcx, [r13 + TSTATE_DS_CHUNK]
        ; lea rcx, [BYTE rcx + const { d8(CHUNK_DATA) }]
        ; cmp rdi, rcx
        ; je =>declined
        ; movsxd rcx, DWORD [BYTE rsi + const { d8(CO_NLOCALSPLUS) }]
        ; movsxd rdx, DWORD [BYTE rsi + const { d8(CO_STACKSIZE) }]
        ; add rdx, rcx
        ; lea rdx, [rdi + rdx * 8 + F_LOCALSPLUS]
        ; cmp rdx, [r13 + TSTATE_DS_LIMIT]
        ; jae =>declined
        // Committed: the frame is pushed (rdi) and takes the callable and the arguments.
        ; mov [r13 + TSTATE_DS_TOP], rdx
    );
    count_entry(ops, &STATS.baseline.direct_calls);
    x64!(ops
        // The call of a generator or coroutine function only creates it (runs to
        // RETURN_GENERATOR): counted apart, as `run_frame` counts it (no warm-up).
        ; test DWORD [BYTE rsi + const { d8(CO_FLAGS) }], co_flags::RESUMABLE
        ; jz >counted
        ; add DWORD [rax + state::GENERATOR_CREATIONS], 1
        ; sbb DWORD [rax + state::GENERATOR_CREATIONS], 0
        ; counted:
        ; movsxd rcx, DWORD [BYTE rsi + const { d8(CO_NLOCALSPLUS) }]
        ; mov [BYTE rdi + const { d8(F_FUNC) }], r11
        ; mov [BYTE rdi + const { d8(F_CODE) }], rsi
        ; inc QWORD [rsi]
    );
    if ref_debug::ENABLED {
        x64!(ops ; mov rdx, QWORD ref_debug::total_addr() as i64 ; inc QWORD [rdx]);
    }
    x64!(ops
        ; mov rdx, [BYTE r11 + const { d8(FUNC_BUILTINS) }]
        ; mov [BYTE rdi + const { d8(F_BUILTINS) }], rdx
        ; mov rdx, [BYTE r11 + const { d8(FUNC_GLOBALS) }]
        ; mov [BYTE rdi + const { d8(F_GLOBALS) }], rdx
        ; mov QWORD [BYTE rdi + const { d8(F_LOCALS) }], 0
        ; mov [BYTE rdi + const { d8(F_STACKTOP) }], ecx
        ; mov QWORD [BYTE rdi + const { d8(F_FRAME_OBJ) }], 0
        ; lea rdx, [rsi + CO_CODE_ADAPTIVE - 2]
        ; mov [BYTE rdi + const { d8(F_PREV_INSTR) }], rdx
        ; mov WORD [BYTE rdi + const { d8(F_IS_ENTRY) }], 0   // is_entry and owner (FRAME_OWNED_BY_THREAD)
        // The arguments where they bind, the defaults of the parameters left, then empty locals.
        ; lea rdx, [BYTE rdi + const { d8(F_LOCALSPLUS) }]
        ; args:
        ; cmp r10, r14
        ; jae >defaults
        ; mov rax, [r10]
        ; mov [rdx], rax
        ; add r10, 8
        ; add rdx, 8
        ; jmp <args
        ; defaults:
        ; movsxd rax, DWORD [BYTE rsi + const { d8(CO_ARGCOUNT) }]
        ; lea rax, [rdi + rax * 8 + F_LOCALSPLUS]
        ; cmp rdx, rax
        ; jae >locals
        ; mov r10, [BYTE r11 + const { d8(FUNC_DEFAULTS) }]
        ; mov r11, [BYTE r10 + const { d8(OB_SIZE) }]
        ; lea r10, [r10 + r11 * 8 + TUPLE_ITEMS]
        ; mov r11, rax
        ; sub r11, rdx
        ; sub r10, r11             // the first default to bind
        ; default:
        ; mov r11, [r10]
        ; inc QWORD [r11]
    );
    if ref_debug::ENABLED {
        x64!(ops ; push rax ; mov rax, QWORD ref_debug::total_addr() as i64 ; inc QWORD [rax] ; pop rax);
    }
    x64!(ops
        ; mov [rdx], r11
        ; add r10, 8
        ; add rdx, 8
        ; cmp rdx, rax
        ; jb <default
        ; locals:
        ; lea rcx, [rdi + rcx * 8 + F_LOCALSPLUS]
        ; unbound:
        ; cmp rdx, rcx
        ; jae >filled
        ; mov QWORD [rdx], 0
        ; add rdx, 8
        ; jmp <unbound
        ; filled:
        // Pushed: as ceval's inline call, the caller now shows CALL's last cache unit.
        ; mov [BYTE r12 + const { d8(F_PREV_INSTR) }], r8
        // The site's form consumed, as pg_call consumes it.
        ; mov BYTE [r9 + RUNNING_OFFSET], 0
        ; mov rax, r15
        ; mov r15, rdi
        ; mov rsi, rdi
        ; call rax
        // The result in its slot now (NULL raises from there, below); [rsp]: what to return.
        ; mov [rbx], rax
        ; lea rcx, [rbx + 8]
        ; test rax, rax
        ; jnz >returned
        ; or rcx, 1
        ; returned:
        ; mov [rsp], rcx
        // `clear_and_pop`: a frame object that outlives the frame takes it over (in Rust);
        // otherwise its references are released one recursion level deeper, in the order
        // `_PyFrame_Clear` releases them, and the frame is popped.
        ; cmp QWORD [BYTE r15 + const { d8(F_FRAME_OBJ) }], 0
        ; jne >owned
        ; sub DWORD [BYTE r13 + const { d8(TSTATE_RECURSION_REMAINING) }], 1
        ; xor ebx, ebx
        ; release:
        ; movsxd rax, DWORD [BYTE r15 + const { d8(F_STACKTOP) }]
        ; cmp rbx, rax
        ; jge >released
        ; mov rdi, [r15 + rbx * 8 + F_LOCALSPLUS]
    );
    xdecref_rdi(ops);
    x64!(ops
        ; add rbx, 1
        ; jmp <release
        ; released:
        ; mov rdi, [BYTE r15 + const { d8(F_LOCALS) }]
    );
    xdecref_rdi(ops);
    x64!(ops ; mov rdi, [BYTE r15 + const { d8(F_FUNC) }]);
    xdecref_rdi(ops);
    x64!(ops ; mov rdi, [BYTE r15 + const { d8(F_CODE) }]);
    xdecref_rdi(ops);
    x64!(ops
        ; add DWORD [BYTE r13 + const { d8(TSTATE_RECURSION_REMAINING) }], 1
        ; mov [r13 + TSTATE_DS_TOP], r15
        ; jmp >cleared
        ; owned:
        ; mov rdi, r13
        ; mov rsi, r15
        ; mov rax, QWORD finish
        ; call rax
        ; cleared:
        ; mov rax, [rsp]
        ; jmp =>done
        ; =>declined
        ; xor eax, eax
        ; =>done
        ; add rsp, 16
        ; pop r15
        ; ret
    );
}

/// The frame-evaluation function Peregrine installs: the hook's common case in machine code, a
/// frame of code whose best tier is the baseline entered there (a tail jump to its entry),
/// everything else passed on unchanged to `fallback`, the hook in Rust (`capi::hook`). Taken
/// only when nothing but the entry is to do: no throw, no call announced
/// (`frame::note_frame_entry`), not a fresh frame of resumable code (a generator's creation is
/// counted apart), and [`entry_checks`]' conditions; counted as the hook counts (the code's
/// entries, the baseline's). `None` without executable memory (the Rust hook is installed).
pub fn fast_hook(fallback: usize) -> Option<usize> {
    static HOOK: OnceLock<Option<(ExecutableBuffer, usize)>> = OnceLock::new();
    let (buffer, for_fallback) = HOOK.get_or_init(|| emit_fast_hook(fallback).ok().map(|b| (b, fallback))).as_ref()?;
    assert_eq!(*for_fallback, fallback, "one fallback per process");
    Some(buffer.ptr(dynasmrt::AssemblyOffset(0)) as usize)
}

fn emit_fast_hook(fallback: usize) -> std::io::Result<ExecutableBuffer> {
    let mut ops = dynasmrt::x64::Assembler::new()?;
    let (slow, fallback_jump) = (ops.new_dynamic_label(), ops.new_dynamic_label());
    let live_guards = peregrine_runtime::jit::frame::live_guards_addr() as i64;
    x64!(ops
        // (tstate: rdi, frame: rsi, throwflag: edx), kept for whichever function runs the frame
        // (`edx` is 0 past this test, and set to 0 again where the checks used it).
        ; test edx, edx
        ; jnz =>fallback_jump
        ; mov rax, QWORD live_guards
        ; cmp QWORD [rax], 0
        ; jne =>slow
        ; mov r8, [BYTE rsi + const { d8(F_CODE) }]
        ; test DWORD [BYTE r8 + const { d8(CO_FLAGS) }], co_flags::RESUMABLE
        ; jz >fresh_or_not
        ; lea rax, [r8 + CO_CODE_ADAPTIVE - 2]
        ; cmp [BYTE rsi + const { d8(F_PREV_INSTR) }], rax
        ; je =>slow
        ; fresh_or_not:
    );
    entry_checks_with(&mut ops, 7, 8, state::BASELINE_ENTRY, slow, false, 9);
    x64!(ops
        ; mov r10, rdx
        ; xor edx, edx
        ; add DWORD [rax + state::ENTRIES], 1
        ; sbb DWORD [rax + state::ENTRIES], 0
        ; mov rcx, QWORD STATS.baseline.entries.as_ptr() as i64
        ; add QWORD [rcx], 1
        ; jmp r10
        ; =>slow
        ; xor edx, edx
        ; =>fallback_jump
        ; mov rax, QWORD fallback as i64
        ; jmp rax
    );
    ops.finalize().map_err(|_| std::io::Error::other("could not make the hook executable"))
}

/// Which instruction a resumption routine stands in for.
#[derive(Clone, Copy, PartialEq)]
enum Resumer {
    /// SEND: (receiver, value) -> (receiver, yielded) or, returned, (result) and the jump.
    Send,
    /// FOR_ITER: (generator) -> (generator, yielded) or, finished, () and the jump.
    ForIter,
}

const GI_EXC_PREVIOUS: i32 = (offset_of!(GenObject, gi_exc_state) + offset_of!(ErrStackItem, previous_item)) as i32;

/// SEND's or FOR_ITER's helper (see the module documentation): `direct_resume::resume` in
/// machine code for a suspended exact generator (or coroutine, for SEND) whose code may enter
/// the baseline, a yield finished here; otherwise `pg_send`/`pg_for_iter`.
fn emit_resume(ops: &mut dynasmrt::x64::Assembler, kind: Resumer) {
    // SAFETY-free: addresses of type objects, embedded as constants.
    let gen_type = std::ptr::addr_of!(peregrine_runtime::cpython::PyGen_Type) as i64;
    let coro_type = std::ptr::addr_of!(peregrine_runtime::cpython::PyCoro_Type) as i64;
    let (fallback, finished) = match kind {
        Resumer::Send => (gen::pg_send as *const () as i64, gen::pg_send_resumed as *const () as i64),
        Resumer::ForIter => (ops::pg_for_iter as *const () as i64, ops::pg_for_iter_resumed as *const () as i64),
    };
    let receiver = match kind {
        Resumer::Send => -16,
        Resumer::ForIter => -8,
    };
    let (declined, generic, done) = (ops.new_dynamic_label(), ops.new_dynamic_label(), ops.new_dynamic_label());
    x64!(ops
        ; mov rax, [rdx + receiver]
        ; mov r8, [BYTE rax + const { d8(OB_TYPE) }]
        ; mov r9, QWORD gen_type
        ; cmp r8, r9
        ; je >typed
    );
    if kind == Resumer::Send {
        x64!(ops ; mov r9, QWORD coro_type ; cmp r8, r9 ; je >typed);
    }
    x64!(ops
        ; jmp =>generic
        ; typed:
        ; cmp BYTE [BYTE rax + const { d8(GI_FRAME_STATE) }], frame_state::SUSPENDED as i8
        ; jne =>generic
    );
    prologue(ops);
    x64!(ops
        ; mov r13, rdi             // tstate
        ; mov r12, rsi             // the running frame
        ; mov rbx, rdx             // its stack
        ; mov r15, rax             // the generator
        ; mov r14, [BYTE r15 + const { d8(GI_CODE) }]
    );
    entry_checks(ops, 13, 14, state::BASELINE_ENTRY, declined);
    x64!(ops
        ; mov [rsp], rdx
        // Committed: the sent value (None for FOR_ITER) pushed on the generator's stack, its
        // frame linked under the running one, its exception state chained over the thread's.
        ; lea r14, [BYTE r15 + const { d8(GI_IFRAME) }]
    );
    match kind {
        Resumer::Send => x64!(ops ; mov rdi, [rbx - 8]),
        Resumer::ForIter => x64!(ops ; mov rdi, QWORD unsafe { ffi::Py_None() } as i64),
    }
    incref_rdi(ops);
    x64!(ops
        ; movsxd rcx, DWORD [BYTE r14 + const { d8(F_STACKTOP) }]
        ; mov [r14 + rcx * 8 + F_LOCALSPLUS], rdi
        ; add DWORD [BYTE r14 + const { d8(F_STACKTOP) }], 1
        ; mov rcx, [BYTE r13 + const { d8(TSTATE_CFRAME) }]
        ; mov rcx, [BYTE rcx + const { d8(CFRAME_CURRENT_FRAME) }]
        ; mov [BYTE r14 + const { d8(F_PREVIOUS) }], rcx
        ; mov rcx, [BYTE r13 + const { d8(TSTATE_EXC_INFO) }]
        ; mov [BYTE r15 + const { d8(GI_EXC_PREVIOUS) }], rcx
        ; lea rcx, [BYTE r15 + const { d8(GI_EXC_STATE) }]
        ; mov [BYTE r13 + const { d8(TSTATE_EXC_INFO) }], rcx
        ; mov BYTE [BYTE r15 + const { d8(GI_FRAME_STATE) }], frame_state::EXECUTING as i8
    );
    count_entry(ops, &STATS.baseline.direct_resumes);
    x64!(ops
        ; mov rdi, r13
        ; mov rsi, r14
        ; xor edx, edx
        ; call QWORD [rsp]
        // Anything but a yield (returned, raised) is finished in Rust.
        ; test rax, rax
        ; jz >finished
        ; cmp BYTE [BYTE r15 + const { d8(GI_FRAME_STATE) }], frame_state::SUSPENDED as i8
        ; jne >finished
        // Yielded: unlinked, the exception state unchained, the value in place.
        ; mov rcx, [BYTE r15 + const { d8(GI_EXC_PREVIOUS) }]
        ; mov [BYTE r13 + const { d8(TSTATE_EXC_INFO) }], rcx
        ; mov QWORD [BYTE r15 + const { d8(GI_EXC_PREVIOUS) }], 0
        ; mov QWORD [BYTE r14 + const { d8(F_PREVIOUS) }], 0
    );
    match kind {
        Resumer::Send => {
            // The sent value is released first, as pg_send does.
            x64!(ops ; mov [rsp + 8], rax ; mov rdi, [rbx - 8]);
            xdecref_rdi(ops);
            x64!(ops
                ; mov rax, [rsp + 8]
                ; mov [rbx - 8], rax
                ; mov rax, rbx
                ; jmp =>done
                ; finished:
                ; mov rdi, r13
                ; mov rsi, rbx
                ; mov rdx, rax
                ; mov rax, QWORD finished
                ; call rax
                ; jmp =>done
            );
        }
        Resumer::ForIter => x64!(ops
            ; mov [rbx], rax
            ; lea rax, [rbx + 8]
            ; jmp =>done
            ; finished:
            ; mov rdi, r13
            ; mov rsi, r12
            ; mov rdx, rbx
            ; mov rcx, rax
            ; mov rax, QWORD finished
            ; call rax
            ; jmp =>done
        ),
    }
    x64!(ops
        // Declined after the prologue: the arguments back, then the Rust helper.
        ; =>declined
        ; mov rdi, r13
        ; mov rsi, r12
        ; mov rdx, rbx
        ; xor ecx, ecx
    );
    epilogue(ops);
    x64!(ops
        ; =>generic
        ; mov rax, QWORD fallback
        ; jmp rax
        ; =>done
    );
    epilogue(ops);
    x64!(ops ; ret);
}
