//! Exits: every reason a frame leaves compiled code (a hand-off at an instruction boundary) or
//! never enters it (the interpreter runs it although the JIT is on). Deoptimizations, hand-offs and
//! fallbacks are one idea here, declared once in [`exit_reasons!`]'s single invocation below;
//! the enum, its stable codes, the Python names, the documentation and the process-wide counters
//! (`stats()["exits"]`) are all generated from it, so a reason cannot exist without a name, a doc
//! string and a counter.
//!
//! Each exit also has a site: the bytecode position where the interpreter takes the frame over.
//! [`count`] records it in the code object's state ([`ExitSites`]), so `peregrine.exits(f)` says
//! where a function leaves compiled code.

use crate::code_state::CodeState;
use crate::cpython::InterpreterFrame;
use crate::stats::{Counter, STATS};

/// When an exit happens relative to compiled code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitWhen {
    /// The frame never ran a compiled instruction: the interpreter runs it from where it starts
    /// (or resumes).
    Entry,
    /// Compiled code ran part of the frame and handed it over at an instruction boundary.
    MidFrame,
}

impl ExitWhen {
    /// The name `peregrine.exit_reasons()` shows.
    pub const fn name(self) -> &'static str {
        match self {
            ExitWhen::Entry => "entry",
            ExitWhen::MidFrame => "mid_frame",
        }
    }
}

/// Declares the exit reasons. Each line is `doc comment, Variant = code, "python_name", when;`.
/// The codes are what machine code passes (`pg_frame_handoff`'s `reason` argument), so they are
/// stable and dense from 0 in declaration order (a unit test checks it).
macro_rules! exit_reasons {
    ($( $(#[doc = $doc:literal])+ $variant:ident = $code:literal, $name:literal, $when:ident; )+) => {
        /// A reason a frame leaves, or never enters, compiled code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u32)]
        pub enum ExitReason {
            $( $(#[doc = $doc])+ $variant = $code, )+
        }

        impl ExitReason {
            /// Every reason, in code order.
            pub const ALL: [ExitReason; [$($code),+].len()] = [$(ExitReason::$variant),+];
            pub const COUNT: usize = Self::ALL.len();

            /// The stable name `stats()["exits"]`, `peregrine.exits()` and the log show.
            pub const fn name(self) -> &'static str {
                match self { $( ExitReason::$variant => $name, )+ }
            }

            /// Whether the frame never ran compiled code, or was handed over mid-way.
            pub const fn when(self) -> ExitWhen {
                match self { $( ExitReason::$variant => ExitWhen::$when, )+ }
            }

            /// The declaration's doc comment as one paragraph (for `exit_reasons()`, docs and
            /// `format_stats`).
            pub fn doc(self) -> &'static str {
                match self { $( ExitReason::$variant => concat!($($doc),+).trim_start(), )+ }
            }
        }
    };
}

exit_reasons! {
    /// An exception is raised where compiled code leaves it to the interpreter: a trace
    /// function's 'line' event, reported by compiled code before a hand-off, raised. The
    /// interpreter unwinds and finishes the frame. (Other exceptions are unwound in compiled
    /// code.) The site is the raising instruction.
    Exception = 0, "exception", MidFrame;
    /// sys.settrace/sys.setprofile became active while the frame ran in compiled code.
    Tracing = 1, "tracing", MidFrame;
    /// The eval breaker asked for signals, pending calls or an asynchronous exception, which the
    /// interpreter handles at that instruction.
    EvalBreaker = 2, "eval_breaker", MidFrame;
    /// A generator or coroutine frame was resumed at a position compiled code does not resume at
    /// (or a frame was entered mid-way): the interpreter runs it.
    ResumedFrame = 3, "resumed_frame", Entry;
    /// The recursion limit was reached on entry: the interpreter raises RecursionError.
    RecursionLimit = 4, "recursion_limit", Entry;
    /// An instruction the tier leaves to the interpreter (compiled as a hand-off) was reached.
    InterpreterOnlyInstruction = 5, "interpreter_only_instruction", MidFrame;
    /// sys.settrace/sys.setprofile was active when the frame started: only the interpreter emits
    /// trace events.
    TracingAtEntry = 6, "tracing_at_entry", Entry;
    /// The frame was entered with throwflag set (generator.throw()): the interpreter raises the
    /// pending exception at the frame's current position.
    ThrowFlag = 7, "throwflag", Entry;
    /// Past the threshold, but every tier refused the code object (`compile_failures` says why).
    Uncompilable = 8, "uncompilable", Entry;
    /// RETURN_GENERATOR of a coroutine while `sys.set_coroutine_origin_tracking_depth()` is on:
    /// the interpreter creates the coroutine, since recording its origin needs a function
    /// libpython does not export; the coroutine's frame is resumed in compiled code afterwards.
    GeneratorCreation = 9, "generator_creation", MidFrame;
}

impl ExitReason {
    /// From the code machine code passes; an unknown value is counted as an interpreter-only
    /// instruction rather than trusted.
    pub fn from_u32(v: u32) -> ExitReason {
        Self::ALL.get(v as usize).copied().unwrap_or(ExitReason::InterpreterOnlyInstruction)
    }

    pub fn from_name(name: &str) -> Option<ExitReason> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    #[inline(always)]
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// The process-wide count of each exit reason (`stats()["exits"]`).
pub struct ExitCounters([Counter; ExitReason::COUNT]);

impl ExitCounters {
    pub const fn new() -> Self {
        ExitCounters([const { Counter::new() }; ExitReason::COUNT])
    }

    /// Counts one exit. GIL held.
    #[inline]
    pub fn count(&self, reason: ExitReason) {
        self.0[reason.index()].add_with_gil(1);
    }

    pub fn get(&self, reason: ExitReason) -> u64 {
        self.0[reason.index()].get()
    }

    pub fn reset(&self) {
        self.0.iter().for_each(Counter::reset);
    }
}

impl Default for ExitCounters {
    fn default() -> Self {
        Self::new()
    }
}

/// Site records all code objects may hold together; past it new sites are counted in
/// `stats()["exit_sites_dropped"]` instead (known sites keep counting). 12 bytes each: at most
/// 768 KiB.
pub const MAX_EXIT_SITES: u64 = 1 << 16;

/// One code object's exits by site: `(code unit, reason, count)`, sorted by unit and reason.
/// Empty (no allocation) until the first exit. Counts saturate.
#[derive(Default)]
pub struct ExitSites {
    sites: Vec<(u32, ExitReason, u32)>,
    /// `stats` reset generation the counts belong to: `reset_stats()` zeroes them lazily.
    generation: u64,
}

impl ExitSites {
    /// Counts an exit at code unit `unit`. `live` is the number of site records held by all code
    /// objects, checked against [`MAX_EXIT_SITES`] before a new record is made. Returns false if
    /// the site was new and could not be recorded.
    pub fn record(&mut self, unit: u32, reason: ExitReason, live: &Counter, generation: u64) -> bool {
        self.refresh(live, generation);
        match self.sites.binary_search_by_key(&(unit, reason), |&(u, r, _)| (u, r)) {
            Ok(i) => {
                let n = &mut self.sites[i].2;
                *n = n.saturating_add(1);
                true
            }
            Err(_) if live.get() >= MAX_EXIT_SITES => false,
            Err(i) => {
                self.sites.insert(i, (unit, reason, 1));
                live.add_with_gil(1);
                true
            }
        }
    }

    /// The records, sorted by unit and reason, as of `generation`.
    pub fn snapshot(&mut self, live: &Counter, generation: u64) -> Vec<(u32, ExitReason, u32)> {
        self.refresh(live, generation);
        self.sites.clone()
    }

    /// Frees every record (the code object died, or its state is reused).
    pub fn clear(&mut self, live: &Counter) {
        live.add_with_gil((self.sites.len() as u64).wrapping_neg()); // wrapping decrement
        self.sites = Vec::new();
    }

    fn refresh(&mut self, live: &Counter, generation: u64) {
        if self.generation != generation {
            self.clear(live);
            self.generation = generation;
        }
    }
}

/// Counts one exit of `frame` for `reason`: process-wide, and at its site in the state of the
/// frame's code when the JIT has one (`state`, or looked up when `None`; none is created just to
/// count). `at` is the code unit where the interpreter takes over: the next instruction it runs,
/// or, when it raises on taking over (throwflag), the instruction it raises at.
///
/// # Safety
/// GIL held; `frame` is a live frame and `at` points into its code's `co_code_adaptive`.
pub unsafe fn count(frame: *mut InterpreterFrame, state: Option<&CodeState>, reason: ExitReason, at: *const u16) {
    STATS.exits.count(reason);
    // SAFETY: a live frame holds its code object.
    let code = unsafe { (*frame).f_code };
    // SAFETY: GIL held, live code object.
    let Some(state) = state.or_else(|| unsafe { CodeState::existing(code as *mut _) }) else { return };
    // SAFETY: as above.
    let first = unsafe { std::ptr::addr_of!((*code).co_code_adaptive) } as *const u16;
    // SAFETY: `at` and `first` point into the same code array (per the contract).
    let unit = unsafe { at.offset_from(first) };
    if let Ok(unit) = u32::try_from(unit) {
        state.count_exit_at(unit, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_dense_in_declaration_order_and_names_unique() {
        for (i, r) in ExitReason::ALL.iter().enumerate() {
            assert_eq!(*r as u32 as usize, i);
            assert_eq!(r.index(), i);
            assert_eq!(ExitReason::from_u32(i as u32), *r);
            assert_eq!(ExitReason::from_name(r.name()), Some(*r));
            assert!(!r.doc().is_empty() && !r.doc().starts_with(' '), "{r:?}");
        }
        let mut names: Vec<_> = ExitReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ExitReason::COUNT);
        assert_eq!(ExitReason::from_u32(999), ExitReason::InterpreterOnlyInstruction);
    }

    #[test]
    fn doc_lines_join_into_one_paragraph() {
        assert_eq!(
            ExitReason::RecursionLimit.doc(),
            "The recursion limit was reached on entry: the interpreter raises RecursionError."
        );
        assert!(ExitReason::Exception.doc().contains("trace function's 'line' event"));
    }

    #[test]
    fn counters_count_per_reason_and_reset() {
        let c = ExitCounters::new();
        c.count(ExitReason::Tracing);
        c.count(ExitReason::Tracing);
        c.count(ExitReason::ThrowFlag);
        assert_eq!(c.get(ExitReason::Tracing), 2);
        assert_eq!(c.get(ExitReason::ThrowFlag), 1);
        assert_eq!(c.get(ExitReason::Exception), 0);
        c.reset();
        assert_eq!(c.get(ExitReason::Tracing), 0);
    }

    #[test]
    fn sites_are_sorted_counted_and_bounded() {
        let live = Counter::new();
        let mut s = ExitSites::default();
        assert!(s.record(8, ExitReason::Exception, &live, 0));
        assert!(s.record(2, ExitReason::Tracing, &live, 0));
        assert!(s.record(8, ExitReason::Exception, &live, 0));
        assert!(s.record(8, ExitReason::Tracing, &live, 0));
        assert_eq!(
            s.snapshot(&live, 0),
            vec![(2, ExitReason::Tracing, 1), (8, ExitReason::Exception, 2), (8, ExitReason::Tracing, 1)]
        );
        assert_eq!(live.get(), 3);
        // Full: a new site is dropped, a known one still counts.
        live.add_with_gil(MAX_EXIT_SITES - 3);
        assert!(!s.record(4, ExitReason::Exception, &live, 0));
        assert!(s.record(2, ExitReason::Tracing, &live, 0));
        live.add_with_gil((MAX_EXIT_SITES - 3).wrapping_neg());
        // A new generation (reset_stats) drops the old counts and their records.
        assert!(s.record(4, ExitReason::Exception, &live, 1));
        assert_eq!(s.snapshot(&live, 1), vec![(4, ExitReason::Exception, 1)]);
        assert_eq!(live.get(), 1);
        s.clear(&live);
        assert_eq!(live.get(), 0);
        assert!(s.sites.capacity() == 0);
    }

    #[test]
    fn counts_saturate() {
        let live = Counter::new();
        let mut s = ExitSites::default();
        s.record(0, ExitReason::Exception, &live, 0);
        s.sites[0].2 = u32::MAX;
        s.record(0, ExitReason::Exception, &live, 0);
        assert_eq!(s.sites[0].2, u32::MAX);
    }
}
