//! Tier 1, the baseline compiler: one x86-64 template per bytecode instruction, stitched with
//! dynasm-rs, running on the interpreter's own frame (locals and value stack in `localsplus`,
//! `prev_instr` set as ceval sets it), so the frame can be handed to the interpreter at any
//! instruction boundary.
//!
//! A code object is compiled only if every instruction has a template (templates.rs); otherwise
//! it is refused with the first missing opcode named, and runs in the interpreter. Generator and
//! coroutine frames resume where they were suspended. Exceptions are unwound in compiled code to
//! the handler the exception table names for the raising instruction, found at compile time.

mod bound_locals;
mod direct_entry;
mod compiled;
mod disasm;
mod emitter;
mod fast_paths;
mod offsets;
mod shared_lookups;
mod templates;

pub use compiled::{BaselineCode, InstrOffset};
pub use direct_entry::fast_hook;
pub use disasm::disassemble;

use emitter::Emitter;
use peregrine_runtime::bytecode::{self, op, Instr};
use peregrine_runtime::opcodes::Operand;
use peregrine_runtime::code_arena;
use peregrine_runtime::code_state::{CompiledCode, WarmthCounters};
use peregrine_runtime::jit::specialize::{self, Site, Warmth};
use peregrine_runtime::cpython::{self, co_flags, ffi, CodeObject};
use peregrine_runtime::CompileError;
use templates::{gen_instr, template, NOT_COMPILED};

/// Compiles `code` for the baseline tier. `warmth` are the code state's counters
/// (`CodeState::warmth_counters`): the code bumps the backward jumps at JUMP_BACKWARD as ceval
/// bumps `co_warmup`, and reads both where warm code behaves differently.
///
/// # Safety
/// GIL held; `code` is a live code object; the counters stay valid as long as the code.
pub unsafe fn compile(code: *mut ffi::PyObject, warmth: WarmthCounters) -> Result<Box<dyn CompiledCode>, CompileError> {
    let co = code as *mut CodeObject;
    // SAFETY: `code` is a live code object (caller).
    let bytes = unsafe { canonical_bytecode(co) }?;
    let instrs = bytecode::decode(&bytes)?;
    // SAFETY: as above.
    let view = unsafe { CodeView::new(co) };
    let handlers = bytecode::handlers_of(&bytecode::exception_entries(&view.exception_table)?, &instrs);
    check(&instrs, &handlers, &view)?;
    // SAFETY: as above; the counters are the code state's (caller).
    let warm = unsafe { specialize::is_warm_now(co, &warmth) };
    emit(&instrs, &handlers, &view, bytes.len() / 2, view.resumable, warmth, warm)
}

/// What the compiler reads from the code object, copied out once.
pub(crate) struct CodeView {
    pub consts: Vec<*mut ffi::PyObject>,
    pub n_names: usize,
    pub n_localsplus: usize,
    /// `co_localspluskinds`: per local slot, CO_FAST_LOCAL / CO_FAST_CELL / CO_FAST_FREE bits.
    pub local_kinds: Vec<u8>,
    pub n_freevars: usize,
    pub stacksize: usize,
    /// Parameters, the first local slots: positional, keyword-only, `*args`, `**kwargs`.
    pub n_args: usize,
    pub resumable: bool,
    pub first_instr: usize,
    /// `co_exceptiontable`.
    pub exception_table: Vec<u8>,
}

impl CodeView {
    /// # Safety
    /// GIL held; `co` is live.
    unsafe fn new(co: *mut CodeObject) -> CodeView {
        // SAFETY: a live code object's consts and names are tuples.
        unsafe {
            let consts_tuple = (*co).co_consts;
            let n = ffi::PyTuple_GET_SIZE(consts_tuple);
            CodeView {
                consts: (0..n).map(|i| ffi::PyTuple_GET_ITEM(consts_tuple, i)).collect(),
                n_names: ffi::PyTuple_GET_SIZE((*co).co_names) as usize,
                n_localsplus: (*co).co_nlocalsplus as usize,
                local_kinds: {
                    let kinds = (*co).co_localspluskinds;
                    let p = ffi::PyBytes_AsString(kinds) as *const u8;
                    std::slice::from_raw_parts(p, ffi::PyBytes_Size(kinds) as usize).to_vec()
                },
                n_freevars: (*co).co_nfreevars as usize,
                stacksize: (*co).co_stacksize.max(0) as usize,
                n_args: {
                    let flags = (*co).co_flags;
                    ((*co).co_argcount + (*co).co_kwonlyargcount) as usize
                        + (flags & co_flags::CO_VARARGS != 0) as usize
                        + (flags & co_flags::CO_VARKEYWORDS != 0) as usize
                },
                resumable: (*co).co_flags & co_flags::RESUMABLE != 0,
                first_instr: std::ptr::addr_of_mut!((*co).co_code_adaptive) as usize,
                exception_table: {
                    let table = (*co).co_exceptiontable;
                    let p = ffi::PyBytes_AsString(table) as *const u8;
                    std::slice::from_raw_parts(p, ffi::PyBytes_Size(table) as usize).to_vec()
                },
            }
        }
    }
}

/// `co_localspluskinds` bits (Include/internal/pycore_code.h).
const CO_FAST_CELL: u8 = 0x40;
const CO_FAST_FREE: u8 = 0x80;

impl CodeView {
    /// Whether local slot `i` exists and is a cell or free variable.
    pub fn is_cell_or_free(&self, i: usize) -> bool {
        i < self.n_localsplus && self.local_kinds.get(i).is_some_and(|k| k & (CO_FAST_CELL | CO_FAST_FREE) != 0)
    }
}

/// `co.co_code` as bytes.
///
/// # Safety
/// GIL held; `co` is live.
unsafe fn canonical_bytecode(co: *mut CodeObject) -> Result<Vec<u8>, CompileError> {
    // SAFETY: GIL held; PyCode_GetCode returns a new reference to a bytes object or null.
    unsafe {
        let obj = cpython::PyCode_GetCode(co);
        if obj.is_null() {
            ffi::PyErr_Clear();
            return Err(CompileError::NotSupported("co_code is unavailable".to_string()));
        }
        let data = ffi::PyBytes_AsString(obj) as *const u8;
        let len = ffi::PyBytes_Size(obj) as usize;
        let bytes = std::slice::from_raw_parts(data, len).to_vec();
        ffi::Py_DECREF(obj);
        Ok(bytes)
    }
}

/// Refuses what the baseline does not compile and any argument the templates would trust
/// blindly (indices into constants, names and locals; operator numbers: the table's operand
/// kinds), and legal shapes a template does not handle.
fn check(instrs: &[Instr], handlers: &[Option<bytecode::Handler>], view: &CodeView) -> Result<(), CompileError> {
    let malformed = |ins: &Instr, what: &str| {
        Err(CompileError::Malformed(format!("{} {} at offset {}: {}", ins.name(), ins.oparg, 2 * ins.index, what)))
    };
    let mut pending_kwnames = false;
    for (k, ins) in instrs.iter().enumerate() {
        // PRECALL n and CALL n come as a pair: the stack check relies on it.
        let paired = match ins.opcode {
            op::PRECALL => instrs.get(k + 1).is_some_and(|n| n.opcode == op::CALL && n.oparg == ins.oparg),
            op::CALL => k > 0 && instrs[k - 1].opcode == op::PRECALL && instrs[k - 1].oparg == ins.oparg,
            _ => true,
        };
        if !paired {
            return malformed(ins, "PRECALL and CALL must come as a pair with the same argument");
        }
        // ... on every path: the stack check books CALL's arguments on its PRECALL (as compile.c
        // does), so a jump straight to a CALL would let it read below the verified stack.
        for t in ins.jump_target().into_iter().chain(handlers[k].map(|h| h.target)) {
            if instrs.iter().any(|j| j.start == t && j.opcode == op::CALL) {
                return malformed(ins, "jumps to a CALL, past its PRECALL");
            }
        }
        if template(ins.opcode).is_none() {
            return Err(CompileError::NotSupported(match NOT_COMPILED.iter().find(|(o, _)| *o == ins.opcode) {
                Some((_, why)) => format!("opcode {}: {why}", ins.name()),
                None => format!("opcode {}", ins.name()),
            }));
        }
        let a = ins.oparg as usize;
        // What the argument may be is the opcode table's; what it must be here, this code
        // object's. Templates and helpers index with it unchecked.
        let in_range = match ins.info().operand {
            Operand::Unused | Operand::Raw | Operand::JumpOffset => true, // jumps: checked by decode
            Operand::Const => a < view.consts.len(),
            Operand::Name => a < view.n_names,
            Operand::GlobalName => a >> 1 < view.n_names,
            Operand::Local => a < view.n_localsplus,
            Operand::CellOrFree => view.is_cell_or_free(a),
            Operand::FreeVarCount => a == view.n_freevars,
            Operand::Range(lo, hi) => (lo..=hi).contains(&ins.oparg),
            Operand::AtLeast(lo) => ins.oparg >= lo,
        };
        if !in_range {
            return malformed(ins, "argument out of range for this code object");
        }
        if let Some(why) = unsupported_shape(ins, view) {
            return Err(CompileError::NotSupported(format!("{}: {}", ins.name(), why)));
        }
        use op::*;
        if ins.opcode == KW_NAMES {
            // SAFETY: index checked above; GIL held by the caller of `compile`.
            if unsafe { ffi::PyTuple_CheckExact(view.consts[a]) } == 0 {
                return malformed(ins, "KW_NAMES constant is not a tuple");
            }
            pending_kwnames = true;
        } else if ins.opcode == CALL {
            pending_kwnames = false;
        } else if pending_kwnames && ins.opcode != PRECALL {
            return malformed(ins, "KW_NAMES not followed by PRECALL/CALL");
        }
    }
    // Compiled code trusts the stack discipline: verify it against the frame's room. Generator
    // code starts with the value a send pushes (as compile.c counts it).
    bytecode::verify_stack(instrs, handlers, view.resumable as i32, view.stacksize as i32)?;
    Ok(())
}

/// Code objects of this many instructions and more run each UNPACK_SEQUENCE and the STORE_FASTs
/// after it as one run (`fast_paths::unpack_store`): their loops' machine code is what overflows
/// the instruction cache as templates (pyperformance's unpack_sequence: 4,825 instructions,
/// 240 KB of hot code). Smaller code keeps the templates, which take fewer instructions where
/// the locals' old values die (session 11: generator_pipeline 8% slower with runs everywhere).
pub const LARGE_CODE_INSTRS: usize = 1000;

/// How many STORE_FASTs the UNPACK_SEQUENCE at `instrs[k]` runs in one call with, if any:
/// all `oparg` of them, directly after it, unit after unit (no EXTENDED_ARG), none entered
/// other than from the one before.
fn unpack_store_run(instrs: &[Instr], k: usize, entered: &[bool]) -> Option<usize> {
    use peregrine_runtime::jit::ops::UNPACK_STORE_MAX;
    let unpack = &instrs[k];
    let n = unpack.oparg as usize;
    if instrs.len() < LARGE_CODE_INSTRS
        || unpack.opcode != op::UNPACK_SEQUENCE
        || unpack.start != unpack.index
        || !(1..=UNPACK_STORE_MAX).contains(&n)
    {
        return None;
    }
    let stores = instrs.get(k + 1..=k + n)?;
    let consecutive = stores.iter().enumerate().all(|(j, s)| {
        s.opcode == op::STORE_FAST && s.start == s.index && s.index == unpack.next + j && !entered[s.start]
    });
    consecutive.then_some(n)
}

/// Whether instructions with `opcode` get a specialization site (`jit::specialize::Site`): those
/// whose specialized forms ceval runs observably differently from the generic one, and those
/// with an inline cache.
fn has_site(opcode: u8) -> bool {
    matches!(
        opcode,
        op::PRECALL | op::BINARY_SUBSCR | op::UNPACK_SEQUENCE | op::COMPARE_OP
            // Inline caches (`fast_paths`), which double as the type profile.
            | op::BINARY_OP | op::LOAD_GLOBAL | op::LOAD_ATTR | op::STORE_ATTR | op::LOAD_METHOD
    )
}

/// Legal instructions whose template does not handle this code object, and why: shapes beyond
/// an argument's range.
fn unsupported_shape(ins: &Instr, view: &CodeView) -> Option<&'static str> {
    match ins.opcode {
        // IMPORT_STAR's helper relies on the code object having no fast locals to synchronise
        // with f_locals (true of all module-level code, the only place Python's compiler emits
        // it); anything else runs in the interpreter.
        op::IMPORT_STAR if view.n_localsplus != 0 => Some("in a code object with fast locals"),
        _ => None,
    }
}

fn emit(
    instrs: &[Instr],
    handlers: &[Option<bytecode::Handler>],
    view: &CodeView,
    n_units: usize,
    resumable: bool,
    warmth: WarmthCounters,
    warm: bool,
) -> Result<Box<dyn CompiledCode>, CompileError> {
    // About 180 bytes per instruction in the median, 315 at the 95th percentile (session 9).
    let capacity = 4096 + 256 * instrs.len();
    let mut e = Emitter::new(view.first_instr, n_units, warmth, warm, capacity);
    let mut starts = vec![None; n_units + 1];
    for ins in instrs {
        starts[ins.start] = Some(e.label());
    }
    e.set_starts(starts.clone());
    let labels = |i: usize| starts[i].expect("jump targets were checked to be instruction starts");
    let bound = bound_locals::bound_loads(instrs, handlers, view.n_args, view.n_localsplus, resumable);
    e.bound_loads = vec![false; n_units + 1];
    for (ins, bound) in instrs.iter().zip(bound) {
        e.bound_loads[ins.index] = bound;
    }
    let direct_entry = e.prologue(resumable);
    if resumable {
        // A suspended frame resumes after its RETURN_GENERATOR (first send) or a YIELD_VALUE.
        let points: Vec<(usize, dynasmrt::DynamicLabel)> = instrs
            .windows(2)
            .filter(|w| matches!(w[0].opcode, op::RETURN_GENERATOR | op::YIELD_VALUE))
            .map(|w| (w[0].index, labels(w[1].start)))
            .collect();
        e.resume_dispatch(labels(instrs[0].start), &points);
    }
    // One specialization state per PRECALL (shared with its CALL), BINARY_SUBSCR,
    // UNPACK_SEQUENCE and COMPARE_OP, allocated before emitting: the code holds their addresses.
    let code = (view.first_instr - std::mem::offset_of!(CodeObject, co_code_adaptive)) as *mut CodeObject;
    let shared = Box::new(Warmth { code, counters: warmth });
    let sites = compiled::Sites(
        instrs
            .iter()
            .filter(|i| has_site(i.opcode))
            .map(|i| Site::new(&*shared, e.unit_addr(i.index as isize) as *mut u16, 2 * i.index as u32, i.opcode))
            .collect(),
        shared,
    );
    // Instructions entered other than by falling through: jump targets, exception handlers, the
    // instruction after each suspension point of generator code, the first. They always check
    // for tracing.
    let mut entered = vec![false; n_units + 1];
    entered[instrs.first().map_or(0, |i| i.start)] = true;
    for (k, ins) in instrs.iter().enumerate() {
        for t in ins.jump_target().into_iter().chain(handlers[k].map(|h| h.target)) {
            entered[t] = true;
        }
        if matches!(ins.opcode, op::RETURN_GENERATOR | op::YIELD_VALUE) {
            if let Some(next) = instrs.get(k + 1) {
                entered[next.start] = true;
            }
        }
    }
    // UNPACK_SEQUENCEs run with the STORE_FASTs after them in one call: `absorbed[k]` for
    // those stores, whose code that call is.
    let mut unpack_stores: Vec<Option<(usize, usize)>> = vec![None; instrs.len()];
    let mut absorbed = vec![false; instrs.len()];
    for k in 0..instrs.len() {
        if let Some(n) = unpack_store_run(instrs, k, &entered) {
            absorbed[k + 1..=k + n].fill(true);
            unpack_stores[k] = Some((k, n));
        }
    }
    // Entries of the instructions that may run as the second half of a superinstruction. An
    // absorbed store runs in its call (which may enter the instruction after the last one as
    // such a second half).
    let second_entries: Vec<Option<dynasmrt::DynamicLabel>> = (0..instrs.len())
        .map(|k| (k > 0 && !absorbed[k] && templates::pairs_with(&instrs[k - 1], &instrs[k])).then(|| e.label()))
        .collect();
    let mut unpack_stores: Vec<Option<(Vec<u8>, Option<dynasmrt::DynamicLabel>)>> = unpack_stores
        .into_iter()
        .map(|run| {
            run.map(|(k, n)| {
                let locals = instrs[k + 1..=k + n].iter().map(|s| s.oparg as u8).collect();
                (locals, second_entries.get(k + n + 1).copied().flatten())
            })
        })
        .collect();
    // Runs of pairable instructions (`templates::Pairing`), as `(first, last)` indices into
    // `instrs`. A regular run, entered only at its first instruction, gets a warm copy with fixed
    // roles and a cold copy with the dynamic form; `warm_run[k]` is the regular run instruction
    // `k` is in. (A pair may straddle a try block's edge: each half's error exit is its own
    // handler's, as ceval searches the table at the instruction it runs.)
    let mut warm_run: Vec<Option<(usize, usize)>> = vec![None; instrs.len()];
    let mut k = 0;
    while k < instrs.len() {
        let first = k;
        while k + 1 < instrs.len() && second_entries[k + 1].is_some() {
            k += 1;
        }
        // A run headed by a fused run's last store is entered in its middle, as a second half
        // (`fast_paths::unpack_store`), or at its second instruction: the dynamic form.
        let regular = (first + 1..=k).all(|j| !entered[instrs[j].start]) && !absorbed[first];
        if k > first && regular {
            warm_run[first..=k].fill(Some((first, k)));
        }
        k += 1;
    }
    // The cold copies to emit after the body: (run, label, the first instruction's check).
    let mut cold_copies: Vec<((usize, usize), dynasmrt::DynamicLabel, bool)> = Vec::new();
    // Whether nothing ran since the last tracing check on the fall-through path; whether an
    // instruction without code (its label is the next one's code) was entered.
    let mut nothing_ran = false;
    let mut entered_before = false;
    let mut next_site = 0;
    let mut precall_site: *const Site = std::ptr::null();
    let mut instr_offsets = Vec::with_capacity(instrs.len());
    let mut kwnames: *mut ffi::PyObject = std::ptr::null_mut();
    // Start of the current KW_NAMES/PRECALL/CALL group (see `gen_instr`'s `resume_at`).
    let mut call_group_start = 0;
    for (k, ins) in instrs.iter().enumerate() {
        let label = labels(ins.start);
        e.bind(label);
        instr_offsets.push(InstrOffset::new(ins, e.offset()));
        if absorbed[k] {
            // Its UNPACK_SEQUENCE's call ran it and checked for tracing after anything ran.
            nothing_ran = true;
            entered_before = false;
            continue;
        }
        e.unpack_stores = unpack_stores[k].take();
        if ins.opcode == op::KW_NAMES {
            kwnames = view.consts[ins.oparg as usize];
            call_group_start = ins.start;
        } else if ins.opcode == op::PRECALL && kwnames.is_null() {
            call_group_start = ins.start;
        }
        let resume_at = if matches!(ins.opcode, op::PRECALL | op::CALL) { call_group_start } else { ins.start };
        let site = match ins.opcode {
            o if has_site(o) => {
                let site: *const Site = &sites.0[next_site];
                next_site += 1;
                if ins.opcode == op::PRECALL {
                    precall_site = site;
                }
                site
            }
            op::CALL => precall_site, // PRECALL/CALL pairs were checked
            _ => std::ptr::null(),
        };
        let is_entered = entered[ins.start] || entered_before;
        let check_tracing = is_entered || !nothing_ran;
        let pairing = match warm_run[k] {
            Some((first, last)) => {
                // Code warm when compiled runs this copy alone (no test, no cold copy).
                if k == first && !e.warm_at_compile {
                    // Warm here, warm for the whole run: the copy with fixed roles.
                    let cold = e.label();
                    e.branch_if_not_warm(cold);
                    cold_copies.push(((first, last), cold, check_tracing));
                }
                let role = if (k - first) % 2 == 1 {
                    templates::WarmRole::Second { first_half_index: instrs[k - 1].index }
                } else if k < last {
                    templates::WarmRole::Head
                } else {
                    templates::WarmRole::Alone
                };
                templates::Pairing { warm_role: Some(role), ..Default::default() }
            }
            None => templates::Pairing {
                warm_role: None,
                second_entry: second_entries[k],
                first_half_index: if k > 0 { instrs[k - 1].index } else { 0 },
                next_second_entry: second_entries.get(k + 1).copied().flatten(),
            },
        };
        e.set_handler(handlers[k]);
        gen_instr(&mut e, ins, resume_at, &labels, &view.consts, kwnames, instrs.get(k + 1), pairing, site, check_tracing);
        if templates::emits_code(ins.opcode) {
            // The last of a regular run may be a second half in its cold copy, which goes on
            // here: the dynamic rule, which covers the warm copy's.
            let second = match warm_run[k] {
                Some((first, last)) if k < last => (k - first) % 2 == 1,
                _ => second_entries[k].is_some(),
            };
            nothing_ran = templates::nothing_ran_after(ins.opcode, second.then(|| instrs[k - 1].opcode));
            entered_before = false;
        } else {
            entered_before = is_entered;
        }
        if ins.opcode == op::CALL {
            kwnames = std::ptr::null_mut();
        }
    }
    // The regular runs' cold copies: the dynamic form, run until the code is warm at a run's
    // start, then back to the instruction after the run.
    let copies_start = e.offset();
    for ((first, last), cold, check_first) in cold_copies {
        e.bind(cold);
        let entries: Vec<Option<dynasmrt::DynamicLabel>> =
            (first..=last).map(|k| (k > first).then(|| e.label())).collect();
        let mut nothing_ran = !check_first;
        for k in first..=last {
            let ins = &instrs[k];
            instr_offsets.push(InstrOffset::new(ins, e.offset()));
            let pairing = templates::Pairing {
                warm_role: None,
                second_entry: entries[k - first],
                first_half_index: if k > 0 { instrs[k - 1].index } else { 0 },
                next_second_entry: if k < last { entries[k + 1 - first] } else { None },
            };
            let check_tracing = !nothing_ran;
            e.set_handler(handlers[k]);
            gen_instr(&mut e, ins, ins.start, &labels, &view.consts, std::ptr::null_mut(), instrs.get(k + 1), pairing, std::ptr::null(), check_tracing);
            let second = entries[k - first].is_some();
            nothing_ran = templates::nothing_ran_after(ins.opcode, second.then(|| instrs[k - 1].opcode));
        }
        // What the cold paths of the run's last instruction owe the next one that emits code.
        let next = instrs[last + 1..].iter().position(|i| templates::emits_code(i.opcode)).map(|p| last + 1 + p);
        if let Some(j) = next {
            let resume_at = match instrs[j].opcode {
                op::PRECALL | op::CALL if instrs[j - 1].opcode == op::KW_NAMES => instrs[j - 1].start,
                _ => instrs[j].start,
            };
            e.bind_pending_tracing(resume_at);
        }
        e.jump_to(labels(instrs[last + 1].start));
    }
    let cold_start = e.finish().min(copies_start);
    let calls = std::mem::take(&mut e.calls);
    let bytes = e.ops.finalize().map_err(|err| CompileError::NotSupported(format!("assembling: {err}")))?;
    let block = code_arena::install(&bytes, &calls).map_err(|err| CompileError::NotSupported(err.to_string()))?;
    instr_offsets.shrink_to_fit();
    Ok(Box::new(BaselineCode { block, instr_offsets, cold_start, _sites: sites, direct_entry }))
}
