//! Baseline machine code for one code object, owned by its `CodeState` and freed with it.

use peregrine_runtime::code_arena::CodeBlock;
use peregrine_runtime::code_state::CompiledCode;
use peregrine_runtime::jit::specialize::{Site, Warmth};
use peregrine_runtime::cpython::EvalFrameFn;
use peregrine_runtime::Tier;

/// A bytecode instruction and the native offset of its template.
#[derive(Clone, Copy, Debug)]
pub struct InstrOffset {
    /// Offset in bytes in `co_code` (as `dis` shows it).
    pub bytecode: u32,
    pub oparg: u32,
    /// Offset of the template in the machine code (kept for as long as the code: 12 bytes
    /// an instruction, its cold copy included).
    pub native: u32,
    pub opcode: u8,
}

impl InstrOffset {
    pub(crate) fn new(ins: &peregrine_runtime::bytecode::Instr, native: usize) -> Self {
        // Code objects are below 2^31 code units (the decoder's offsets are i32 in CPython)
        // and their machine code below 4 GiB (the arena is 1 GiB).
        InstrOffset { bytecode: 2 * ins.index as u32, oparg: ins.oparg, native: native as u32, opcode: ins.opcode }
    }
}

/// The executable code of one code object plus what debugging tools need to read it.
pub struct BaselineCode {
    /// Where the machine code lives, in the code arena.
    pub(crate) block: CodeBlock,
    /// Where each bytecode instruction's template starts, in code order.
    pub(crate) instr_offsets: Vec<InstrOffset>,
    /// Native offset where the cold stubs begin (error and hand-off paths).
    pub(crate) cold_start: usize,
    /// The specialization state of each PRECALL and BINARY_SUBSCR, at the addresses the code
    /// was compiled with.
    pub(crate) _sites: Sites,
    /// Offset of the direct-call entry (`Emitter::prologue`).
    pub(crate) direct_entry: usize,
}

/// The [`Site`]s of one compiled code object and the [`Warmth`] they point to (kept only for
/// them).
pub(crate) struct Sites(pub(crate) Box<[Site]>, #[allow(dead_code)] pub(crate) Box<Warmth>);

// SAFETY: the sites are only read and written by the compiled code that owns them, which runs
// with the GIL held; moving the box between threads does not move the sites.
unsafe impl Send for Sites {}

impl BaselineCode {
    /// The specialization sites and inline caches, in code order.
    pub fn sites(&self) -> &[Site] {
        &self._sites.0
    }

    /// The machine code bytes.
    pub fn bytes(&self) -> &[u8] {
        self.block.bytes()
    }

    /// Where each bytecode instruction's template starts.
    pub fn instr_offsets(&self) -> &[InstrOffset] {
        &self.instr_offsets
    }

    pub fn cold_start(&self) -> usize {
        self.cold_start
    }
}

impl CompiledCode for BaselineCode {
    fn tier(&self) -> Tier {
        Tier::Baseline
    }

    fn entry(&self) -> EvalFrameFn {
        // SAFETY: the block starts with a function of the eval-frame signature (emitter.rs
        // prologue), and it is executable for as long as `self` lives.
        unsafe { std::mem::transmute::<usize, EvalFrameFn>(self.block.addr()) }
    }

    fn direct_entry(&self) -> usize {
        self.block.addr() + self.direct_entry
    }

    fn code_bytes(&self) -> usize {
        self.block.len()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
