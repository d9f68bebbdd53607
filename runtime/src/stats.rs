//! Process-wide statistics, read by `peregrine.stats()`.
//!
//! Hot-path counters are bumped by the frame hook, which always runs with the GIL held; the GIL
//! serialises those writers, so a relaxed load-then-store is enough and avoids a locked
//! read-modify-write on every call. Counters written off the GIL (the background optimizer, later)
//! use [`Counter::add_atomic`].

use crate::exits::{ExitCounters, ExitReason};
use crate::tier::Tier;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A monotonically increasing statistic.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    /// Adds `n`. The caller holds the GIL, which is the only writer lock this counter has.
    #[inline(always)]
    pub fn add_with_gil(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Adds `n` from any thread.
    pub fn add_atomic(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Where machine code adds to the counter in place (a `u64`; the GIL is its lock).
    pub fn as_ptr(&self) -> *mut u64 {
        self.0.as_ptr()
    }

    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// Counters for one compiled tier.
pub struct TierStats {
    /// Code objects compiled.
    pub compiled: Counter,
    /// Frames that ran in this tier's code.
    pub entries: Counter,
    /// Of `entries`, frames that compiled code pushed and entered itself (a direct call, without
    /// vectorcall and the hook).
    pub direct_calls: Counter,
    /// Of `entries`, generator and coroutine frames that compiled code resumed itself (FOR_ITER
    /// or SEND, without `gen_send_ex2` and the hook).
    pub direct_resumes: Counter,
    /// Calls of C functions that compiled code made in one step, PRECALL and CALL together, where
    /// the site's specialized PRECALL form calls the function itself (`precall_forms::C_FORM_HANDLERS`).
    pub direct_c_calls: Counter,
    /// Wall time spent compiling, in nanoseconds.
    pub compile_ns: Counter,
    /// Bytes of machine code produced.
    pub code_bytes: Counter,
    /// Frames handed back to a lower tier mid-way (guard failures, tracing switched on, ...).
    pub deopts: Counter,
    /// Compile attempts that this tier refused.
    pub failed: Counter,
}

impl TierStats {
    const fn new() -> Self {
        TierStats {
            compiled: Counter::new(),
            entries: Counter::new(),
            direct_calls: Counter::new(),
            direct_resumes: Counter::new(),
            direct_c_calls: Counter::new(),
            compile_ns: Counter::new(),
            code_bytes: Counter::new(),
            deopts: Counter::new(),
            failed: Counter::new(),
        }
    }

    fn reset(&self) {
        for c in [
            &self.compiled,
            &self.entries,
            &self.direct_calls,
            &self.direct_resumes,
            &self.direct_c_calls,
            &self.compile_ns,
            &self.code_bytes,
            &self.deopts,
            &self.failed,
        ] {
            c.reset();
        }
    }
}

/// All statistics of the process.
pub struct Stats {
    /// Frames run by `_PyEval_EvalFrameDefault` while the hook was installed.
    pub interpreter_entries: Counter,
    pub baseline: TierStats,
    pub optimized: TierStats,
    /// Frames that left compiled code, or never entered it, by reason (`crate::exits`).
    pub exits: ExitCounters,
    /// Exit-site records all code objects hold now (a gauge, at most `exits::MAX_EXIT_SITES`).
    pub exit_sites: Counter,
    /// Exits at a new site that found [`Stats::exit_sites`] full and were counted by reason only.
    pub exit_sites_dropped: Counter,
    /// Bumped by [`Stats::reset`]: per-code exit sites of an older generation read as zero.
    generation: Counter,
    /// Refused compilations by tier and reason, e.g. ("baseline", "not supported: opcode X").
    compile_failures: Mutex<BTreeMap<(&'static str, String), u64>>,
    /// Per-code states alive now (allocated in `co_extra`, freed with their code object).
    pub live_code_states: Counter,
    /// Frames the hook ran on a fresh C stack segment because the stack in use was nearly full.
    pub stack_segments: Counter,
}

pub static STATS: Stats = Stats {
    interpreter_entries: Counter::new(),
    baseline: TierStats::new(),
    optimized: TierStats::new(),
    exits: ExitCounters::new(),
    exit_sites: Counter::new(),
    exit_sites_dropped: Counter::new(),
    generation: Counter::new(),
    compile_failures: Mutex::new(BTreeMap::new()),
    live_code_states: Counter::new(),
    stack_segments: Counter::new(),
};

impl Stats {
    pub fn tier(&self, tier: Tier) -> Option<&TierStats> {
        match tier {
            Tier::Interpreter => None,
            Tier::Baseline => Some(&self.baseline),
            Tier::Optimized => Some(&self.optimized),
        }
    }

    /// The process-wide count of exits for `reason`.
    pub fn exit(&self, reason: ExitReason) -> u64 {
        self.exits.get(reason)
    }

    /// The reset generation per-code exit sites are counted in (see `exits::ExitSites`).
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Records that `tier` refused a code object for `reason`.
    pub fn count_compile_failure(&self, tier: Tier, reason: String) {
        if let Some(t) = self.tier(tier) {
            t.failed.add_atomic(1);
        }
        let mut map = self.compile_failures.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((tier.name(), reason)).or_insert(0) += 1;
    }

    /// A copy of the refused-compilation counts.
    pub fn compile_failures(&self) -> Vec<(&'static str, String, u64)> {
        let map = self.compile_failures.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|((tier, reason), n)| (*tier, reason.clone(), *n)).collect()
    }

    /// Zeroes every statistic except the gauges (live code states, exit-site records); per-code
    /// exit sites read as zero from now on and are freed when next touched.
    pub fn reset(&self) {
        self.interpreter_entries.reset();
        self.stack_segments.reset();
        self.baseline.reset();
        self.optimized.reset();
        self.exits.reset();
        self.exit_sites_dropped.reset();
        self.generation.add_atomic(1);
        self.compile_failures.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_and_reset() {
        let c = Counter::new();
        c.add_with_gil(2);
        c.add_atomic(3);
        assert_eq!(c.get(), 5);
        c.reset();
        assert_eq!(c.get(), 0);
    }

    #[test]
    fn compile_failures_are_grouped_by_tier_and_reason() {
        let s = Stats {
            interpreter_entries: Counter::new(),
            baseline: TierStats::new(),
            optimized: TierStats::new(),
            exits: ExitCounters::new(),
            exit_sites: Counter::new(),
            exit_sites_dropped: Counter::new(),
            generation: Counter::new(),
            compile_failures: Mutex::new(BTreeMap::new()),
            live_code_states: Counter::new(),
            stack_segments: Counter::new(),
        };
        s.count_compile_failure(Tier::Baseline, "x".into());
        s.count_compile_failure(Tier::Baseline, "x".into());
        s.count_compile_failure(Tier::Optimized, "x".into());
        assert_eq!(
            s.compile_failures(),
            vec![("baseline", "x".to_string(), 2), ("optimized", "x".to_string(), 1)]
        );
        assert_eq!(s.baseline.failed.get(), 2);
        s.exits.count(ExitReason::TracingAtEntry);
        assert_eq!(s.exit(ExitReason::TracingAtEntry), 1);
        let generation = s.generation();
        s.reset();
        assert!(s.compile_failures().is_empty());
        assert_eq!(s.exit(ExitReason::TracingAtEntry), 0);
        assert_ne!(s.generation(), generation);
    }
}
