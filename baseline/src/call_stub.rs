//! The direct call in machine code: one routine, shared by every CALL site, that does what
//! `jit::direct_call::try_direct_call` does for the most common call, an exact Python function
//! called with exactly its positional parameters (no keywords, no defaults to fill, not a
//! generator function) whose code runs in the baseline: push the callee's frame on the data
//! stack, steal the callable and the arguments into it, move the caller's `prev_instr` to CALL's
//! last cache unit, count the entry as the hook would, enter the callee's machine code, then
//! clear and pop the frame (in Rust, `pg_direct_call_finish`, when a frame object outlives it). Every other call, and every state in which
//! the hook would decide something (tracing, a tier due, the C stack near its end, another
//! frame-evaluation function, a full data-stack chunk), is left untouched for `pg_call`.
//!
//! The routine is C-ABI: `(tstate, caller frame, sp, oparg, last cache unit, site) -> sp`,
//! returning the caller's new stack pointer (tagged with `error_at` when the callee raised) or 0
//! when it did not handle the call.

use crate::emitter::x64;
use dynasmrt::{dynasm, DynasmApi, DynasmLabelApi, ExecutableBuffer};
use peregrine_runtime::code_state::{self, offsets as state};
use peregrine_runtime::cpython::layout::INTERP_EVAL_FRAME_OFFSET;
use peregrine_runtime::cpython::{co_flags, ffi, ref_debug, CFrame, CodeObject, FunctionObject, InterpreterFrame, StackChunk, ThreadState};
use peregrine_runtime::jit::{direct_call, specialize::RUNNING_OFFSET};
use peregrine_runtime::options::{OptionSpec, OPTIMIZE_THRESHOLD};
use peregrine_runtime::stats::STATS;
use std::mem::offset_of;
use std::sync::OnceLock;

static STUB: OnceLock<Option<ExecutableBuffer>> = OnceLock::new();

/// The stub's address, emitted on first use; `None` if no executable memory could be had (CALL
/// sites then only call `pg_call`).
pub fn stub() -> Option<usize> {
    STUB.get_or_init(|| emit().ok()).as_ref().map(|b| b.ptr(dynasmrt::AssemblyOffset(0)) as usize)
}

const OB_TYPE: i32 = offset_of!(ffi::PyObject, ob_type) as i32;
const TSTATE_INTERP: i32 = offset_of!(ThreadState, interp) as i32;
const TSTATE_CFRAME: i32 = offset_of!(ThreadState, cframe) as i32;
const TSTATE_RECURSION_REMAINING: i32 = offset_of!(ThreadState, recursion_remaining) as i32;
const TSTATE_DS_CHUNK: i32 = offset_of!(ThreadState, datastack_chunk) as i32;
const TSTATE_DS_TOP: i32 = offset_of!(ThreadState, datastack_top) as i32;
const TSTATE_DS_LIMIT: i32 = offset_of!(ThreadState, datastack_limit) as i32;
const CFRAME_USE_TRACING: i32 = offset_of!(CFrame, use_tracing) as i32;
const CHUNK_DATA: i32 = offset_of!(StackChunk, data) as i32;
const FUNC_CODE: i32 = offset_of!(FunctionObject, func_code) as i32;
const FUNC_GLOBALS: i32 = offset_of!(FunctionObject, func_globals) as i32;
const FUNC_BUILTINS: i32 = offset_of!(FunctionObject, func_builtins) as i32;
const CO_FLAGS: i32 = offset_of!(CodeObject, co_flags) as i32;
const CO_ARGCOUNT: i32 = offset_of!(CodeObject, co_argcount) as i32;
const CO_KWONLYARGCOUNT: i32 = offset_of!(CodeObject, co_kwonlyargcount) as i32;
const CO_NLOCALSPLUS: i32 = offset_of!(CodeObject, co_nlocalsplus) as i32;
const CO_STACKSIZE: i32 = offset_of!(CodeObject, co_stacksize) as i32;
const CO_EXTRA: i32 = offset_of!(CodeObject, co_extra) as i32;
const CO_CODE_ADAPTIVE: i32 = offset_of!(CodeObject, co_code_adaptive) as i32;
const F_FUNC: i32 = offset_of!(InterpreterFrame, f_func) as i32;
const F_GLOBALS: i32 = offset_of!(InterpreterFrame, f_globals) as i32;
const F_BUILTINS: i32 = offset_of!(InterpreterFrame, f_builtins) as i32;
const F_LOCALS: i32 = offset_of!(InterpreterFrame, f_locals) as i32;
const F_CODE: i32 = offset_of!(InterpreterFrame, f_code) as i32;
const F_FRAME_OBJ: i32 = offset_of!(InterpreterFrame, frame_obj) as i32;
const F_PREV_INSTR: i32 = offset_of!(InterpreterFrame, prev_instr) as i32;
const F_STACKTOP: i32 = offset_of!(InterpreterFrame, stacktop) as i32;
const F_IS_ENTRY: i32 = offset_of!(InterpreterFrame, is_entry) as i32;
const F_OWNER: i32 = offset_of!(InterpreterFrame, owner) as i32;
const F_LOCALSPLUS: i32 = offset_of!(InterpreterFrame, localsplus) as i32;

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

fn emit() -> std::io::Result<ExecutableBuffer> {
    let mut ops = dynasmrt::x64::Assembler::new()?;
    // SAFETY-free: addresses of statics and type objects, embedded as constants.
    let function_type = std::ptr::addr_of!(ffi::PyFunction_Type) as i64;
    let hook = direct_call::hook_fn_addr() as i64;
    let (extra_index, extras_verified) = code_state::extra_slot_addrs();
    let optimize_threshold = OPTIMIZE_THRESHOLD.value_addr() as i64;
    let (seq, thread, limit) = peregrine_runtime::cstack::cache_addrs();
    let entries_counter = STATS.baseline.entries.as_ptr() as i64;
    let direct_calls_counter = STATS.baseline.direct_calls.as_ptr() as i64;
    let finish = direct_call::pg_direct_call_finish as *const () as i64;
    let rejected = co_flags::CO_VARARGS | co_flags::CO_VARKEYWORDS | co_flags::RESUMABLE;
    debug_assert_eq!(OptionSpec::OFF, u32::MAX);
    x64!(ops
        ; push rbp
        ; mov rbp, rsp
        ; push rbx
        ; push r12
        ; push r13
        ; push r14
        ; push r15
        ; sub rsp, 24              // [rsp]: the callee's entry; keeps rsp 16-byte aligned
        ; mov r13, rdi             // tstate
        ; mov r12, rsi             // the caller's frame
        // The callable and arguments, as CALL finds them: the method slot set (a method call,
        // `self` first) or NULL with the callable above it. rbx: the slot the result goes to.
        ; mov eax, ecx
        ; shl rax, 3
        ; mov r10, rdx
        ; sub r10, rax             // r10: sp - 8 * oparg
        ; lea rbx, [r10 - 16]
        ; mov r11, [rbx]
        ; mov r15d, ecx            // nargs
        ; test r11, r11
        ; jz >plain
        ; sub r10, 8
        ; add r15d, 1
        ; jmp >selected
        ; plain:
        ; mov r11, [rbx + 8]
        ; selected:
        // r11: the callable, r10: its arguments, r15d: how many. Nothing is touched until every
        // check below passed.
        ; mov rax, QWORD function_type
        ; cmp [r11 + OB_TYPE], rax
        ; jne ->not_handled
        // Our hook evaluates frames (else stock calls through vectorcall and that hook).
        ; mov rax, [r13 + TSTATE_INTERP]
        ; mov rax, [rax + INTERP_EVAL_FRAME_OFFSET as i32]
        ; test rax, rax
        ; jz ->not_handled
        ; mov rcx, QWORD hook
        ; cmp rax, [rcx]
        ; jne ->not_handled
        // Tracing on: the hook runs the callee in the interpreter. (Defensive: CALL's prelude
        // checked for tracing and nothing has run since.)
        ; mov rax, [r13 + TSTATE_CFRAME]
        ; cmp BYTE [rax + CFRAME_USE_TRACING], 0
        ; jne ->not_handled
        // The code's shape: positional parameters only, exactly as many as passed.
        ; mov r14, [r11 + FUNC_CODE]
        ; mov eax, [r14 + CO_FLAGS]
        ; test eax, co_flags::CO_OPTIMIZED
        ; jz ->not_handled
        ; test eax, rejected
        ; jnz ->not_handled
        ; cmp DWORD [r14 + CO_KWONLYARGCOUNT], 0
        ; jne ->not_handled
        ; cmp [r14 + CO_ARGCOUNT], r15d
        ; jne ->not_handled
        // Its state, read from `co_extra` in place as `CodeState::existing` does.
        ; mov rcx, QWORD extras_verified as i64
        ; cmp BYTE [rcx], 0
        ; je ->not_handled
        ; mov rcx, QWORD extra_index as i64
        ; mov rcx, [rcx]
        ; test rcx, rcx
        ; js ->not_handled
        ; mov rax, [r14 + CO_EXTRA]
        ; test rax, rax
        ; jz ->not_handled
        ; cmp rcx, [rax]
        ; jge ->not_handled
        ; mov rax, [rax + rcx * 8 + 8]
        ; test rax, rax
        ; jz ->not_handled
        // A state released while its code object is deallocated reads "not yours".
        ; cmp [rax + state::OWNER], r14
        ; jne ->not_handled
        ; mov rdx, [rax + state::BASELINE_ENTRY]
        ; test rdx, rdx
        ; jz ->not_handled
        ; mov [rsp], rdx
        // The optimizing tier due (`optimize_due`): the hook's business.
        ; mov rcx, QWORD optimize_threshold
        ; mov ecx, [rcx]
        ; cmp [rax + state::ENTRIES], ecx
        ; jb >not_due
        ; cmp BYTE [rax + state::OPTIMIZER_TRIED], 0
        ; je ->not_handled
        ; not_due:
        // The C stack near its end (`cstack::nearly_exhausted`, its cache read as `limit` does):
        // the hook moves deep recursion to a fresh segment. (Deep recursion also reaches the hook
        // at each full data-stack chunk, a few hundred frames apart, well within the reserve:
        // this check is what makes that a margin rather than the mechanism.)
        ; mov rcx, QWORD seq as i64
        ; mov rsi, [rcx]
        ; test sil, 1
        ; jnz ->not_handled
    );
    // mov rdi, fs:[0] (the thread pointer), which the assembler does not spell.
    ops.extend([0x64, 0x48, 0x8b, 0x3c, 0x25, 0x00, 0x00, 0x00, 0x00]);
    x64!(ops
        ; mov rcx, QWORD thread as i64
        ; cmp rdi, [rcx]
        ; jne ->not_handled
        ; mov rcx, QWORD limit as i64
        ; mov rcx, [rcx]
        ; mov rdi, QWORD seq as i64
        ; cmp rsi, [rdi]
        ; jne ->not_handled
        ; cmp rsp, rcx
        ; jb ->not_handled
        // Room in the data stack's chunk, not at its first slot (`push_frame`).
        ; mov rdi, [r13 + TSTATE_DS_TOP]
        ; test rdi, rdi
        ; jz ->not_handled
        ; mov rcx, [r13 + TSTATE_DS_CHUNK]
        ; test rcx, rcx
        ; jz ->not_handled
        ; lea rcx, [rcx + CHUNK_DATA]
        ; cmp rdi, rcx
        ; je ->not_handled
        ; movsxd rcx, DWORD [r14 + CO_NLOCALSPLUS]
        ; movsxd rsi, DWORD [r14 + CO_STACKSIZE]
        ; add rsi, rcx
        ; lea rsi, [rdi + rsi * 8 + F_LOCALSPLUS]
        ; cmp rsi, [r13 + TSTATE_DS_LIMIT]
        ; jae ->not_handled
        // Committed: the frame is pushed (rdi) and takes the callable and the arguments.
        ; mov [r13 + TSTATE_DS_TOP], rsi
        ; mov [rdi + F_FUNC], r11
        ; mov [rdi + F_CODE], r14
        ; inc QWORD [r14]
    );
    if ref_debug::ENABLED {
        x64!(ops ; mov rsi, QWORD ref_debug::total_addr() as i64 ; inc QWORD [rsi]);
    }
    x64!(ops
        ; mov rdx, [r11 + FUNC_BUILTINS]
        ; mov [rdi + F_BUILTINS], rdx
        ; mov rdx, [r11 + FUNC_GLOBALS]
        ; mov [rdi + F_GLOBALS], rdx
        ; mov QWORD [rdi + F_LOCALS], 0
        ; mov [rdi + F_STACKTOP], ecx
        ; mov QWORD [rdi + F_FRAME_OBJ], 0
        ; lea rdx, [r14 + CO_CODE_ADAPTIVE - 2]
        ; mov [rdi + F_PREV_INSTR], rdx
        ; mov BYTE [rdi + F_IS_ENTRY], 0
        ; mov BYTE [rdi + F_OWNER], 0
        // The arguments where they bind, then empty locals.
        ; xor edx, edx
        ; args:
        ; cmp edx, r15d
        ; jae >locals
        ; mov rsi, [r10 + rdx * 8]
        ; mov [rdi + rdx * 8 + F_LOCALSPLUS], rsi
        ; add edx, 1
        ; jmp <args
        ; locals:
        ; cmp rdx, rcx
        ; jae >filled
        ; mov QWORD [rdi + rdx * 8 + F_LOCALSPLUS], 0
        ; add edx, 1
        ; jmp <locals
        ; filled:
        // Pushed: as ceval's inline call, the caller now shows CALL's last cache unit.
        ; mov [r12 + F_PREV_INSTR], r8
        // The entry, counted as the hook counts it (`run_frame`), and the site's form consumed.
        ; cmp DWORD [rax + state::ENTRIES], -1
        ; je >saturated
        ; add DWORD [rax + state::ENTRIES], 1
        ; saturated:
        ; mov rcx, QWORD entries_counter
        ; add QWORD [rcx], 1
        ; mov rcx, QWORD direct_calls_counter
        ; add QWORD [rcx], 1
        ; mov BYTE [r9 + RUNNING_OFFSET], 0
        ; mov r14, rdi
        ; mov rsi, rdi
        ; mov rdi, r13
        ; xor edx, edx
        ; call QWORD [rsp]
        ; mov r15, rax
        // `clear_and_pop`: a frame object that outlives the frame takes it over (in Rust);
        // otherwise its references are released one recursion level deeper, in the order
        // `_PyFrame_Clear` releases them, and the frame is popped.
        ; cmp QWORD [r14 + F_FRAME_OBJ], 0
        ; jne >owned
        ; sub DWORD [r13 + TSTATE_RECURSION_REMAINING], 1
        ; movsxd rax, DWORD [r14 + F_STACKTOP]
        ; mov [rsp + 8], rax
        ; xor r12d, r12d
        ; release:
        ; cmp r12, [rsp + 8]
        ; jge >released
        ; mov rdi, [r14 + r12 * 8 + F_LOCALSPLUS]
    );
    xdecref_rdi(&mut ops);
    x64!(ops
        ; add r12, 1
        ; jmp <release
        ; released:
        ; mov rdi, [r14 + F_LOCALS]
    );
    xdecref_rdi(&mut ops);
    x64!(ops ; mov rdi, [r14 + F_FUNC]);
    xdecref_rdi(&mut ops);
    x64!(ops ; mov rdi, [r14 + F_CODE]);
    xdecref_rdi(&mut ops);
    x64!(ops
        ; add DWORD [r13 + TSTATE_RECURSION_REMAINING], 1
        ; mov [r13 + TSTATE_DS_TOP], r14
        ; jmp >cleared
        ; owned:
        ; mov rdi, r13
        ; mov rsi, r14
        ; mov rax, QWORD finish
        ; call rax
        ; cleared:
        // The result replaces the callable's slots; NULL raises from there.
        ; mov [rbx], r15
        ; lea rax, [rbx + 8]
        ; test r15, r15
        ; jnz ->done
        ; or rax, 1
        ; jmp ->done
        ; ->not_handled:
        ; xor eax, eax
        ; ->done:
        ; add rsp, 24
        ; pop r15
        ; pop r14
        ; pop r13
        ; pop r12
        ; pop rbx
        ; pop rbp
        ; ret
    );
    ops.finalize().map_err(|_| std::io::Error::other("could not make the call stub executable"))
}
