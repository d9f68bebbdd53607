//! One template per bytecode instruction (`gen_instr`), YJIT-style: a single dispatch on the
//! opcode with a uniform signature. Simple stack and local operations are inlined; everything
//! else calls its semantic helper in `peregrine_runtime::jit::ops`.
//!
//! Instructions that only run inside exception handlers are compiled as hand-offs to the
//! interpreter: an exception always hands the frame to the interpreter (which unwinds through the
//! exception table), so compiled code never reaches a handler. `RAISE_VARARGS` and `RERAISE`,
//! which always raise, hand off before running, so the interpreter raises exactly as it would.

use crate::emitter::{x64, Emitter, FRAME_LOCALSPLUS};
use crate::families;
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi};
use peregrine_runtime::bytecode::{op, Handler, Instr};
use peregrine_runtime::cpython::ffi;
use peregrine_runtime::jit::ops as h;
use peregrine_runtime::jit::ops::OpHelper;
use peregrine_runtime::jit::specialize::Site;
use peregrine_runtime::ExitReason;

/// What the template of an opcode is.
#[derive(Clone, Copy)]
pub enum Template {
    /// No code at all (the instruction only affects compile-time state or nothing).
    Nothing,
    /// Inline code written in `gen_instr`.
    Inline,
    /// A call to a uniform helper.
    Helper(OpHelper),
    /// A call to a uniform helper that calls Python code the way CALL does, followed by ceval's
    /// eval-breaker check after calls.
    CallingHelper(OpHelper),
    /// Hand the frame to the interpreter before the instruction.
    HandOff,
}

/// The template for `opcode`, or `None` if the baseline does not compile it yet.
pub fn template(opcode: u8) -> Option<Template> {
    core_template(opcode)
        .or_else(|| families::names::template(opcode))
        .or_else(|| families::unpack::template(opcode))
        .or_else(|| families::gen::template(opcode))
}

/// Templates of the core opcodes (stack, locals, operators, attributes, calls, containers,
/// iteration, jumps); the other families live in `families/`.
fn core_template(opcode: u8) -> Option<Template> {
    use op::*;
    use Template::*;
    Some(match opcode {
        NOP | KW_NAMES | EXTENDED_ARG | CACHE => Nothing,
        RESUME | LOAD_FAST | LOAD_CLOSURE | STORE_FAST | LOAD_CONST | POP_TOP | PUSH_NULL | COPY
        | SWAP | RETURN_VALUE | JUMP_FORWARD | JUMP_BACKWARD | JUMP_BACKWARD_NO_INTERRUPT
        | POP_JUMP_FORWARD_IF_FALSE | POP_JUMP_BACKWARD_IF_FALSE | POP_JUMP_FORWARD_IF_TRUE
        | POP_JUMP_BACKWARD_IF_TRUE | POP_JUMP_FORWARD_IF_NONE | POP_JUMP_BACKWARD_IF_NONE
        | POP_JUMP_FORWARD_IF_NOT_NONE | POP_JUMP_BACKWARD_IF_NOT_NONE | JUMP_IF_FALSE_OR_POP
        | JUMP_IF_TRUE_OR_POP | FOR_ITER | PRECALL | CALL | BINARY_SUBSCR => Inline,
        DELETE_FAST => Helper(h::pg_delete_fast),
        MAKE_CELL => Helper(h::pg_make_cell),
        COPY_FREE_VARS => Helper(h::pg_copy_free_vars),
        LOAD_DEREF => Helper(h::pg_load_deref),
        STORE_DEREF => Helper(h::pg_store_deref),
        DELETE_DEREF => Helper(h::pg_delete_deref),
        BINARY_OP => Helper(h::pg_binary_op),
        COMPARE_OP => Helper(h::pg_compare_op),
        IS_OP => Helper(h::pg_is_op),
        CONTAINS_OP => Helper(h::pg_contains_op),
        UNARY_POSITIVE => Helper(h::pg_unary_positive),
        UNARY_NEGATIVE => Helper(h::pg_unary_negative),
        UNARY_INVERT => Helper(h::pg_unary_invert),
        UNARY_NOT => Helper(h::pg_unary_not),
        STORE_SUBSCR => Helper(h::pg_store_subscr),
        DELETE_SUBSCR => Helper(h::pg_delete_subscr),
        LOAD_GLOBAL => Helper(h::pg_load_global),
        STORE_GLOBAL => Helper(h::pg_store_global),
        DELETE_GLOBAL => Helper(h::pg_delete_global),
        LOAD_ATTR => Helper(h::pg_load_attr),
        STORE_ATTR => Helper(h::pg_store_attr),
        DELETE_ATTR => Helper(h::pg_delete_attr),
        LOAD_METHOD => Helper(h::pg_load_method),
        BUILD_TUPLE => Helper(h::pg_build_tuple),
        BUILD_LIST => Helper(h::pg_build_list),
        BUILD_SET => Helper(h::pg_build_set),
        BUILD_MAP => Helper(h::pg_build_map),
        BUILD_CONST_KEY_MAP => Helper(h::pg_build_const_key_map),
        BUILD_STRING => Helper(h::pg_build_string),
        BUILD_SLICE => Helper(h::pg_build_slice),
        LIST_APPEND => Helper(h::pg_list_append),
        SET_ADD => Helper(h::pg_set_add),
        MAP_ADD => Helper(h::pg_map_add),
        LIST_TO_TUPLE => Helper(h::pg_list_to_tuple),
        GET_ITER => Helper(h::pg_get_iter),
        GET_LEN => Helper(h::pg_get_len),
        UNPACK_SEQUENCE => Inline,
        FORMAT_VALUE => Helper(h::pg_format_value),
        MAKE_FUNCTION => Helper(h::pg_make_function),
        LOAD_ASSERTION_ERROR => Helper(h::pg_load_assertion_error),
        RAISE_VARARGS | RERAISE | PUSH_EXC_INFO | POP_EXCEPT | CHECK_EXC_MATCH | CHECK_EG_MATCH
        | WITH_EXCEPT_START | PREP_RERAISE_STAR => HandOff,
        _ => return None,
    })
}

/// Whether `next`, the instruction after a COMPARE_OP, is one ceval's specializer combines with
/// it (`_Py_Specialize_CompareOp`): a POP_JUMP_*_IF_TRUE/FALSE in the very next code unit, so
/// not one with an EXTENDED_ARG prefix.
fn combines_with_compare(next: &Instr) -> bool {
    use op::*;
    next.start == next.index
        && matches!(
            next.opcode,
            POP_JUMP_FORWARD_IF_FALSE | POP_JUMP_BACKWARD_IF_FALSE | POP_JUMP_FORWARD_IF_TRUE | POP_JUMP_BACKWARD_IF_TRUE
        )
}

/// Whether `first` and `second` run as one of ceval's superinstructions in warm code:
/// `_PyCode_Quicken` turns LOAD_FAST, STORE_FAST or LOAD_CONST followed, in the very next code
/// unit, by LOAD_FAST (or LOAD_FAST by LOAD_CONST, STORE_FAST by STORE_FAST) into a combined
/// instruction at the first unit. It pairs by position only, so in a run of them each unit heads
/// a pair; which pairs run depends on where execution enters the run.
pub fn pairs_with(first: &Instr, second: &Instr) -> bool {
    use op::*;
    first.next == second.start
        && second.start == second.index
        && matches!(
            (first.opcode, second.opcode),
            (LOAD_FAST, LOAD_FAST) | (LOAD_FAST, LOAD_CONST) | (STORE_FAST, LOAD_FAST) | (STORE_FAST, STORE_FAST)
                | (LOAD_CONST, LOAD_FAST)
        )
}

/// An instruction's place in a possible superinstruction (see [`pairs_with`]).
///
/// A superinstruction runs both halves under one dispatch: no tracing check before the second,
/// and `prev_instr` stays on the first half's unit, which the second half's destructors and
/// UnboundLocalError (its traceback entry) see. Whether an instruction heads a pair is decided
/// when it is dispatched, so the first half computes it (warm code, `bl`) on its dispatched path
/// and, if it pairs, enters the next instruction at `next_second_entry`, a second entry that skips
/// the prelude. Entered there, an instruction heads no pair itself.
#[derive(Clone, Copy, Default)]
pub struct Pairing {
    /// This instruction's entry as a second half.
    pub second_entry: Option<DynamicLabel>,
    /// The next instruction's entry as a second half, when this one can head a pair with it.
    pub next_second_entry: Option<DynamicLabel>,
    /// For a LOAD_FAST second half whose exception handler differs from its first half's (the
    /// pair straddles a try block's edge): its own handler, if any.
    pub straddles_handlers: Option<Option<Handler>>,
}

/// Emits the code of one instruction. `labels[i]` is the label of the instruction starting at
/// code unit `i`; `kwnames` is the constant named by a preceding KW_NAMES, for CALL; `next` is
/// the instruction after this one.
/// `resume_at` is where the interpreter must start when the frame is handed over before this
/// instruction: its own start, except inside a KW_NAMES/PRECALL/CALL group, whose state (the
/// keyword names) lives in compiled code only, so the interpreter re-runs the group from its start.
pub fn gen_instr(
    e: &mut Emitter,
    ins: &Instr,
    resume_at: usize,
    labels: &dyn Fn(usize) -> DynamicLabel,
    consts: &[*mut ffi::PyObject],
    kwnames: *mut ffi::PyObject,
    next: Option<&Instr>,
    pairing: Pairing,
    site: *const Site,
) {
    let mut template = template(ins.opcode).expect("checked before emitting");
    if ins.opcode == op::COMPARE_OP && next.is_some_and(combines_with_compare) {
        template = Template::Helper(h::pg_compare_op_jump);
    }
    if let Template::Nothing = template {
        return;
    }
    if let Template::HandOff = template {
        let label = e.handoff_before(ins.start, ExitReason::InterpreterOnlyInstruction);
        x64!(e.ops ; jmp =>label);
        return;
    }
    e.instr_prelude(resume_at, ins.index);
    if pairing.next_second_entry.is_some() {
        e.set_bl_if_warm(); // dispatched: heads a pair if the code is warm
    }
    let mut after_body = None;
    if let Some(second) = pairing.second_entry {
        let body = e.label();
        x64!(e.ops ; jmp =>body ; =>second);
        if pairing.next_second_entry.is_some() {
            x64!(e.ops ; xor ebx, ebx); // a second half heads no pair
        }
        if let Some(handler) = pairing.straddles_handlers {
            // ceval raises the second half's UnboundLocalError with the traceback entry at the
            // first half and the exception table searched at the second, which one hand-off
            // cannot do: this path unwinds to the second half's handler itself.
            let after = e.label();
            e.load_local_checked_in_pair(ins.oparg, handler);
            e.incref_rax();
            e.push_rax();
            x64!(e.ops ; jmp =>after);
            after_body = Some(after);
        }
        x64!(e.ops ; =>body);
    }
    match template {
        Template::Helper(helper) => {
            let error = e.error_exit();
            e.call_op_helper(helper, ins.oparg, error);
            return;
        }
        Template::CallingHelper(helper) => {
            let error = e.error_exit();
            e.call_op_helper(helper, ins.oparg, error);
            e.check_pending_after_call(error);
            return;
        }
        _ => {}
    }
    let oparg = ins.oparg;
    let local = FRAME_LOCALSPLUS + 8 * oparg as i32;
    let target = || labels(ins.jump_target().expect("a jump"));
    // SAFETY-free: addresses of the bool/None singletons, compared by identity.
    let (py_true, py_false, py_none) =
        unsafe { (ffi::Py_True() as i64, ffi::Py_False() as i64, ffi::Py_None() as i64) };
    use op::*;
    match ins.opcode {
        RESUME => {
            if oparg < 2 {
                e.check_eval_breaker(ins.start);
            }
        }
        LOAD_FAST | LOAD_CLOSURE => {
            let error = e.error_exit();
            e.load_local_checked(oparg, error);
            e.incref_rax();
            e.push_rax();
        }
        STORE_FAST => {
            x64!(e.ops
                ; sub r14, 8
                ; mov rax, [r14]
                ; mov rdi, [r12 + local]
                ; mov [r12 + local], rax
            );
            e.xdecref_rdi();
        }
        LOAD_CONST => {
            x64!(e.ops ; mov rax, QWORD consts[oparg as usize] as i64);
            e.incref_rax();
            e.push_rax();
        }
        POP_TOP => {
            x64!(e.ops ; sub r14, 8 ; mov rdi, [r14]);
            e.decref_rdi();
        }
        PUSH_NULL => {
            x64!(e.ops ; mov QWORD [r14], 0 ; add r14, 8);
        }
        COPY => {
            x64!(e.ops ; mov rax, [r14 - 8 * oparg as i32]);
            e.incref_rax();
            e.push_rax();
        }
        SWAP => {
            x64!(e.ops
                ; mov rax, [r14 - 8]
                ; mov rcx, [r14 - 8 * oparg as i32]
                ; mov [r14 - 8], rcx
                ; mov [r14 - 8 * oparg as i32], rax
            );
        }
        RETURN_VALUE => e.return_top(),
        JUMP_FORWARD | JUMP_BACKWARD_NO_INTERRUPT => {
            let t = target();
            x64!(e.ops ; jmp =>t);
        }
        JUMP_BACKWARD => {
            e.count_backward_jump();
            // Before the jump: the interpreter re-runs JUMP_BACKWARD (and its own check) when
            // anything but a GIL drop is pending.
            e.check_eval_breaker(ins.start);
            let t = target();
            x64!(e.ops ; jmp =>t);
        }
        POP_JUMP_FORWARD_IF_FALSE | POP_JUMP_BACKWARD_IF_FALSE | POP_JUMP_FORWARD_IF_TRUE
        | POP_JUMP_BACKWARD_IF_TRUE => {
            let jump_if_true = matches!(ins.opcode, POP_JUMP_FORWARD_IF_TRUE | POP_JUMP_BACKWARD_IF_TRUE);
            if ins.jump_target() < Some(ins.start) {
                // ceval checks the breaker after a backward jump; checking before the instruction
                // and letting the interpreter run it when work is pending is exact.
                e.check_eval_breaker(ins.start);
            }
            let t = target();
            let error = e.error_exit();
            let (on_true, on_false) = (e.label(), e.label());
            x64!(e.ops
                ; sub r14, 8
                ; mov rdi, [r14]
                ; mov rax, QWORD py_true
                ; cmp rdi, rax
                ; je >is_true
                ; mov rax, QWORD py_false
                ; cmp rdi, rax
                ; je >is_false
                // Anything else: PyObject_IsTrue, which releases the value.
                ; lea rdi, [r14 + 8]
                ; mov rax, QWORD h::pg_pop_truth as *const () as usize as i64
                ; call rax
                ; test eax, eax
                ; js =>error
                ; jnz =>on_true
                ; jmp =>on_false
            );
            // True and False are never deallocated.
            x64!(e.ops ; is_true:);
            e.decref_immortal_rdi();
            x64!(e.ops ; jmp =>on_true ; is_false:);
            e.decref_immortal_rdi();
            x64!(e.ops ; jmp =>on_false);
            let fallthrough = e.label();
            if jump_if_true {
                x64!(e.ops ; =>on_true ; jmp =>t ; =>on_false ; =>fallthrough);
            } else {
                x64!(e.ops ; =>on_false ; jmp =>t ; =>on_true ; =>fallthrough);
            }
        }
        POP_JUMP_FORWARD_IF_NONE | POP_JUMP_BACKWARD_IF_NONE | POP_JUMP_FORWARD_IF_NOT_NONE
        | POP_JUMP_BACKWARD_IF_NOT_NONE => {
            let jump_if_none = matches!(ins.opcode, POP_JUMP_FORWARD_IF_NONE | POP_JUMP_BACKWARD_IF_NONE);
            if ins.jump_target() < Some(ins.start) {
                e.check_eval_breaker(ins.start); // as for POP_JUMP_BACKWARD_IF_TRUE/FALSE
            }
            let t = target();
            x64!(e.ops
                ; sub r14, 8
                ; mov rdi, [r14]
                ; xor ebx, ebx
                ; mov rax, QWORD py_none
                ; cmp rdi, rax
                ; sete bl
            );
            e.decref_rdi();
            x64!(e.ops ; test bl, bl);
            if jump_if_none {
                x64!(e.ops ; jnz =>t);
            } else {
                x64!(e.ops ; jz =>t);
            }
        }
        JUMP_IF_FALSE_OR_POP | JUMP_IF_TRUE_OR_POP => {
            // Jump keeping the value when its truth is `keep_if`; otherwise pop it.
            let keep_if = ins.opcode == JUMP_IF_TRUE_OR_POP;
            let t = target();
            let error = e.error_exit();
            let (on_true, on_false, pop) = (e.label(), e.label(), e.label());
            x64!(e.ops
                ; mov rdi, [r14 - 8]
                ; mov rax, QWORD py_true
                ; cmp rdi, rax
                ; je =>on_true
                ; mov rax, QWORD py_false
                ; cmp rdi, rax
                ; je =>on_false
                ; mov rdi, r14
                ; mov rax, QWORD h::pg_peek_truth as *const () as usize as i64
                ; call rax
                ; test eax, eax
                ; js =>error
                ; jnz =>on_true
                ; jmp =>on_false
            );
            let done = e.label();
            let (jump_label, pop_label) = if keep_if { (on_true, on_false) } else { (on_false, on_true) };
            x64!(e.ops
                ; =>jump_label
                ; jmp =>t
                ; =>pop_label
                ; =>pop
                ; sub r14, 8
                ; mov rdi, [r14]
            );
            e.decref_rdi();
            x64!(e.ops ; =>done);
        }
        FOR_ITER => {
            // The exhausted iterator is popped (the stack shrinks) and the loop exits.
            let (t, error) = (target(), e.error_exit());
            e.call_op_helper_branching(h::pg_for_iter, error, t);
        }
        PRECALL => {
            // Never raises; replays the site's specialization for the CALL that follows.
            x64!(e.ops
                ; mov rdi, r13
                ; mov rsi, r12
                ; mov rdx, r14
                ; mov ecx, oparg as i32
                ; mov r8, QWORD kwnames as i64
                ; mov r9, QWORD site as i64
                ; mov rax, QWORD h::pg_precall as *const () as usize as i64
                ; call rax
                ; mov r14, rax
            );
        }
        UNPACK_SEQUENCE => {
            let error = e.error_exit();
            x64!(e.ops
                ; mov rdi, r13
                ; mov rsi, r12
                ; mov rdx, r14
                ; mov ecx, oparg as i32
                ; mov r8, QWORD site as i64
                ; mov rax, QWORD h::pg_unpack_sequence as *const () as usize as i64
                ; call rax
                ; mov r14, rax
                ; test al, 1
                ; jnz =>error
            );
        }
        BINARY_SUBSCR => {
            let error = e.error_exit();
            x64!(e.ops
                ; mov rdi, r13
                ; mov rsi, r12
                ; mov rdx, r14
                ; mov rcx, QWORD site as i64
                ; mov rax, QWORD h::pg_binary_subscr as *const () as usize as i64
                ; call rax
                ; mov r14, rax
                ; test al, 1
                ; jnz =>error
            );
        }
        CALL => {
            let error = e.error_exit();
            x64!(e.ops
                ; mov rdi, r13
                ; mov rsi, r12
                ; mov rdx, r14
                ; mov ecx, oparg as i32
                ; mov r8, QWORD kwnames as i64
                ; mov r9, QWORD site as i64
                ; mov rax, QWORD h::pg_call as *const () as usize as i64
                ; call rax
                ; mov r14, rax
                ; test al, 1
                ; jnz =>error
            );
            e.check_pending_after_call(error);
        }
        YIELD_VALUE => e.yield_top(),
        SEND => {
            // The receiver returned: its result replaced it (the stack shrinks) and we jump.
            let (t, error) = (target(), e.error_exit());
            e.call_op_helper_branching(peregrine_runtime::jit::gen::pg_send, error, t);
        }
        other => unreachable!("opcode {other} has no inline template"),
    }
    if let Some(after) = after_body {
        x64!(e.ops ; =>after);
    }
    if let Some(next_second) = pairing.next_second_entry {
        // Only LOAD_FAST, STORE_FAST and LOAD_CONST head pairs; their code keeps `rbx`.
        x64!(e.ops ; test bl, bl ; jnz =>next_second);
    }
}
