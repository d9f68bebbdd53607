//! One template per bytecode instruction, YJIT-style: [`template`], one table keyed by opcode,
//! says what kind each is, and `gen_instr` is a single dispatch on the opcode with a uniform
//! signature. Simple stack and local operations are inlined; everything else calls its semantic
//! helper in `peregrine_runtime::jit` (`ops`, `names`, `unpack`, `gen`).
//!
//! Exceptions stay in compiled code: each instruction's error exit unwinds to its handler, found
//! in the exception table at compile time (`Emitter::error_exit`), and the instructions of
//! handlers are compiled like any other (`jit::exceptions`). Only `except*`'s two instructions
//! hand the frame to the interpreter: the exception-group projection PREP_RERAISE_STAR needs is
//! private to libpython.

use crate::offsets::*;
use crate::emitter::{x64, AfterCold, ColdUnit, Emitter, Prelude};
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi};
use peregrine_runtime::bytecode::{op, Instr};
use peregrine_runtime::cpython::{ffi, ref_debug, CodeObject};
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
    /// A call to a uniform helper that may raise an exception which already has its traceback
    /// (`jit::exceptions::unwind_at`: ceval's `goto exception_unwind`) as well as a new one.
    RaisingHelper(OpHelper),
    /// Hand the frame to the interpreter before the instruction.
    HandOff,
}

/// The template of every base opcode, one arm each (a second arm for an opcode fails to compile):
/// `None` for numbers that are not base opcodes and for those listed in [`NOT_COMPILED`]. The
/// rows of the runtime's table (`peregrine_runtime::opcodes::OPCODES`) are all covered (tested
/// below); what each opcode is (arguments, stack use) is that table's business, not this one's.
#[deny(unreachable_patterns)]
pub fn template(opcode: u8) -> Option<Template> {
    use op::*;
    use peregrine_runtime::jit::{exceptions as exc, gen, names, unpack};
    use Template::*;
    Some(match opcode {
        // Core: stack and locals, operators, attributes, calls, containers, iteration, jumps.
        NOP | KW_NAMES | EXTENDED_ARG | CACHE => Nothing,
        RESUME | LOAD_FAST | LOAD_CLOSURE | STORE_FAST | LOAD_CONST | POP_TOP | PUSH_NULL | COPY
        | SWAP | RETURN_VALUE | JUMP_FORWARD | JUMP_BACKWARD | JUMP_BACKWARD_NO_INTERRUPT
        | POP_JUMP_FORWARD_IF_FALSE | POP_JUMP_BACKWARD_IF_FALSE | POP_JUMP_FORWARD_IF_TRUE
        | POP_JUMP_BACKWARD_IF_TRUE | POP_JUMP_FORWARD_IF_NONE | POP_JUMP_BACKWARD_IF_NONE
        | POP_JUMP_FORWARD_IF_NOT_NONE | POP_JUMP_BACKWARD_IF_NOT_NONE | JUMP_IF_FALSE_OR_POP
        | JUMP_IF_TRUE_OR_POP | FOR_ITER | PRECALL | CALL | BINARY_SUBSCR | IS_OP | UNARY_NOT => Inline,
        // Inline caches and exact-type fast paths (`fast_paths`), the site helper behind them.
        BINARY_OP | LOAD_GLOBAL | LOAD_ATTR | STORE_ATTR | LOAD_METHOD | STORE_SUBSCR => Inline,
        // Cells: the cell's contents read and written inline, the helper for the unbound error
        // (LOAD_DEREF) and for a COPY_FREE_VARS of another shape than the compiler's.
        COPY_FREE_VARS | LOAD_DEREF | STORE_DEREF => Inline,
        DELETE_FAST => Helper(h::pg_delete_fast),
        MAKE_CELL => Helper(h::pg_make_cell),
        DELETE_DEREF => Helper(h::pg_delete_deref),
        COMPARE_OP => Helper(h::pg_compare_op),
        CONTAINS_OP => Helper(h::pg_contains_op),
        UNARY_POSITIVE => Helper(h::pg_unary_positive),
        UNARY_NEGATIVE => Helper(h::pg_unary_negative),
        UNARY_INVERT => Helper(h::pg_unary_invert),
        DELETE_SUBSCR => Helper(h::pg_delete_subscr),
        STORE_GLOBAL => Helper(h::pg_store_global),
        DELETE_GLOBAL => Helper(h::pg_delete_global),
        DELETE_ATTR => Helper(h::pg_delete_attr),
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
        UNPACK_SEQUENCE => Inline, // fast_paths
        FORMAT_VALUE => Helper(h::pg_format_value),
        MAKE_FUNCTION => Helper(h::pg_make_function),
        LOAD_ASSERTION_ERROR => Helper(h::pg_load_assertion_error),

        // Raising and handling exceptions (`jit::exceptions`). WITH_EXCEPT_START calls `__exit__`
        // but ends with a plain DISPATCH in ceval: no eval-breaker check.
        RAISE_VARARGS => RaisingHelper(exc::pg_raise_varargs),
        RERAISE => RaisingHelper(exc::pg_reraise),
        PUSH_EXC_INFO => Helper(exc::pg_push_exc_info),
        POP_EXCEPT => Helper(exc::pg_pop_except),
        CHECK_EXC_MATCH => Helper(exc::pg_check_exc_match),
        WITH_EXCEPT_START => Helper(exc::pg_with_except_start),
        // `except*`: the interpreter runs the clauses from their first match on.
        CHECK_EG_MATCH | PREP_RERAISE_STAR => HandOff,

        // Names, imports and class bodies (`jit::names`). None of them is followed by an
        // eval-breaker check in ceval (they end with a plain DISPATCH), so none is a
        // `CallingHelper` even though several can run arbitrary code.
        LOAD_NAME => Helper(names::pg_load_name),
        STORE_NAME => Helper(names::pg_store_name),
        DELETE_NAME => Helper(names::pg_delete_name),
        LOAD_CLASSDEREF => Helper(names::pg_load_classderef),
        LOAD_BUILD_CLASS => Helper(names::pg_load_build_class),
        SETUP_ANNOTATIONS => Helper(names::pg_setup_annotations),
        IMPORT_NAME => Helper(names::pg_import_name),
        IMPORT_FROM => Helper(names::pg_import_from),
        IMPORT_STAR => Helper(names::pg_import_star),
        PRINT_EXPR => Helper(names::pg_print_expr),

        // Star calls and displays, starred assignment, `with` entry and pattern matching
        // (`jit::unpack`). CALL_FUNCTION_EX calls arbitrary code the way CALL does, so it is
        // followed by ceval's eval-breaker check.
        CALL_FUNCTION_EX => CallingHelper(unpack::pg_call_function_ex),
        DICT_MERGE => Helper(unpack::pg_dict_merge),
        DICT_UPDATE => Helper(unpack::pg_dict_update),
        LIST_EXTEND => Helper(unpack::pg_list_extend),
        SET_UPDATE => Helper(unpack::pg_set_update),
        UNPACK_EX => Helper(unpack::pg_unpack_ex),
        BEFORE_WITH => Helper(unpack::pg_before_with),
        MATCH_CLASS => Helper(unpack::pg_match_class),
        MATCH_KEYS => Helper(unpack::pg_match_keys),
        MATCH_MAPPING => Helper(unpack::pg_match_mapping),
        MATCH_SEQUENCE => Helper(unpack::pg_match_sequence),

        // Generators and coroutines (`jit::gen`). RETURN_GENERATOR, YIELD_VALUE and SEND leave
        // or branch the frame, inline. END_ASYNC_FOR runs in the exception handler of `async for`:
        // it ends the loop or re-raises.
        RETURN_GENERATOR | YIELD_VALUE | SEND => Inline,
        GET_AWAITABLE => Helper(gen::pg_get_awaitable),
        GET_AITER => Helper(gen::pg_get_aiter),
        GET_ANEXT => Helper(gen::pg_get_anext),
        GET_YIELD_FROM_ITER => Helper(gen::pg_get_yield_from_iter),
        ASYNC_GEN_WRAP => Helper(gen::pg_async_gen_wrap),
        BEFORE_ASYNC_WITH => Helper(gen::pg_before_async_with),
        END_ASYNC_FOR => RaisingHelper(exc::pg_end_async_for),

        _ => return None,
    })
}

/// Base opcodes the baseline deliberately does not compile (a code object using one runs in the
/// interpreter), with the reason. None in 3.11: even instructions compiled code never reaches
/// have a template, a hand-off.
pub const NOT_COMPILED: &[(u8, &str)] = &[];

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
///
/// That is the dynamic form. A run of pairable instructions entered only at its start, when the
/// code is already warm there, pairs by position from the start (warmth never goes back), so
/// its warm copy is emitted with each instruction's role fixed ([`WarmRole`]): no flag, no
/// branch. The dynamic form is then that run's cold copy, for the executions before warm-up.
#[derive(Clone, Copy, Default)]
pub struct Pairing {
    /// In a run's warm copy: the instruction's fixed role (the dynamic fields are unused).
    pub warm_role: Option<WarmRole>,
    /// This instruction's entry as a second half.
    pub second_entry: Option<DynamicLabel>,
    /// The code unit of the first half, when `second_entry` is set.
    pub first_half_index: usize,
    /// The next instruction's entry as a second half, when this one can head a pair with it.
    pub next_second_entry: Option<DynamicLabel>,
}

/// An instruction's fixed place in a run's warm copy (see [`Pairing`]).
#[derive(Clone, Copy)]
pub enum WarmRole {
    /// Heads a pair with the next instruction.
    Head,
    /// The second half of a pair; the first half is at code unit `first_half_index`.
    Second { first_half_index: usize },
    /// The last instruction of an odd run: dispatched on its own.
    Alone,
}

/// Whether the template of `opcode` calls nothing (no helper, no destructor, no allocation) on
/// its way to the next instruction: the instructions after it need no tracing check of their
/// own (see `emitter::Prelude`). Instructions without code are transparent (see
/// [`emits_code`]).
pub fn runs_nothing(opcode: u8) -> bool {
    use op::*;
    // LOAD_FAST's unbound path raises and leaves the frame: not the way to the next instruction.
    matches!(opcode, LOAD_FAST | LOAD_CLOSURE | LOAD_CONST | PUSH_NULL | COPY | SWAP)
}

/// Whether `opcode`'s template is quiet (see `emitter::Prelude`): its hot path calls nothing,
/// so it stores no `prev_instr`; its cold paths store it themselves and, where they run code,
/// make the next instruction's tracing check, so the instruction after it needs no check of its
/// own either.
pub fn quiet(opcode: u8) -> bool {
    runs_nothing(opcode) || matches!(opcode, op::STORE_FAST | op::POP_TOP)
}

/// Whether nothing has run since the last tracing check once an instruction of `opcode` is done
/// on the fall-through path, given the opcode of the first half it ran as the second half of,
/// if it may have: a second half has no check of its own, so the first half's code counts too
/// (a quiet first half's cold path skips its check when the pair runs).
pub fn nothing_ran_after(opcode: u8, second_half_of: Option<u8>) -> bool {
    quiet(opcode) && !second_half_of.is_some_and(|first| !runs_nothing(first))
}

/// Whether a second half's cold paths read `bh` to tell how it was entered ([`ColdUnit`]).
fn reads_entry_flag(opcode: u8) -> bool {
    matches!(opcode, op::LOAD_FAST | op::STORE_FAST)
}

/// Whether the template of `opcode` emits any code (a prelude included).
pub fn emits_code(opcode: u8) -> bool {
    !matches!(template(opcode), Some(Template::Nothing))
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
    check_tracing: bool,
) {
    let template = template(ins.opcode).expect("checked before emitting");
    if let Template::Nothing = template {
        return;
    }
    if let Template::HandOff = template {
        e.bind_pending_tracing(ins.start);
        let label = e.handoff_before(ins.start, ExitReason::InterpreterOnlyInstruction);
        x64!(e.ops ; jmp =>label);
        return;
    }
    if ins.opcode == op::CALL {
        if let Some((entry, checked)) = e.fused_call.take() {
            gen_fused_call(e, ins, resume_at, site, entry, checked);
            return;
        }
    }
    let own = e.unit_addr(ins.index as isize);
    let (unit, after_cold) = match pairing.warm_role {
        Some(role) => {
            let (unit, after_cold) = match role {
                // The pair's second half runs next, without a check: the instruction after the
                // pair makes it (its prelude checks after a first half that is not runs_nothing).
                WarmRole::Head => (ColdUnit::Own(own), AfterCold::Skip),
                WarmRole::Second { first_half_index } => {
                    (ColdUnit::Own(e.unit_addr(first_half_index as isize)), AfterCold::Check)
                }
                WarmRole::Alone => (ColdUnit::Own(own), AfterCold::Check),
            };
            if !matches!(role, WarmRole::Second { .. }) {
                e.instr_prelude(resume_at, ins.index, Prelude { check_tracing, store_prev_instr: !quiet(ins.opcode) });
            }
            (unit, after_cold)
        }
        None => gen_dynamic_pairing(e, ins, resume_at, pairing, check_tracing, own),
    };
    match template {
        Template::Helper(_) if ins.opcode == op::COMPARE_OP && next.is_some_and(combines_with_compare) => {
            // The site replays whether ceval runs a combined compare-and-jump form here; where
            // it does, for ints, floats and strs, the compare runs inline and, before a forward
            // jump, jumps itself (the jump's own code is then skipped: nothing ran that it would
            // observe, and ceval's combined form checks no eval breaker there either).
            let jump = next.expect("checked");
            let fused = (jump.jump_target() > Some(jump.start)).then(|| {
                let when = matches!(jump.opcode, op::POP_JUMP_FORWARD_IF_TRUE | op::POP_JUMP_BACKWARD_IF_TRUE);
                (labels(jump.jump_target().expect("a jump")), when, labels(jump.next))
            });
            crate::fast_paths::compare_jump(e, ins, site, fused);
            return;
        }
        Template::Helper(helper) => {
            let error = e.error_exit();
            e.call_op_helper(ins.opcode, helper, ins.oparg, error);
            return;
        }
        Template::CallingHelper(helper) => {
            let error = e.error_exit();
            e.call_op_helper(ins.opcode, helper, ins.oparg, error);
            e.check_pending_after_call(error);
            return;
        }
        Template::RaisingHelper(helper) => {
            let (error, unwind) = (e.error_exit(), e.unwind_exit());
            e.call_raising_helper(ins.opcode, helper, ins.oparg, error, unwind);
            if ins.info().flow == peregrine_runtime::opcodes::Flow::Ends {
                x64!(e.ops ; ud2); // the helper always raises
            }
            return;
        }
        _ => {}
    }
    let oparg = ins.oparg;
    let local = F_LOCALSPLUS + 8 * oparg as i32;
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
        LOAD_FAST if e.bound_loads.get(ins.index) == Some(&true) => {
            e.load_local_bound(oparg);
            e.incref_rax();
            e.push_rax();
        }
        LOAD_FAST | LOAD_CLOSURE => {
            let error = e.error_exit();
            e.load_local_checked(oparg, error, unit);
            e.incref_rax();
            e.push_rax();
        }
        STORE_FAST => {
            x64!(e.ops
                ; sub r14, 8
                ; mov rax, [r14]
            );
            match i8::try_from(local) {
                Ok(d) => x64!(e.ops ; mov rdi, [BYTE r12 + d] ; mov [BYTE r12 + d], rax),
                Err(_) => x64!(e.ops ; mov rdi, [r12 + local] ; mov [r12 + local], rax),
            }
            if e.bound_loads.get(ins.index) == Some(&true) {
                e.decref_rdi_quiet(unit, after_cold); // the old value is there (bound_locals)
            } else {
                e.xdecref_rdi_quiet(unit, after_cold);
            }
        }
        LOAD_CONST => {
            x64!(e.ops ; mov rax, QWORD consts[oparg as usize] as i64);
            e.incref_rax();
            e.push_rax();
        }
        LOAD_DEREF => {
            // The local holds a cell once MAKE_CELL/COPY_FREE_VARS ran (as ceval assumes); an
            // empty cell raises through the helper, which finds it empty too.
            let (error, unbound) = (e.error_exit(), e.label());
            x64!(e.ops
                ; mov rax, [r12 + local]
                ; mov rax, [BYTE rax + const { d8(CELL_REF) }]
                ; test rax, rax
                ; jz =>unbound
            );
            e.incref_rax();
            e.push_rax();
            e.cold(unbound, move |e| {
                let callee = h::pg_load_deref as *const () as usize;
                x64!(e.ops
                    ; mov rdi, r13
                    ; mov rsi, r12
                    ; mov rdx, r14
                    ; mov ecx, oparg as i32
                );
                e.call_fn(callee);
                x64!(e.ops
                    ; mov r14, rax
                    ; jmp =>error
                );
            });
        }
        STORE_DEREF => {
            x64!(e.ops
                ; sub r14, 8
                ; mov rax, [r14]
                ; mov rcx, [r12 + local]
                ; mov rdi, [BYTE rcx + const { d8(CELL_REF) }]
                ; mov [BYTE rcx + const { d8(CELL_REF) }], rax
            );
            e.xdecref_rdi();
        }
        COPY_FREE_VARS => {
            // The compiler's shape: the closure's cells go to the last `oparg` locals (after the
            // locals and the cells of their own, `co_nlocals + co_nplaincellvars`).
            let code = (e.unit_addr(0) - std::mem::offset_of!(CodeObject, co_code_adaptive)) as *const CodeObject;
            // SAFETY: the code object being compiled is alive and immutable.
            let (nlocalsplus, nfreevars, before) = unsafe {
                let c = &*code;
                (c.co_nlocalsplus as u32, c.co_nfreevars as u32, (c.co_nlocals + c.co_nplaincellvars) as u32)
            };
            if oparg == nfreevars && before + oparg == nlocalsplus && oparg <= 16 {
                let first = F_LOCALSPLUS + 8 * (nlocalsplus - oparg) as i32;
                x64!(e.ops
                    ; mov rax, [BYTE r12 + const { d8(F_FUNC) }]
                    ; mov rax, [BYTE rax + const { d8(FUNC_CLOSURE) }]
                );
                for i in 0..oparg as i32 {
                    x64!(e.ops
                        ; mov rcx, [rax + TUPLE_ITEMS + 8 * i]
                        ; inc QWORD [rcx]
                    );
                    if ref_debug::ENABLED {
                        x64!(e.ops ; mov rdx, QWORD ref_debug::total_addr() as i64 ; inc QWORD [rdx]);
                    }
                    x64!(e.ops ; mov [r12 + first + 8 * i], rcx);
                }
            } else {
                let error = e.error_exit();
                e.call_op_helper(ins.opcode, h::pg_copy_free_vars, oparg, error);
            }
        }
        POP_TOP => {
            x64!(e.ops ; sub r14, 8 ; mov rdi, [r14]);
            e.decref_rdi_quiet(unit, AfterCold::Check);
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
                ; je BYTE >is_true
                ; mov rax, QWORD py_false
                ; cmp rdi, rax
                ; je BYTE >is_false
            );
            // Other values in the cold section: after a compare or `is`, True and False are
            // what the jump sees, and the hot path stays short.
            let others = e.label();
            x64!(e.ops ; jmp =>others);
            e.cold(others, move |e| {
                crate::fast_paths::truth_inline(e, on_true, on_false);
                let callee = h::pg_pop_truth as *const () as usize;
                x64!(e.ops
                    // Anything else: PyObject_IsTrue, which releases the value.
                    ; lea rdi, [r14 + 8]
                );
                e.call_fn(callee);
                x64!(e.ops
                    ; test eax, eax
                    ; js =>error
                    ; jnz =>on_true
                    ; jmp =>on_false
                );
            });
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
            let callee = h::pg_peek_truth as *const () as usize;
            x64!(e.ops
                ; mov rdi, [r14 - 8]
                ; mov rax, QWORD py_true
                ; cmp rdi, rax
                ; je =>on_true
                ; mov rax, QWORD py_false
                ; cmp rdi, rax
                ; je =>on_false
                ; mov rdi, r14
            );
            e.call_fn(callee);
            x64!(e.ops
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
            let t = target();
            crate::fast_paths::for_iter(e, ins, t);
        }
        PRECALL => crate::fast_paths::precall(e, ins, next, site, kwnames),
        UNPACK_SEQUENCE => match e.unpack_stores.take() {
            Some((locals, paired_next)) => crate::fast_paths::unpack_store(e, site, &locals, paired_next),
            None => crate::fast_paths::unpack_sequence(e, ins, site),
        },
        IS_OP => {
            // As ceval: the bool replaces the left operand, then the left and the right operand
            // are released, in that order (their destructors may run).
            let (same, other) = if oparg == 0 { (py_true, py_false) } else { (py_false, py_true) };
            x64!(e.ops
                ; mov rdi, [r14 - 16]
                ; mov rax, QWORD same
                ; mov rcx, QWORD other
                ; cmp rdi, [r14 - 8]
                ; cmovne rax, rcx
            );
            e.incref_rax();
            x64!(e.ops
                ; mov [r14 - 16], rax
                ; sub r14, 8
            );
            e.decref_rdi();
            x64!(e.ops ; mov rdi, [r14]); // the right operand, above the new top
            e.decref_rdi();
        }
        BINARY_SUBSCR => crate::fast_paths::binary_subscr(e, ins, site),
        UNARY_NOT => crate::fast_paths::unary_not(e, ins),
        STORE_SUBSCR => crate::fast_paths::store_subscr(e, ins),
        BINARY_OP => crate::fast_paths::binary_op(e, ins, next, site),
        LOAD_GLOBAL => crate::fast_paths::load_global(e, ins, site),
        LOAD_ATTR => crate::fast_paths::load_attr(e, ins, site),
        STORE_ATTR => crate::fast_paths::store_attr(e, ins, site),
        LOAD_METHOD => crate::fast_paths::load_method(e, ins, site),
        CALL => {
            let error = e.error_exit();
            match crate::direct_entry::call_stub().filter(|_| kwnames.is_null() && !site.is_null()) {
                // A call without keywords to an exact Python function tries the machine-code
                // direct call first (`direct_entry`); anything it leaves goes to pg_call.
                Some(stub) => {
                    let generic_call = e.label();
                    let function_type = std::ptr::addr_of!(ffi::PyFunction_Type) as i64;
                    let callable = -8 * (oparg as i32 + 1);
                    x64!(e.ops
                        ; mov rax, [r14 + callable - 8]
                        ; test rax, rax
                        ; jnz BYTE >callable
                        ; mov rax, [r14 + callable]
                        ; callable:
                        ; mov rcx, QWORD function_type
                        ; cmp [BYTE rax + const { d8(OB_TYPE) }], rcx
                        ; jne =>generic_call
                    );
                    direct_call_or_generic(e, ins, site, stub, generic_call);
                }
                None => emit_pg_call(e, oparg, kwnames, site),
            }
            call_result(e, ins, error);
        }
        RETURN_GENERATOR => e.return_generator(ins.start),
        YIELD_VALUE => e.yield_top(),
        SEND => {
            // The receiver returned: its result replaced it (the stack shrinks) and we jump.
            let (t, error) = (target(), e.error_exit());
            e.call_op_helper_branching(ins.opcode, crate::direct_entry::send_stub(), error, t);
        }
        other => unreachable!("opcode {other} has no inline template"),
    }
    if let Some(next_second) = pairing.next_second_entry {
        // Only LOAD_FAST, STORE_FAST and LOAD_CONST head pairs; their code keeps `rbx`.
        x64!(e.ops ; test bl, bl ; jnz =>next_second);
    }
}

/// CALL after a PRECALL whose PRECALL_PYFUNC fast path checked the callable
/// (`fast_paths::precall`): that path reaches `checked`, where CALL stores its unit and tries
/// the direct call. Nothing ran since PRECALL's tracing check there, and the callable is an
/// exact function. PRECALL's slow path goes to `entry`, in the cold section: CALL's tracing
/// check, then `checked` (the direct-call routine checks the callable's type itself). What the
/// direct call leaves goes to `pg_call`, as unfused.
fn gen_fused_call(e: &mut Emitter, ins: &Instr, resume_at: usize, site: *const Site, entry: DynamicLabel, checked: DynamicLabel) {
    let stub = crate::direct_entry::call_stub().expect("PRECALL fuses only with a direct-call stub");
    let index = ins.index;
    let error = e.error_exit();
    let generic_call = e.label();
    e.bind_pending_tracing(ins.start);
    e.bind(checked);
    e.instr_prelude(resume_at, index, Prelude { check_tracing: false, store_prev_instr: true });
    direct_call_or_generic(e, ins, site, stub, generic_call);
    e.cold(entry, move |e| {
        // No type check: the direct-call routine makes its own and declines anything but an
        // exact function, which then goes to pg_call.
        e.instr_prelude(resume_at, index, Prelude { check_tracing: true, store_prev_instr: false });
        x64!(e.ops ; jmp =>checked);
    });
    call_result(e, ins, error);
}

/// `rax` = `pg_call(tstate, frame, sp, oparg, kwnames, site)`: CALL's generic path.
fn emit_pg_call(e: &mut Emitter, oparg: u32, kwnames: *mut ffi::PyObject, site: *const Site) {
    x64!(e.ops
        ; mov rdi, r13
        ; mov rsi, r12
        ; mov rdx, r14
        ; mov ecx, oparg as i32
        ; mov r9, QWORD site as i64
    );
    e.load_r8(kwnames as u64);
    e.call_fn(h::pg_call as *const () as usize);
}

/// CALL without keywords through the direct-call routine `stub`; what it declines, and what
/// jumps to `generic_call`, goes to `pg_call` in the cold section. Leaves the result in `rax`.
fn direct_call_or_generic(e: &mut Emitter, ins: &Instr, site: *const Site, stub: usize, generic_call: DynamicLabel) {
    let oparg = ins.oparg;
    let joined = e.label();
    let last_unit = e.unit_addr(ins.last_unit() as isize) as i64;
    x64!(e.ops
        // The routine's own convention: compiled code's registers, and these.
        ; mov ecx, oparg as i32
        ; mov r8, QWORD last_unit
        ; mov r9, QWORD site as i64
    );
    e.call_fn(stub);
    x64!(e.ops
        ; test rax, rax
        ; jz =>generic_call
        ; =>joined
    );
    e.cold(generic_call, move |e| {
        emit_pg_call(e, oparg, std::ptr::null_mut(), site);
        x64!(e.ops ; jmp =>joined);
    });
}

/// CALL's end: the new stack pointer from `rax`, the error exit when it is tagged, and the
/// eval-breaker check after the call.
fn call_result(e: &mut Emitter, ins: &Instr, error: DynamicLabel) {
    e.check_helper_moved(ins.opcode, ins.oparg);
    x64!(e.ops
        ; mov r14, rax
        ; test al, 1
        ; jnz =>error
    );
    e.check_pending_after_call(error);
}

/// The prelude and entries of an instruction under the dynamic pairing (see [`Pairing`]):
/// returns what its cold paths store in `prev_instr` and what they do after running code.
fn gen_dynamic_pairing(
    e: &mut Emitter,
    ins: &Instr,
    resume_at: usize,
    pairing: Pairing,
    check_tracing: bool,
    own: usize,
) -> (ColdUnit, AfterCold) {
    e.instr_prelude(resume_at, ins.index, Prelude { check_tracing, store_prev_instr: !quiet(ins.opcode) });
    let heads_pair = pairing.next_second_entry.is_some();
    let entry_flag = pairing.second_entry.is_some() && reads_entry_flag(ins.opcode);
    if heads_pair {
        e.set_bl_if_warm(); // dispatched: heads a pair if the code is warm (bh = 0)
    } else if entry_flag {
        x64!(e.ops ; xor ebx, ebx); // dispatched, not a second half (bh = 0)
    }
    let unit = match pairing.second_entry {
        Some(_) if entry_flag => {
            ColdUnit::ByEntry { own, first_half: e.unit_addr(pairing.first_half_index as isize) }
        }
        _ => ColdUnit::Own(own),
    };
    if let Some(second) = pairing.second_entry {
        let body = e.label();
        x64!(e.ops ; jmp =>body ; =>second);
        if entry_flag {
            x64!(e.ops ; mov ebx, 0x100); // a second half (bh = 1) heads no pair (bl = 0)
        } else if heads_pair {
            x64!(e.ops ; xor ebx, ebx); // a second half heads no pair
        }
        x64!(e.ops ; =>body);
    }
    let after_cold = if heads_pair { AfterCold::CheckUnlessPaired } else { AfterCold::Check };
    (unit, after_cold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use peregrine_runtime::opcodes::{info, OPCODES};

    /// Every opcode of the installed CPython (`opcode.opmap`) has exactly one row in the runtime's
    /// table, and every row a template here or a place in [`NOT_COMPILED`], never both; numbers
    /// without a row have no template.
    #[test]
    fn every_opcode_has_one_row_and_a_template() {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
        let out = std::process::Command::new(python)
            .args(["-c", "import opcode\nfor name, op in opcode.opmap.items(): print(name, op)"])
            .output()
            .expect("run python3");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let opmap: Vec<(String, u8)> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (name, number) = l.split_once(' ').unwrap();
                (name.to_string(), number.parse().unwrap())
            })
            .collect();
        assert_eq!(opmap.len(), OPCODES.len(), "rows for opcodes the interpreter does not have");
        for (name, number) in &opmap {
            let rows: Vec<_> = OPCODES.iter().filter(|r| r.number == *number).collect();
            assert_eq!(rows.len(), 1, "{name} ({number}) has {} rows", rows.len());
            assert_eq!(rows[0].name, name);
        }
        for row in OPCODES {
            let not_compiled = NOT_COMPILED.iter().filter(|(n, _)| *n == row.number).count();
            assert!(not_compiled <= 1, "{} listed twice as not compiled", row.name);
            assert!(
                template(row.number).is_some() != (not_compiled == 1),
                "{}: a template and listed as not compiled, or neither",
                row.name
            );
        }
        for number in 0..=255u8 {
            if info(number).is_none() {
                assert!(template(number).is_none(), "a template for {number}, which is not an opcode");
            }
        }
    }
}
