//! What ceval's specializing interpreter runs at one site of warm code, tracked per site: the
//! adaptive instruction's counter and the specialized form it chose (Python/ceval.c and
//! Python/specialize.c, 3.11).
//!
//! Compiled code does not specialize, but some specialized forms are observable (a C function
//! called directly counts no recursion level; an inlined `__getitem__` or a PRECALL form leaves
//! the caller's `prev_instr` elsewhere). Stock picks a form at a site's first warm execution and
//! keeps it while its guards pass, taking the generic path for the operands that miss; after 53
//! misses it goes back to adaptive, and a failed specialization backs off exponentially. [`Site`]
//! replays that, so a site that sees several kinds of operands runs what stock runs there.

use crate::code_state::{WarmthCounters, WARMUP_DELAY};
use crate::cpython::ffi::PyObject;
use crate::cpython::CodeObject;
use super::inline_cache::InlineCache;
use std::cell::Cell;

/// ceval's `ADAPTIVE_BACKOFF_BITS`: the low bits of an adaptive counter hold the backoff.
const BACKOFF_BITS: u32 = 4;
/// `ADAPTIVE_BACKOFF_START`.
const BACKOFF_START: u32 = 5;
/// `MAX_BACKOFF_VALUE`.
const MAX_BACKOFF: u32 = 16 - BACKOFF_BITS;
/// `miss_counter_start()`: misses a specialized form takes before it goes back to adaptive.
const MISS_COUNTER_START: u16 = 53;

/// The form of a site still adaptive (or not yet quickened).
pub(crate) const ADAPTIVE: u8 = 0;

fn counter_bits(value: u32, backoff: u32) -> u16 {
    ((value << BACKOFF_BITS) | (backoff & ((1 << BACKOFF_BITS) - 1))) as u16
}

/// `adaptive_counter_start()`.
fn counter_start() -> u16 {
    counter_bits((1 << BACKOFF_START) - 1, BACKOFF_START)
}

/// `adaptive_counter_backoff()`.
fn counter_backoff(counter: u16) -> u16 {
    let backoff = ((counter as u32 & ((1 << BACKOFF_BITS) - 1)) + 1).min(MAX_BACKOFF);
    counter_bits((1 << backoff) - 1, backoff)
}

/// One specializable instruction of compiled code: what ceval's adaptive instruction would run
/// there (form and counter), and the inline cache of the template's fast path. Owned by the
/// compiled code, at a fixed address.
pub struct Site {
    /// The instruction's own code unit.
    pub unit: *mut u16,
    /// The code object and its state's counters, for [`Site::is_warm`]: one per compiled code
    /// object, beside its sites.
    warmth: *const Warmth,
    /// The specialized form, or [`ADAPTIVE`]; numbered by the instruction's helpers.
    form: Cell<u8>,
    /// The adaptive counter (backoff in the low bits) or, once specialized, the misses left.
    counter: Cell<u16>,
    /// PRECALL: the form this execution runs, for its CALL ([`ADAPTIVE`]: the generic path).
    pub(crate) running: Cell<u8>,
    /// BINARY_SUBSCR_GETITEM's cache: the type's version, the function and its version.
    pub(crate) type_version: Cell<u32>,
    pub(crate) func: Cell<*mut PyObject>,
    pub(crate) func_version: Cell<u32>,
    /// The inline cache the template's fast path reads, and the site's type profile.
    pub cache: InlineCache,
    /// The instruction, for the profile: its offset in bytes (as `dis` shows it) and opcode.
    pub bytecode_offset: u32,
    pub opcode: u8,
}

/// What tells whether a compiled code object is warm ([`Site::is_warm`]), shared by its sites.
pub struct Warmth {
    pub code: *mut CodeObject,
    pub counters: WarmthCounters,
}

/// Whether `code` is warm: ceval quickened it, or the JIT counted [`WARMUP_DELAY`] RESUMEs and
/// backward jumps (ceval's `_PyCode_Warmup`). Sets the latch when it is; warmth never goes back,
/// so once this returns true it always will.
///
/// # Safety
/// GIL held; `code` is live and `counters` are its code state's.
pub unsafe fn is_warm_now(code: *const CodeObject, counters: &WarmthCounters) -> bool {
    // SAFETY: the caller's contract.
    unsafe {
        if *counters.warm_latch != 0 {
            return true;
        }
        let warm = (*code).co_warmup == 0
            || (*counters.entries).saturating_sub(*counters.generator_creations) as u64 + (*counters.backward_jumps) as u64
                >= WARMUP_DELAY as u64;
        if warm {
            *counters.warm_latch = 1;
        }
        warm
    }
}

impl Site {
    /// A site at code unit `unit` of the code object `warmth` describes, which must outlive it.
    pub fn new(warmth: *const Warmth, unit: *mut u16, bytecode_offset: u32, opcode: u8) -> Site {
        Site {
            unit,
            warmth,
            form: Cell::new(ADAPTIVE),
            // Quickening leaves every adaptive counter at zero: the first warm execution
            // specializes.
            counter: Cell::new(0),
            running: Cell::new(ADAPTIVE),
            type_version: Cell::new(0),
            func: Cell::new(std::ptr::null_mut()),
            func_version: Cell::new(0),
            cache: InlineCache::default(),
            bytecode_offset,
            opcode,
        }
    }

    /// The specialized form now ([`ADAPTIVE`] or a helper's form number), for the profile.
    pub fn form(&self) -> u8 {
        self.form.get()
    }

    /// Whether ceval would have quickened the code by now: its own `co_warmup` ran out, or the JIT
    /// counted `WARMUP_DELAY` RESUMEs (entries other than generator creations) and backward
    /// jumps, as many as `QUICKENING_WARMUP_DELAY`; read without looking the code state up.
    #[inline]
    pub(crate) fn is_warm(&self) -> bool {
        // SAFETY: the site and its `Warmth` live in the compiled code of `code`, which keeps the
        // code object and its code state (pooled, never freed) alive; the GIL is held by the
        // code running.
        unsafe {
            let Warmth { code, counters } = &*self.warmth;
            is_warm_now(*code, counters)
        }
    }

    /// One warm execution: returns the specialized form that runs now, or [`ADAPTIVE`] when the
    /// generic instruction runs. `specialize` is the specializer (it may fill the site's cache
    /// and returns the form or [`ADAPTIVE`] for a failure), `guard` the form's DEOPT_IF checks.
    pub(crate) fn execute(&self, specialize: impl FnOnce(&Site) -> u8, guard: impl FnOnce(&Site, u8) -> bool) -> u8 {
        let mut form = self.form.get();
        if form == ADAPTIVE {
            let counter = self.counter.get();
            if counter >= 1 << BACKOFF_BITS {
                // DECREMENT_ADAPTIVE_COUNTER, then the generic instruction.
                self.counter.set(counter - (1 << BACKOFF_BITS));
                return ADAPTIVE;
            }
            form = specialize(self);
            if form == ADAPTIVE {
                // Backed off; DISPATCH_SAME_OPARG finds the counter non-zero and decrements it.
                self.counter.set(counter_backoff(counter) - (1 << BACKOFF_BITS));
                return ADAPTIVE;
            }
            self.form.set(form);
            self.counter.set(MISS_COUNTER_START);
            // DISPATCH_SAME_OPARG runs the new form at once.
        }
        if guard(self, form) {
            return form;
        }
        // `miss`: count it; the last one makes the instruction adaptive again.
        let misses = self.counter.get().wrapping_sub(1);
        if misses == 0 {
            self.form.set(ADAPTIVE);
            self.counter.set(counter_start());
        } else {
            self.counter.set(misses);
        }
        ADAPTIVE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_as_ceval() {
        assert_eq!(counter_start(), (31 << 4) | 5);
        assert_eq!(counter_backoff(0), (1 << 4) | 1);
        assert_eq!(counter_backoff((1 << 4) | 1), (3 << 4) | 2);
        assert_eq!(counter_backoff((4095 << 4) | 12), (4095 << 4) | 12);
    }

    #[test]
    fn specializes_keeps_misses_and_backs_off() {
        let counters = WarmthCounters {
            entries: std::ptr::null(),
            generator_creations: std::ptr::null(),
            backward_jumps: std::ptr::null_mut(),
            warm_latch: std::ptr::null_mut(),
        };
        let warmth = Warmth { code: std::ptr::null_mut(), counters };
        let site = Site::new(&warmth, std::ptr::null_mut(), 0, 0);
        // A failed specialization: generic now, retried at the next execution (counter 1).
        assert_eq!(site.execute(|_| ADAPTIVE, |_, _| true), ADAPTIVE);
        let mut tried = false;
        assert_eq!(site.execute(|_| { tried = true; ADAPTIVE }, |_, _| true), ADAPTIVE);
        assert!(tried);
        // Backed off twice: two generic executions before the next try.
        for _ in 0..2 {
            assert_eq!(site.execute(|_| panic!("not due"), |_, _| true), ADAPTIVE);
        }
        assert_eq!(site.execute(|_| 7, |_, _| true), 7);
        // Specialized: the guard decides; 53 misses make it adaptive again.
        assert_eq!(site.execute(|_| panic!("specialized"), |_, f| f == 7), 7);
        for _ in 0..53 {
            assert_eq!(site.execute(|_| panic!("specialized"), |_, _| false), ADAPTIVE);
        }
        // Adaptive with the start counter: 31 generic executions, then a new specialization.
        for _ in 0..31 {
            assert_eq!(site.execute(|_| panic!("not due"), |_, _| true), ADAPTIVE);
        }
        assert_eq!(site.execute(|_| 9, |_, _| true), 9);
    }
}

/// Offset of a site's inline cache, for machine code.
pub const CACHE_OFFSET: i32 = std::mem::offset_of!(Site, cache) as i32;
/// Offset of a site's specialized form (a `u8`, [`ADAPTIVE`] or a helper's form number).
pub const FORM_OFFSET: i32 = std::mem::offset_of!(Site, form) as i32;
/// Offset of a PRECALL site's form for its CALL (`Site::running`, a `u8`).
pub const RUNNING_OFFSET: i32 = std::mem::offset_of!(Site, running) as i32;

#[cfg(test)]
mod size_tests {
    /// docs/inline-caches.md states the memory cost per site: keep it true.
    #[test]
    fn site_size_as_documented() {
        assert_eq!(std::mem::size_of::<super::Site>(), SITE_BYTES);
    }

    const SITE_BYTES: usize = 184;
}
