//! The assembler side of the baseline: frame prologue/epilogue, common sequences (calling a
//! helper, reference counting), and the cold stubs an instruction may need (error exit, hand-off
//! to the interpreter before an instruction, eval-breaker slow path, unbound local).
//!
//! Register assignment inside compiled code (all callee-saved, so helpers preserve them):
//! `r12` = the `_PyInterpreterFrame*`, `r13` = the `PyThreadState*`, `r14` = the value-stack
//! pointer (next free slot), `rbx` = scratch that survives calls, `r15` = the code state's warm
//! latch (`WarmthCounters::warm_latch`). The compiled function's own stack frame holds our
//! `_PyCFrame` at `[BYTE rbp + const { d8(- CFRAME) }]`.

use crate::offsets::*;
use dynasmrt::{dynasm, x64::X64Relocation, DynamicLabel, DynasmApi, DynasmLabelApi, VecAssembler};
use peregrine_runtime::code_arena::{self, RelCall};
use peregrine_runtime::code_state::{WarmthCounters, WARMUP_DELAY};
use peregrine_runtime::cpython::layout::INTERP_CEVAL_OFFSET;
use peregrine_runtime::cpython::{self, frame_state, ref_debug, CevalState, CodeObject, GenObject};
use peregrine_runtime::jit::{self, exceptions, frame, gen};
use peregrine_runtime::jit::ops::{self, OpHelper, SiteHelper};
use peregrine_runtime::jit::specialize::Site;
use peregrine_runtime::bytecode::Handler;
use peregrine_runtime::opcodes::{self, StackUse};
use peregrine_runtime::ExitReason;
use std::mem::offset_of;

/// Pins the architecture for every `dynasm!` use in this crate.
macro_rules! x64 {
    ($ops:expr; $($t:tt)*) => {
        dynasm!($ops ; .arch x64 ; $($t)*)
    };
}
pub(crate) use x64;

/// `gi_frame_state` of the generator that owns a frame, relative to the frame.
const GEN_FRAME_STATE: i32 =
    offset_of!(GenObject, gi_frame_state) as i32 - offset_of!(GenObject, gi_iframe) as i32;
const EVAL_BREAKER: i32 = (INTERP_CEVAL_OFFSET + offset_of!(CevalState, eval_breaker)) as i32;
/// Our `_PyCFrame` lives at `[BYTE rbp + const { d8(- CFRAME) }]` (24 bytes; see the prologue).
pub const CFRAME: i32 = 80;

/// The eval-breaker check after a call, its stub asked for in advance
/// ([`Emitter::pending_after_call`]).
#[derive(Clone, Copy)]
pub struct PendingCheck {
    label: DynamicLabel,
    resume: DynamicLabel,
}

/// What an instruction's prelude does.
///
/// Tracing can only be switched on by code running in this thread (a trace function set by
/// Python code or a C extension), or by another thread while this one has released the GIL: so
/// only after something was called. An instruction reached only by falling through from
/// instructions that call nothing (LOAD_FAST, LOAD_CONST, ...) since the last check needs no
/// check of its own: the interpreter's check there would see what the last one saw.
///
/// `prev_instr` is read by whatever runs while an instruction runs (destructors, callees,
/// tracebacks of its errors, other threads once the GIL is released) and by the hand-offs,
/// which set it themselves. A quiet instruction, one whose hot path calls nothing (LOAD_FAST,
/// STORE_FAST, POP_TOP, ...), stores it only in the cold paths that call something or raise
/// ([`ColdUnit`]): nothing can observe it on the hot path before the next instruction stores
/// its own. Those cold paths also make the next instruction's tracing check themselves
/// ([`Emitter::decref_rdi_quiet`]), so the hot path after a quiet instruction has none.
#[derive(Clone, Copy)]
pub struct Prelude {
    pub check_tracing: bool,
    pub store_prev_instr: bool,
}

/// A slow path emitted after the function body.
enum Stub {
    /// Hands the frame to the interpreter before an instruction (`prev_instr` = the unit before
    /// it), with `r14` the exact stack.
    HandOff { label: DynamicLabel, prev_instr: usize, reason: ExitReason },
    /// Any cold path: `emit` writes it at `label`, ending with its own way back.
    Cold { label: DynamicLabel, emit: Box<dyn FnOnce(&mut Emitter)> },
    /// Eval breaker set: `pg_eval_breaker`, then back to `resume` or on to `handoff`.
    EvalBreaker { label: DynamicLabel, resume: DynamicLabel, handoff: DynamicLabel },
    /// Eval breaker set after a call: `pg_handle_pending`, then back to `resume` or to `error`.
    Pending { label: DynamicLabel, resume: DynamicLabel, error: DynamicLabel },
    /// LOAD_FAST of an unset local: `prev_instr` = `unit`, raise UnboundLocalError, then the
    /// error exit (the instruction's own: for a superinstruction's second half, the traceback
    /// entry is at the first half and the handler the second half's, as in ceval).
    UnboundLocal { label: DynamicLabel, oparg: u32, error: DynamicLabel, unit: ColdUnit },
    /// A `Py_DECREF` reached zero: `prev_instr` = `unit`, the destructor, then what `after` says
    /// (the next instruction's tracing check, to `tracing`), back to `resume`. (`unit` None: the
    /// instruction stored `prev_instr` in its prelude; `after` is then `Skip`.)
    Dealloc { label: DynamicLabel, resume: DynamicLabel, unit: Option<ColdUnit>, after: AfterCold, tracing: Option<DynamicLabel> },
}

/// What a quiet instruction's cold path does after it ran code (a destructor), before going back.
#[derive(Clone, Copy, PartialEq)]
pub enum AfterCold {
    /// The next instruction's tracing check (its prelude has none: see [`Prelude`]).
    Check,
    /// The same, unless `bl` says the instruction heads a pair (dynamic pairing): ceval checks
    /// nothing between a superinstruction's halves.
    CheckUnlessPaired,
    /// Nothing: the instruction heads a pair (a run's warm copy); the check comes after the pair.
    Skip,
}

/// The code unit `prev_instr` must hold in a cold path of a quiet instruction, one that does not
/// store it on its hot path (see [`Prelude`]).
#[derive(Clone, Copy)]
pub enum ColdUnit {
    /// The instruction's own unit (an address, see [`Emitter::unit_addr`]).
    Own(usize),
    /// An instruction that may run as a superinstruction's second half: there `prev_instr` stays
    /// on the first half's unit. Entered as a second half, `bh` is 1; entered on its own, 0.
    ByEntry { own: usize, first_half: usize },
}

/// How far `opcode oparg` moves the stack pointer, from the opcode table.
fn table_moves(opcode: u8, oparg: u32) -> StackUse {
    opcodes::moves(opcode, oparg).expect("templates are emitted for base opcodes only")
}

/// Where templates assemble: a plain buffer, position-independent (internal jumps are relative,
/// calls out are listed in [`Emitter::calls`] or go through trampolines), copied into the code
/// arena when done.
pub type Ops = VecAssembler<X64Relocation>;

pub struct Emitter {
    pub ops: Ops,
    stubs: Vec<Stub>,
    epilogue: DynamicLabel,
    delegate: DynamicLabel,
    /// Shared tail of every hand-off: expects `r8` = prev_instr, `r9d` = reason, `r14` = stack.
    handoff: DynamicLabel,
    /// Shared tail of the error exits of instructions no handler covers: leaves the frame with
    /// the emptied value stack in `r14` (tag bit allowed) and returns NULL.
    raise_out: DynamicLabel,
    /// The label of each instruction start (code unit), for jumps to exception handlers.
    starts: Vec<Option<DynamicLabel>>,
    /// The exception-table entry of the instruction being emitted (see [`Emitter::set_handler`]).
    handler: Option<Handler>,
    /// The error exits made so far, one per handler and kind (see [`Emitter::error_exit`]), in
    /// the order they were made, and where each is in that list.
    error_exits: Vec<(Option<Handler>, bool, DynamicLabel)>,
    error_exit_index: std::collections::HashMap<(Option<Handler>, bool), usize>,
    /// Set once `finish` emits the error exits.
    finished: bool,
    /// As `handoff`, for hand-offs before an instruction that tracing may see (the interpreter
    /// decides a 'line' event there): `pg_frame_handoff_traced`.
    handoff_traced: DynamicLabel,
    /// Address of `co_code_adaptive[0]` of the code object being compiled.
    first_instr: usize,
    /// Whether every value `prev_instr` takes while this code runs (its code's units, and the
    /// unit before the first, where frames start) has the same upper 32 bits: then storing the
    /// lower half moves it (9 bytes of machine code instead of 18, at every instruction).
    units_share_high_half: bool,
    /// The code state's counts of entries and backward jumps (`u32`s).
    warmth: WarmthCounters,
    /// The code was warm when compiled, so it is warm whenever this code runs: only the warm
    /// forms are emitted, with no latch tests, warm-up counting or cold copies.
    pub warm_at_compile: bool,
    /// Subroutine (`call`ed, no C frame) that computes whether the code is warm into `ebx` and
    /// sets the latch when it is; only called while the latch is 0.
    warm_check: DynamicLabel,
    /// Tracing hand-offs of cold paths that ran code, owed by the next instruction that emits
    /// code: bound to its own tracing hand-off when its prelude is emitted.
    pending_tracing: Vec<DynamicLabel>,
    /// The functions this code calls through a trampoline of its own (`call rel32`, 5 bytes,
    /// instead of `mov rax, imm64; call rax`, 12), with the trampolines' labels: those a call
    /// from the code arena cannot reach directly.
    trampolines: Vec<(usize, DynamicLabel)>,
    /// By code unit, whether the instruction there is a LOAD_FAST or STORE_FAST of a local bound
    /// on every path to it (`bound_locals`): no unbound test, no NULL test of the old value.
    pub bound_loads: Vec<bool>,
    /// Set by PRECALL when its PRECALL_PYFUNC fast path goes straight into its CALL's direct
    /// call: (CALL's full entry, in the cold section, where PRECALL's slow path goes on; the
    /// point its fast path reaches, after CALL's checks). Taken by the CALL.
    pub fused_call: Option<(DynamicLabel, DynamicLabel)>,
    /// Set for an UNPACK_SEQUENCE that runs with the STORE_FASTs after it in one helper call
    /// (`fast_paths::unpack_store`): their locals, in order, and the next instruction's entry
    /// as a second half where the last one pairs with it. Taken by the UNPACK_SEQUENCE.
    pub unpack_stores: Option<(Vec<u8>, Option<DynamicLabel>)>,
    /// The shared tail of the hand-off stubs for each reason (see [`Emitter::emit_handoff`]).
    handoff_tails: Vec<(ExitReason, DynamicLabel)>,
    /// The direct `call rel32`s to functions outside this code, patched when the code is
    /// installed in the arena (see [`Emitter::call_fn`]).
    pub calls: Vec<RelCall>,
}

impl Emitter {
    /// `capacity`: the bytes of machine code expected, allocated up front (growing the buffer
    /// as code is emitted copies it over and over).
    pub fn new(first_instr: usize, n_units: usize, warmth: WarmthCounters, warm_at_compile: bool, capacity: usize) -> Self {
        // Labels and references by the count the templates make in the median (a few of each
        // per code unit): growing dynasm's tables as they fill was a tenth of compile time.
        let mut ops = Ops::new_with_capacity(0, capacity, 0, 0, 3 * n_units + 16, n_units + 16, 4 * n_units + 16);
        let epilogue = ops.new_dynamic_label();
        let delegate = ops.new_dynamic_label();
        let handoff = ops.new_dynamic_label();
        let raise_out = ops.new_dynamic_label();
        let handoff_traced = ops.new_dynamic_label();
        let warm_check = ops.new_dynamic_label();
        Emitter {
            ops,
            stubs: Vec::new(),
            epilogue,
            delegate,
            handoff,
            raise_out,
            starts: Vec::new(),
            handler: None,
            error_exits: Vec::new(),
            error_exit_index: Default::default(),
            finished: false,
            handoff_traced,
            first_instr,
            // From `_PyCode_CODE(co) - 1`, where a frame starts, to the last unit.
            units_share_high_half: (first_instr - 2) >> 32 == (first_instr + 2 * n_units) >> 32,
            warmth,
            warm_at_compile,
            warm_check,
            pending_tracing: Vec::new(),
            trampolines: Vec::new(),
            calls: Vec::new(),
            handoff_tails: Vec::new(),
            fused_call: None,
            unpack_stores: None,
            bound_loads: Vec::new(),
        }
    }

    /// The label of each instruction start, by code unit (`None` elsewhere): where error exits
    /// jump to handlers.
    pub fn set_starts(&mut self, starts: Vec<Option<DynamicLabel>>) {
        self.starts = starts;
    }

    /// The exception-table entry covering the instruction about to be emitted: its error exits
    /// unwind to it.
    pub fn set_handler(&mut self, handler: Option<Handler>) {
        self.handler = handler;
    }

    /// The label of the instruction starting at code unit `unit`, if one starts there.
    pub fn start_label(&self, unit: usize) -> Option<DynamicLabel> {
        self.starts.get(unit).copied().flatten()
    }

    pub fn label(&mut self) -> DynamicLabel {
        self.ops.new_dynamic_label()
    }

    /// The address of code unit `index`: what `prev_instr` holds while that unit's instruction
    /// runs. `index` -1 is "before the first instruction".
    pub fn unit_addr(&self, index: isize) -> usize {
        (self.first_instr as isize + 2 * index) as usize
    }

    /// The label of this code's trampoline to the function at `addr` (made on first use,
    /// emitted by `finish`): `call =>label` calls it with the registers as they are.
    fn extern_label(&mut self, addr: usize) -> DynamicLabel {
        if let Some(&(_, label)) = self.trampolines.iter().find(|(a, _)| *a == addr) {
            return label;
        }
        let label = self.ops.new_dynamic_label();
        self.trampolines.push((addr, label));
        label
    }

    /// Calls the function at `addr` with the registers as they are: a `call rel32` straight to
    /// it when the code arena is within reach of it (patched by `code_arena::install`), else a
    /// call to this code's trampoline to it.
    pub fn call_fn(&mut self, addr: usize) {
        if code_arena::reachable(addr) {
            x64!(self.ops ; .u8 0xe8 ; .u32 0);
            self.calls.push(RelCall { end: self.ops.offset().0, target: addr });
        } else {
            let label = self.extern_label(addr);
            x64!(self.ops ; call =>label);
        }
    }

    /// `r8` = `value`, in 3 bytes when it is 0 (a call without keywords), else 10.
    pub fn load_r8(&mut self, value: u64) {
        if value == 0 {
            x64!(self.ops ; xor r8d, r8d);
        } else {
            x64!(self.ops ; mov r8, QWORD value as i64);
        }
    }

    /// Jumps to `label`.
    pub fn jump_to(&mut self, label: DynamicLabel) {
        x64!(self.ops ; jmp =>label);
    }

    /// Goes to `label` unless the warm latch is set (see `set_bl_if_warm`); falls through, the
    /// hot path, once the code is warm.
    pub fn branch_if_not_warm(&mut self, label: DynamicLabel) {
        debug_assert!(!self.warm_at_compile, "code warm at compile time has no cold copies");
        x64!(self.ops
            ; cmp BYTE [r15], 0
            ; je =>label
        );
    }

    /// Places `label` here.
    pub fn bind(&mut self, label: DynamicLabel) {
        x64!(self.ops ; =>label);
    }

    pub fn offset(&self) -> usize {
        self.ops.offset().0
    }

    /// Pushes the frame, saves callee-saved registers, reserves the cframe and calls
    /// `pg_frame_enter`; a null answer runs the whole frame in the interpreter instead.
    ///
    /// Also emits the entry of direct calls (`direct_entry::call_stub`; for resumable code,
    /// the call that creates the generator) and returns its offset: entered with `call` from
    /// that routine with `r13` = the thread state and `rsi` = a fresh frame it pushed
    /// (`is_entry` 0) and checked everything `pg_frame_enter` checks for, it shares the caller's
    /// cframe as ceval's
    /// inline calls do: `rbp` stays the caller's, so `[BYTE rbp + const { d8(- CFRAME) }]` is the cframe in use
    /// (the nearest frame's with an own cframe), and only the frame is linked and counted. The
    /// machine stack below `rbp` is laid out as the regular entry's, so both leave through the
    /// same epilogue; leaving (`leave_frame`, `frame::leave`) tells them apart by `is_entry`.
    pub fn prologue(&mut self, resumable: bool) -> usize {
        let delegate = self.delegate;
        let (slow, entered) = (self.label(), self.label());
        x64!(self.ops
            ; push rbp
            ; mov rbp, rsp
            ; push rbx
            ; push r12
            ; push r13
            ; push r14
            ; push r15
            ; sub rsp, 40            // the cframe (24 bytes), keeping rsp 16-byte aligned
            ; mov r13, rdi
            ; mov r12, rsi
            ; mov r15, QWORD self.warmth.warm_latch as i64
        );
        // `frame::pg_frame_enter` inline for the frames it would accept (the common entry);
        // it runs itself for the rest, which it counts and refuses.
        if !resumable {
            // Only a fresh frame: `prev_instr` one unit before the code.
            x64!(self.ops
                ; mov rax, QWORD (self.first_instr - 2) as i64
                ; cmp [BYTE r12 + const { d8(F_PREV_INSTR) }], rax
                ; jne =>slow
            );
        }
        let enter_fn = frame::pg_frame_enter as *const () as usize;
        x64!(self.ops
            ; cmp DWORD [BYTE r13 + const { d8(TSTATE_RECURSION_REMAINING) }], 0
            ; jle =>slow
            ; mov rcx, [BYTE r13 + const { d8(TSTATE_CFRAME) }]
            ; movzx eax, BYTE [BYTE rcx + const { d8(CFRAME_USE_TRACING) }]
            ; mov BYTE [BYTE rbp + const { d8(- CFRAME + CFRAME_USE_TRACING) }], al
            ; mov [BYTE rbp + const { d8(- CFRAME + CFRAME_PREVIOUS) }], rcx
            ; lea rdx, [BYTE rbp + const { d8(- CFRAME) }]
            ; mov [BYTE r13 + const { d8(TSTATE_CFRAME) }], rdx
            ; mov BYTE [BYTE r12 + const { d8(F_IS_ENTRY) }], 1
            ; mov rax, [BYTE rcx + const { d8(CFRAME_CURRENT_FRAME) }]
            ; mov [BYTE r12 + const { d8(F_PREVIOUS) }], rax
            ; mov [BYTE rbp + const { d8(- CFRAME + CFRAME_CURRENT_FRAME) }], r12
            ; sub DWORD [BYTE r13 + const { d8(TSTATE_RECURSION_REMAINING) }], 1
            ; movsxd rax, DWORD [BYTE r12 + const { d8(F_STACKTOP) }]
            ; lea r14, [r12 + rax * 8 + F_LOCALSPLUS]
            ; mov DWORD [BYTE r12 + const { d8(F_STACKTOP) }], -1   // as ceval: the GC must not read the stack
            ; jmp =>entered
            ; =>slow
            ; mov rdi, r13
            ; mov rsi, r12
            ; lea rdx, [BYTE rbp + const { d8(- CFRAME) }]
        );
        self.call_fn(enter_fn);
        x64!(self.ops
            ; test rax, rax
            ; jz =>delegate
            ; mov r14, rax
            ; jmp =>entered
        );
        let direct = self.offset();
        x64!(self.ops
            ; push rbp                 // the caller's, kept: no `mov rbp, rsp`
            ; push rbx
            ; push r12
            ; push r13
            ; push r14
            ; push r15
            ; sub rsp, 40
            ; mov r12, rsi
            ; mov r15, QWORD self.warmth.warm_latch as i64
            ; mov rcx, [BYTE r13 + const { d8(TSTATE_CFRAME) }]
            ; mov rax, [BYTE rcx + const { d8(CFRAME_CURRENT_FRAME) }]
            ; mov [BYTE r12 + const { d8(F_PREVIOUS) }], rax
            ; mov [BYTE rcx + const { d8(CFRAME_CURRENT_FRAME) }], r12
            ; sub DWORD [BYTE r13 + const { d8(TSTATE_RECURSION_REMAINING) }], 1
            ; movsxd rax, DWORD [BYTE r12 + const { d8(F_STACKTOP) }]
            ; lea r14, [r12 + rax * 8 + F_LOCALSPLUS]
            ; mov DWORD [BYTE r12 + const { d8(F_STACKTOP) }], -1
            ; =>entered
        );
        direct
    }

    /// `frame::pg_frame_return`'s `leave` inline: the value stack (empty at `r14`) recorded,
    /// the recursion level given back, the cframe popped with tracing switched on meanwhile
    /// passed to the caller's, as ceval does; for a frame entered by a direct call (`is_entry`
    /// 0, the caller's cframe shared), the caller made the current frame again instead.
    fn leave_frame(&mut self) {
        x64!(self.ops
            ; mov rax, r14
            ; sub rax, r12
            ; sub rax, F_LOCALSPLUS
            ; sar rax, 3
            ; mov DWORD [BYTE r12 + const { d8(F_STACKTOP) }], eax
            ; add DWORD [BYTE r13 + const { d8(TSTATE_RECURSION_REMAINING) }], 1
            ; cmp BYTE [BYTE r12 + const { d8(F_IS_ENTRY) }], 0
            ; je BYTE >shared
            ; mov rcx, [BYTE rbp + const { d8(- CFRAME + CFRAME_PREVIOUS) }]
            ; mov [BYTE r13 + const { d8(TSTATE_CFRAME) }], rcx
            ; movzx eax, BYTE [BYTE rbp + const { d8(- CFRAME + CFRAME_USE_TRACING) }]
            ; mov BYTE [BYTE rcx + const { d8(CFRAME_USE_TRACING) }], al
            ; jmp BYTE >left
            ; shared:
            ; mov rax, [BYTE r12 + const { d8(F_PREVIOUS) }]
            ; mov [BYTE rbp + const { d8(- CFRAME + CFRAME_CURRENT_FRAME) }], rax
            ; left:
        );
    }

    /// Per-instruction prelude: hand off before the instruction if tracing went on (when
    /// `check_tracing`), and point `prev_instr` at it (when `store_prev_instr`: tracebacks,
    /// `f_lineno` and destructors read it). See [`Prelude`] for when either can be left out.
    pub fn instr_prelude(&mut self, start: usize, index: usize, prelude: Prelude) {
        self.bind_pending_tracing(start);
        if prelude.check_tracing {
            let tracing = self.handoff_before(start, ExitReason::Tracing);
            x64!(self.ops
                ; cmp BYTE [BYTE rbp + const { d8(- CFRAME) }], 0
                ; jne =>tracing
            );
        }
        if prelude.store_prev_instr {
            self.store_prev_instr(self.unit_addr(index as isize));
        }
    }

    /// `prev_instr` = `addr`, a unit of this code. Clobbers `rax` (when the full pointer is
    /// stored).
    fn store_prev_instr(&mut self, addr: usize) {
        if self.units_share_high_half {
            // Only compiled code writes `prev_instr` while the frame runs here, always with one of
            // these values (the interpreter takes the frame over for good at a hand-off).
            x64!(self.ops ; mov DWORD [BYTE r12 + const { d8(F_PREV_INSTR) }], addr as u32 as i32);
        } else {
            x64!(self.ops
                ; mov rax, QWORD addr as i64
                ; mov [BYTE r12 + const { d8(F_PREV_INSTR) }], rax
            );
        }
    }

    /// Makes the tracing checks the previous instruction's cold paths owe this instruction (see
    /// [`Emitter::decref_rdi_quiet`]) hand the frame over before it, at `start`, exactly as its
    /// own prelude's check would.
    pub fn bind_pending_tracing(&mut self, start: usize) {
        for label in std::mem::take(&mut self.pending_tracing) {
            self.stubs.push(Stub::HandOff { label, prev_instr: self.unit_addr(start as isize - 1), reason: ExitReason::Tracing });
        }
    }

    /// `prev_instr` = `unit`. May clobber `rax`.
    fn store_cold_unit(&mut self, unit: ColdUnit) {
        match unit {
            ColdUnit::Own(own) => self.store_prev_instr(own),
            ColdUnit::ByEntry { own, first_half } if self.units_share_high_half => x64!(self.ops
                ; mov eax, own as u32 as i32
                ; test bh, bh
                ; jz BYTE >own
                ; mov eax, first_half as u32 as i32
                ; own:
                ; mov DWORD [BYTE r12 + const { d8(F_PREV_INSTR) }], eax
            ),
            ColdUnit::ByEntry { own, first_half } => x64!(self.ops
                ; mov rax, QWORD own as i64
                ; test bh, bh
                ; jz BYTE >own
                ; mov rax, QWORD first_half as i64
                ; own:
                ; mov [BYTE r12 + const { d8(F_PREV_INSTR) }], rax
            ),
        }
    }

    /// The error exit of the instruction being emitted, ceval's `goto error`: the traceback
    /// entry at the frame's `prev_instr`, then the unwind to the instruction's handler, resolved
    /// at compile time (`jit::exceptions::pg_unwind`), or out of the frame. `prev_instr` is the
    /// instruction's own unit (set by the prelude) unless the instruction moved it as ceval would:
    /// a Python callee's frame was pushed (CALL's last cache unit), a specialized PRECALL form
    /// called out (PRECALL), or the instruction ran as the second half of a superinstruction (the
    /// first half's unit; the handler is still the second half's, as ceval searches the table at
    /// the instruction it runs). Expects the stack in `r14` (tag bit allowed).
    pub fn error_exit(&mut self) -> DynamicLabel {
        self.exit_for(true)
    }

    /// As [`Emitter::error_exit`] for an exception that already has its traceback (ceval's `goto
    /// exception_unwind`: a bare `raise`, RERAISE): no entry for this frame, no 'exception' event.
    pub fn unwind_exit(&mut self) -> DynamicLabel {
        self.exit_for(false)
    }

    fn exit_for(&mut self, from_error: bool) -> DynamicLabel {
        debug_assert!(!self.finished, "error exits are made while their instruction is emitted");
        let key = (self.handler, from_error);
        if let Some(&i) = self.error_exit_index.get(&key) {
            return self.error_exits[i].2;
        }
        let label = self.label();
        self.error_exit_index.insert(key, self.error_exits.len());
        self.error_exits.push((self.handler, from_error, label));
        label
    }

    /// A label that hands the frame to the interpreter before the instruction at `start`.
    pub fn handoff_before(&mut self, start: usize, reason: ExitReason) -> DynamicLabel {
        let label = self.label();
        self.stubs.push(Stub::HandOff { label, prev_instr: self.unit_addr(start as isize - 1), reason });
        label
    }

    /// Polls the eval breaker; when set, gives up the GIL if asked, or hands the frame over
    /// before the instruction at `start` so the interpreter handles signals exactly.
    pub fn check_eval_breaker(&mut self, start: usize) {
        let stub = self.label();
        let resume = self.label();
        let handoff = self.handoff_before(start, ExitReason::EvalBreaker);
        self.stubs.push(Stub::EvalBreaker { label: stub, resume, handoff });
        x64!(self.ops
            ; mov rax, [BYTE r13 + const { d8(TSTATE_INTERP) }]
            ; mov eax, DWORD [BYTE rax + const { d8(EVAL_BREAKER) }]
            ; test eax, eax
            ; jnz =>stub
            ; =>resume
        );
    }

    /// As JUMP_BACKWARD's `_PyCode_Warmup`: counts the backward jump towards the code's
    /// warm-up, stopping at `WARMUP_DELAY`.
    pub fn count_backward_jump(&mut self) {
        if self.warm_at_compile {
            return; // nothing reads the count once the code is warm
        }
        let skip = self.label();
        x64!(self.ops
            ; mov rax, QWORD self.warmth.backward_jumps as i64
            ; cmp DWORD [rax], WARMUP_DELAY as i32
            ; jae =>skip
            ; add DWORD [rax], 1
            ; =>skip
        );
    }

    /// `bl` = 1 if the code is warm, else 0 (as `jit::specialize::Site::is_warm`: the interpreter
    /// quickened it, or the JIT counted `WARMUP_DELAY` RESUMEs and backward jumps). Clobbers
    /// `rax` and `rcx`.
    pub fn set_bl_if_warm(&mut self) {
        // Once warm, always warm: one byte decides, the whole condition is computed out of line
        // until it holds.
        if self.warm_at_compile {
            x64!(self.ops ; mov ebx, 1);
            return;
        }
        let warm_check = self.warm_check;
        x64!(self.ops
            ; mov ebx, 1
            ; cmp BYTE [r15], 0
            ; jne BYTE >warm
            ; call =>warm_check
            ; warm:
        );
    }

    /// The body of [`Emitter::warm_check`]: `ebx` = 1 and the latch set if the code is warm (as
    /// `Site::is_warm`), `ebx` = 0 otherwise. Clobbers `rax`, `rcx`.
    fn emit_warm_check(&mut self) {
        let code = self.first_instr - offset_of!(CodeObject, co_code_adaptive);
        let co_warmup = offset_of!(CodeObject, co_warmup) as i32;
        let warm_check = self.warm_check;
        x64!(self.ops
            ; =>warm_check
            ; mov ebx, 1
            ; mov rax, QWORD code as i64
            ; cmp WORD [rax + co_warmup], 0
            ; je BYTE >warm
            ; mov rax, QWORD self.warmth.entries as i64
            ; mov eax, DWORD [rax]      // zero-extends: the sum below cannot wrap
            ; mov rcx, QWORD self.warmth.generator_creations as i64
            ; sub eax, DWORD [rcx]      // never more creations than entries
            ; mov rcx, QWORD self.warmth.backward_jumps as i64
            ; mov ecx, DWORD [rcx]
            ; add rax, rcx
            ; cmp rax, WARMUP_DELAY as i32
            ; jae BYTE >warm
            ; xor ebx, ebx
            ; ret
            ; warm:
            ; mov BYTE [r15], 1
            ; ret
        );
    }

    /// After a call, as ceval's `CHECK_EVAL_BREAKER`: runs signal handlers and pending calls,
    /// gives up the GIL if asked, raises an asynchronous exception (through `error`).
    pub fn check_pending_after_call(&mut self, error: DynamicLabel) {
        let pending = self.pending_after_call(error);
        self.emit_pending_check(pending);
    }

    /// The stub of a [`Emitter::check_pending_after_call`] made now, to be emitted (by
    /// [`Emitter::emit_pending_check`]) where no stub can be asked for: in a cold path.
    pub fn pending_after_call(&mut self, error: DynamicLabel) -> PendingCheck {
        let (label, resume) = (self.label(), self.label());
        self.stubs.push(Stub::Pending { label, resume, error });
        PendingCheck { label, resume }
    }

    /// The check of a stub made by [`Emitter::pending_after_call`]; emit it once.
    pub fn emit_pending_check(&mut self, pending: PendingCheck) {
        x64!(self.ops
            ; mov rax, [BYTE r13 + const { d8(TSTATE_INTERP) }]
            ; mov eax, DWORD [BYTE rax + const { d8(EVAL_BREAKER) }]
            ; test eax, eax
            ; jnz =>pending.label
            ; =>pending.resume
        );
    }

    /// Calls `helper(tstate, frame, sp, oparg)`, the template of `opcode oparg`, takes its stack
    /// pointer and branches to `error` when it is tagged.
    pub fn call_op_helper(&mut self, opcode: u8, helper: OpHelper, oparg: u32, error: DynamicLabel) {
        self.emit_helper_call(helper, oparg);
        self.check_helper_moved(opcode, oparg);
        x64!(self.ops
            ; mov r14, rax
            ; test al, 1
            ; jnz =>error
        );
    }

    /// As [`Emitter::call_op_helper`], for a helper whose result may also be tagged with
    /// `jit::exceptions::unwind_at` (an exception with its traceback): that goes to `unwind`.
    pub fn call_raising_helper(&mut self, opcode: u8, helper: OpHelper, oparg: u32, error: DynamicLabel, unwind: DynamicLabel) {
        self.emit_helper_call(helper, oparg);
        self.check_helper_moved(opcode, oparg);
        x64!(self.ops
            ; mov r14, rax
            ; test al, 2
            ; jnz =>unwind
            ; test al, 1
            ; jnz =>error
        );
    }

    /// As [`Emitter::call_op_helper`], for a helper that also takes the instruction's
    /// specialization site.
    pub fn call_site_helper(&mut self, opcode: u8, helper: SiteHelper, oparg: u32, site: *const Site, error: DynamicLabel) {
        self.call_site_helper_with(opcode, helper, oparg, oparg, site, error);
    }

    /// [`Emitter::call_site_helper`] passing the helper `arg` (the oparg with more packed in)
    /// where the stack check reads `opcode oparg`.
    pub fn call_site_helper_with(&mut self, opcode: u8, helper: SiteHelper, oparg: u32, arg: u32, site: *const Site, error: DynamicLabel) {
        let helper_fn = helper as *const () as usize;
        x64!(self.ops
            ; mov rdi, r13
            ; mov rsi, r12
            ; mov rdx, r14
            ; mov ecx, arg as i32
            ; mov r8, QWORD site as i64
        );
        self.call_fn(helper_fn);
        self.check_helper_moved(opcode, oparg);
        x64!(self.ops
            ; mov r14, rax
            ; test al, 1
            ; jnz =>error
        );
    }

    /// Emits the site helper of `opcode oparg` at `label` in the cold section, returning to
    /// `resume` (see [`Emitter::call_site_helper`]): a fast path's slow path, out of the way of
    /// the hot code.
    pub fn cold_site_helper(&mut self, label: DynamicLabel, resume: DynamicLabel, opcode: u8, oparg: u32, helper: SiteHelper, site: *const Site) {
        let error = self.error_exit();
        self.cold(label, move |e| {
            e.call_site_helper(opcode, helper, oparg, site, error);
            x64!(e.ops ; jmp =>resume);
        });
    }

    /// Has `emit` write a cold path at `label` in the cold section; it must end by jumping back
    /// (or out).
    pub fn cold(&mut self, label: DynamicLabel, emit: impl FnOnce(&mut Emitter) + 'static) {
        self.stubs.push(Stub::Cold { label, emit: Box::new(emit) });
    }

    /// `rax = helper(tstate, frame, r14, oparg)`.
    fn emit_helper_call(&mut self, helper: OpHelper, oparg: u32) {
        let helper_fn = helper as *const () as usize;
        x64!(self.ops
            ; mov rdi, r13
            ; mov rsi, r12
            ; mov rdx, r14
            ; mov ecx, oparg as i32
        );
        self.call_fn(helper_fn);
    }

    /// Calls the helper of a jump with three outcomes (FOR_ITER, SEND): the stack grew or stayed
    /// (go on), it shrank (jump to `target`), or the result is tagged (raise through `error`).
    pub fn call_op_helper_branching(&mut self, opcode: u8, helper: OpHelper, error: DynamicLabel, target: DynamicLabel) {
        // Which way the helper went is told by the stack pointer alone: the table's taken path
        // must shrink the stack and its fall-through must not.
        let u = table_moves(opcode, 0);
        let taken = u.jump_effect.expect("a jump");
        debug_assert!(taken < 0 && u.effect >= 0, "{opcode}: {u:?} cannot be told apart by the stack pointer");
        let helper_fn = helper as *const () as usize;
        x64!(self.ops
            ; mov rdi, r13
            ; mov rsi, r12
            ; mov rdx, r14
            ; xor ecx, ecx
        );
        self.call_fn(helper_fn);
        self.check_moved_by(opcode, 0, &[u.effect, taken]);
        x64!(self.ops
            ; test al, 1
            ; jnz BYTE >failed
            ; cmp rax, r14
            ; mov r14, rax
            ; jb =>target
            ; jmp BYTE >next
            ; failed:
            ; mov r14, rax
            ; jmp =>error
            ; next:
        );
    }

    /// Debug builds only (release builds emit nothing): right after the call of the helper of
    /// `opcode oparg`, with `rax` its result and `r14` the stack before it, checks that the helper
    /// moved the stack pointer as the opcode table says (`opcodes::moves`), and aborts naming the
    /// instruction otherwise. Helpers compute their new stack pointer themselves, so this is what
    /// ties them to the table the stack verifier trusted. A tagged (raising) result is not
    /// checked: the stack is then as ceval's error path leaves it. Clobbers `rcx`.
    pub fn check_helper_moved(&mut self, opcode: u8, oparg: u32) {
        self.check_moved_by(opcode, oparg, &[table_moves(opcode, oparg).effect]);
    }

    /// [`Emitter::check_helper_moved`] for a helper that may move the stack by any of `effects`.
    fn check_moved_by(&mut self, opcode: u8, oparg: u32, effects: &[i32]) {
        if !cfg!(debug_assertions) {
            return;
        }
        let ok = self.label();
        x64!(self.ops ; test al, 1 ; jnz =>ok);
        for &effect in effects {
            let disp = 8 * effect;
            x64!(self.ops ; lea rcx, [r14 + disp] ; cmp rax, rcx ; je =>ok);
        }
        let bad_move_fn = jit::pg_bad_stack_move as *const () as usize;
        x64!(self.ops
            ; mov edi, opcode as i32
            ; mov esi, oparg as i32
            ; mov rdx, r14
            ; mov rcx, rax
        );
        self.call_fn(bad_move_fn);
        x64!(self.ops
            ; =>ok
        );
    }

    /// `Py_INCREF(rax)`. Against a debug interpreter it also counts `_Py_RefTotal`, as the
    /// header's `Py_INCREF` does there; that form clobbers `r11`.
    pub fn incref_rax(&mut self) {
        x64!(self.ops ; inc QWORD [rax]);
        if ref_debug::ENABLED {
            x64!(self.ops
                ; mov r11, QWORD ref_debug::total_addr() as i64
                ; inc QWORD [r11]
            );
        }
    }

    /// `Py_DECREF(rdi)`: may run a destructor (any Python code), so `prev_instr` must be set.
    /// Clobbers the caller-saved registers in every case: callers may not rely on the fast path.
    pub fn decref_rdi(&mut self) {
        if ref_debug::ENABLED {
            // The interpreter's own function: moves the total, checks for a negative count.
            x64!(self.ops
                ; mov rax, QWORD ref_debug::decref_fn() as i64
                ; call rax
            );
            return;
        }
        // The destructor in the cold section: the hot path does not jump.
        let (label, resume) = (self.label(), self.label());
        self.stubs.push(Stub::Dealloc { label, resume, unit: None, after: AfterCold::Skip, tracing: None });
        x64!(self.ops
            ; dec QWORD [rdi]
            ; jz =>label
            ; =>resume
        );
    }

    /// `Py_DECREF(rdi)` in a quiet instruction (see [`Prelude`]): the destructor runs in a cold
    /// path, which stores `prev_instr` (`unit`) first and then does `after`. Clobbers the
    /// caller-saved registers in every case.
    pub fn decref_rdi_quiet(&mut self, unit: ColdUnit, after: AfterCold) {
        let (label, resume) = (self.label(), self.label());
        let tracing = (after != AfterCold::Skip).then(|| self.label());
        self.pending_tracing.extend(tracing);
        self.stubs.push(Stub::Dealloc { label, resume, unit: Some(unit), after, tracing });
        if ref_debug::ENABLED {
            // The total moves as the header's Py_DECREF moves it; zero and negative counts go
            // to `Py_DecRef` (the stub undoes both decrements first), which deallocates or
            // reports the negative count.
            x64!(self.ops
                ; mov r11, QWORD ref_debug::total_addr() as i64
                ; dec QWORD [r11]
                ; dec QWORD [rdi]
                ; jle =>label
                ; =>resume
            );
        } else {
            x64!(self.ops
                ; dec QWORD [rdi]
                ; jz =>label
                ; =>resume
            );
        }
    }

    /// `Py_XDECREF(rdi)` in a quiet instruction (see [`Emitter::decref_rdi_quiet`]).
    pub fn xdecref_rdi_quiet(&mut self, unit: ColdUnit, after: AfterCold) {
        x64!(self.ops
            ; test rdi, rdi
            ; jz BYTE >null
        );
        self.decref_rdi_quiet(unit, after);
        x64!(self.ops ; null:);
    }

    /// `Py_DECREF(rdi)` of an object that is never deallocated here (`True`, `False`): no
    /// destructor can run. Against a debug interpreter it also counts `_Py_RefTotal` (clobbers
    /// `r11`).
    pub fn decref_immortal_rdi(&mut self) {
        x64!(self.ops ; dec QWORD [rdi]);
        if ref_debug::ENABLED {
            x64!(self.ops
                ; mov r11, QWORD ref_debug::total_addr() as i64
                ; dec QWORD [r11]
            );
        }
    }

    /// `Py_XDECREF(rdi)`.
    pub fn xdecref_rdi(&mut self) {
        x64!(self.ops
            ; test rdi, rdi
            ; jz BYTE >null
        );
        self.decref_rdi();
        x64!(self.ops ; null:);
    }

    /// Pushes `rax` on the value stack.
    pub fn push_rax(&mut self) {
        x64!(self.ops
            ; mov [r14], rax
            ; add r14, 8
        );
    }

    /// Loads local `index` into `rax`, or jumps to an UnboundLocalError exit if it is unset.
    /// `unit` is what `prev_instr` holds when it raises (the instruction stores none itself).
    pub fn load_local_checked(&mut self, index: u32, error: DynamicLabel, unit: ColdUnit) {
        let unbound = self.label();
        self.stubs.push(Stub::UnboundLocal { label: unbound, oparg: index, error, unit });
        self.load_local_or(index, unbound);
    }

    /// `rax` = local `index`, known to be bound (`bound_locals`), or tested by the caller.
    pub fn load_local_bound(&mut self, index: u32) {
        let disp = F_LOCALSPLUS + 8 * index as i32;
        // The first few locals are within a byte's displacement of the frame (3 bytes less).
        match i8::try_from(disp) {
            Ok(d) => x64!(self.ops ; mov rax, [BYTE r12 + d]),
            Err(_) => x64!(self.ops ; mov rax, [r12 + disp]),
        }
    }

    fn load_local_or(&mut self, index: u32, unbound: DynamicLabel) {
        self.load_local_bound(index);
        x64!(self.ops
            ; test rax, rax
            ; jz =>unbound
        );
    }

    /// `RETURN_VALUE`: pops the value, leaves the frame and returns it.
    pub fn return_top(&mut self) {
        let epilogue = self.epilogue;
        x64!(self.ops
            ; sub r14, 8
            ; mov rbx, [r14]
        );
        self.leave_frame();
        x64!(self.ops
            ; mov rax, rbx
            ; jmp =>epilogue
        );
    }

    /// `RETURN_GENERATOR` at `start` (`prev_instr` already on it): makes the generator, which
    /// takes the frame over, and returns it (`gen::pg_return_generator`, which also leaves the
    /// frame); a failure raises here, and a coroutine whose origin is tracked is made by the
    /// interpreter, handed the frame before the instruction.
    pub fn return_generator(&mut self, start: usize) {
        let (epilogue, error) = (self.epilogue, self.error_exit());
        let interpreter = self.handoff_before(start, ExitReason::GeneratorCreation);
        let make_gen_fn = gen::pg_return_generator as *const () as usize;
        x64!(self.ops
            ; mov rdi, r13
            ; mov rsi, r12
            ; mov rdx, r14
            ; lea rcx, [BYTE rbp + const { d8(- CFRAME) }]
        );
        self.call_fn(make_gen_fn);
        x64!(self.ops
            ; cmp rax, gen::RETURN_GENERATOR_IN_INTERPRETER as i32
            ; je =>interpreter
            ; test rax, rax
            ; jz =>error
            ; jmp =>epilogue
        );
    }

    /// `YIELD_VALUE`: pops the value, marks the generator suspended and returns the value; the
    /// frame keeps `prev_instr` at this instruction, where the next send resumes it.
    pub fn yield_top(&mut self) {
        x64!(self.ops ; mov BYTE [BYTE r12 + const { d8(GEN_FRAME_STATE) }], frame_state::SUSPENDED);
        self.return_top();
    }

    /// For generator code: jumps to where the frame was suspended. A fresh frame (the call that
    /// creates the generator: `prev_instr` one unit before the code) starts at `start`; `points`
    /// maps the code unit `prev_instr` points at (RETURN_GENERATOR or a YIELD_VALUE) to the
    /// instruction after it; any other position is handed to the interpreter, which resumes there.
    pub fn resume_dispatch(&mut self, start: DynamicLabel, points: &[(usize, DynamicLabel)]) {
        let unknown = self.label();
        let handoff = self.handoff;
        x64!(self.ops
            ; mov rax, [BYTE r12 + const { d8(F_PREV_INSTR) }]
            ; mov rcx, QWORD self.first_instr as i64
            ; sub rax, rcx
            ; cmp rax, -2
            ; je =>start
        );
        for &(index, label) in points {
            x64!(self.ops
                ; cmp rax, (2 * index) as i32
                ; je =>label
            );
        }
        x64!(self.ops
            ; =>unknown
            ; mov r8, [BYTE r12 + const { d8(F_PREV_INSTR) }]
            ; mov r9d, ExitReason::ResumedFrame as u32 as i32
            ; jmp =>handoff
        );
    }

    /// Emits the shared tails and every stub, and returns the offset where cold code begins.
    pub fn finish(&mut self) -> usize {
        let cold_start = self.offset();
        let (epilogue, delegate, handoff, raise_out, handoff_traced) =
            (self.epilogue, self.delegate, self.handoff, self.raise_out, self.handoff_traced);
        x64!(self.ops ; =>raise_out ; and r14, -4);
        self.leave_frame();
        let handoff_fn = frame::pg_frame_handoff as *const () as usize;
        let handoff_traced_fn = frame::pg_frame_handoff_traced as *const () as usize;
        let eval_fn = cpython::_PyEval_EvalFrameDefault as *const () as usize;
        x64!(self.ops
            ; xor eax, eax
            ; jmp =>epilogue
            ; =>handoff
            ; mov rdi, r13
            ; mov rsi, r12
            ; mov rdx, r14
            ; lea rcx, [BYTE rbp + const { d8(- CFRAME) }]
        );
        self.call_fn(handoff_fn);
        x64!(self.ops
            ; jmp =>epilogue
            ; =>handoff_traced
            ; mov rdi, r13
            ; mov rsi, r12
            ; mov rdx, r14
            ; lea rcx, [BYTE rbp + const { d8(- CFRAME) }]
        );
        self.call_fn(handoff_traced_fn);
        x64!(self.ops
            ; jmp =>epilogue
            ; =>delegate
            // The interpreter runs the whole frame (resumed mid-way, or recursion limit reached).
            ; mov rdi, r13
            ; mov rsi, r12
            ; xor edx, edx
        );
        self.call_fn(eval_fn);
        x64!(self.ops
            ; =>epilogue
            ; add rsp, 40
            ; pop r15
            ; pop r14
            ; pop r13
            ; pop r12
            ; pop rbx
            ; pop rbp
            ; ret
        );
        if !self.warm_at_compile {
            self.emit_warm_check();
        }
        // A cold path's tracing check with no instruction after it (never emitted: the last
        // instruction leaves the frame) would have nowhere to go.
        for label in std::mem::take(&mut self.pending_tracing) {
            x64!(self.ops ; =>label ; ud2);
        }
        // Cold paths may ask for stubs of their own (a destructor's call): until none is left.
        while !self.stubs.is_empty() {
            for stub in std::mem::take(&mut self.stubs) {
                match stub {
                    Stub::HandOff { label, prev_instr, reason } => {
                        x64!(self.ops ; =>label);
                        self.emit_handoff(prev_instr, reason);
                    }
                    Stub::Dealloc { label, resume, unit, after, tracing } => {
                        x64!(self.ops ; =>label);
                        if ref_debug::ENABLED {
                            x64!(self.ops
                                ; inc QWORD [rdi]
                                ; inc QWORD [r11]
                            );
                            if let Some(unit) = unit {
                                self.store_cold_unit(unit); // keeps rdi
                            }
                            x64!(self.ops
                                ; mov rax, QWORD ref_debug::decref_fn() as i64
                                ; call rax
                            );
                        } else {
                            if let Some(unit) = unit {
                                self.store_cold_unit(unit);
                            }
                            let dealloc_fn = cpython::_Py_Dealloc as *const () as usize;
                            self.call_fn(dealloc_fn);
                        }
                        if after == AfterCold::CheckUnlessPaired {
                            x64!(self.ops ; test bl, bl ; jnz =>resume);
                        }
                        if let Some(tracing) = tracing {
                            x64!(self.ops
                                ; cmp BYTE [BYTE rbp + const { d8(- CFRAME) }], 0
                                ; jne =>tracing
                            );
                        }
                        x64!(self.ops ; jmp =>resume);
                    }
                    Stub::Cold { label, emit } => {
                        x64!(self.ops ; =>label);
                        emit(self);
                    }
                    Stub::EvalBreaker { label, resume, handoff } => {
                        let breaker_fn = frame::pg_eval_breaker as *const () as usize;
                        x64!(self.ops
                            ; =>label
                            ; mov rdi, r13
                        );
                        self.call_fn(breaker_fn);
                        x64!(self.ops
                            ; test eax, eax
                            ; jz =>resume
                            ; jmp =>handoff
                        );
                    }
                    Stub::Pending { label, resume, error } => {
                        let pending_fn = frame::pg_handle_pending as *const () as usize;
                        x64!(self.ops
                            ; =>label
                            ; mov rdi, r13
                        );
                        self.call_fn(pending_fn);
                        x64!(self.ops
                            ; test eax, eax
                            ; jnz =>error
                            ; jmp =>resume
                        );
                    }
                    Stub::UnboundLocal { label, oparg, error, unit } => {
                        x64!(self.ops ; =>label);
                        self.store_cold_unit(unit);
                        self.emit_helper_call(ops::pg_unbound_local, oparg);
                        x64!(self.ops ; mov r14, rax ; test al, 1 ; jnz =>error);
                        // pg_unbound_local always tags its result, so the line above always jumps.
                    }
                }
            }
        }
        // Last: every error exit was asked for while its instruction was emitted (a stub asking
        // now would get the last instruction's handler).
        self.finished = true;
        self.emit_error_exits();
        self.emit_handoff_tails();
        // The trampolines, last: `rax` holds no argument of any function called (none is
        // variadic), so it can carry the address.
        for (addr, label) in std::mem::take(&mut self.trampolines) {
            x64!(self.ops
                ; =>label
                ; mov rax, QWORD addr as i64
                ; jmp rax
            );
        }
        cold_start
    }

    /// The error exits (see [`Emitter::error_exit`]): `pg_unwind` with the handler's entry, then
    /// a jump to the handler, or out of the frame.
    fn emit_error_exits(&mut self) {
        let raise_out = self.raise_out;
        for (handler, from_error, label) in std::mem::take(&mut self.error_exits) {
            let packed = handler.map_or(exceptions::NO_HANDLER, |h| exceptions::packed_handler(h.depth, h.push_lasti));
            let unwind_fn = exceptions::pg_unwind as *const () as usize;
            x64!(self.ops
                ; =>label
                ; and r14, -4   // either tag (see `exceptions::unwind_at`)
                ; mov rdi, r13
                ; mov rsi, r12
                ; mov rdx, r14
                ; mov rcx, QWORD packed as i64
                ; mov r8d, from_error as i32
            );
            self.call_fn(unwind_fn);
            x64!(self.ops
                ; mov r14, rax
            );
            match handler {
                Some(h) => {
                    let target = self.starts[h.target].expect("handler targets were checked to be instruction starts");
                    x64!(self.ops ; jmp =>target);
                }
                None => x64!(self.ops ; jmp =>raise_out),
            }
        }
    }

    /// `pg_frame_handoff(tstate, frame, r14, cframe, prev_instr, reason)` through the shared
    /// tail, which returns the frame's result.
    fn emit_handoff(&mut self, prev_instr: usize, reason: ExitReason) {
        if self.units_share_high_half {
            // 10 bytes a site instead of 21 (there is one per tracing check): the lower half in
            // `eax` (zero-extended), the rest in a tail per reason.
            let tail = match self.handoff_tails.iter().find(|(r, _)| *r == reason) {
                Some(&(_, tail)) => tail,
                None => {
                    let tail = self.label();
                    self.handoff_tails.push((reason, tail));
                    tail
                }
            };
            x64!(self.ops
                ; mov eax, prev_instr as u32 as i32
                ; jmp =>tail
            );
            return;
        }
        let handoff = self.handoff_tail_for(reason);
        x64!(self.ops
            ; mov r8, QWORD prev_instr as i64
            ; mov r9d, reason as u32 as i32
            ; jmp =>handoff
        );
    }

    /// A hand-off for `reason` whose `prev_instr` (the unit before the instruction the
    /// interpreter goes on at) a helper computed: in `rdx`, with `r14` the exact stack. Cold code.
    pub fn handoff_at_rdx(&mut self, reason: ExitReason) {
        let handoff = self.handoff_tail_for(reason);
        x64!(self.ops
            ; mov r8, rdx
            ; mov r9d, reason as u32 as i32
            ; jmp =>handoff
        );
    }

    /// The shared tail a hand-off for `reason` ends in. Tracing went on, or an instruction only
    /// the interpreter runs (tracing may be on): the interpreter checks for a 'line' event
    /// first, which must be stock's.
    fn handoff_tail_for(&self, reason: ExitReason) -> DynamicLabel {
        match reason {
            ExitReason::Tracing | ExitReason::InterpreterOnlyInstruction => self.handoff_traced,
            _ => self.handoff,
        }
    }

    /// The tails of the hand-off stubs ([`Emitter::emit_handoff`]): the upper half of
    /// `prev_instr`, which all its values share, joined to the lower half in `rax`.
    fn emit_handoff_tails(&mut self) {
        let high = (self.first_instr & !0xffff_ffff) as i64;
        for (reason, tail) in std::mem::take(&mut self.handoff_tails) {
            let handoff = self.handoff_tail_for(reason);
            x64!(self.ops
                ; =>tail
                ; mov r8, QWORD high
                ; or r8, rax
                ; mov r9d, reason as u32 as i32
                ; jmp =>handoff
            );
        }
    }
}
