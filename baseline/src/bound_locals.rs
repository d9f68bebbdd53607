//! Which LOAD_FASTs read a local that is bound on every path to them, so that their template
//! needs neither the unbound test nor the UnboundLocalError stub (about 80 bytes of cold code
//! and 9 of hot code per LOAD_FAST).
//!
//! A forward must-analysis over the code's control flow, exception edges included: at entry the
//! parameters are bound and every other local is not; STORE_FAST binds, DELETE_FAST unbinds; where
//! paths meet, a local is bound only if it is on each. An exception raised by an instruction
//! reaches its handler with the locals as they were before it (only STORE_FAST and DELETE_FAST
//! change them, and neither raises after its change).
//!
//! Exact because nothing else changes a fast local while compiled code runs the frame: calls
//! cannot reach the caller's fast locals (`frame.f_locals` is a copy; only a trace function's
//! return writes it back, and a traced frame runs in the interpreter, never again in compiled
//! code, once it was handed over). Generator and coroutine frames are resumed by compiled code
//! after they may have run traced in the interpreter, so their code is left out (every
//! LOAD_FAST keeps its test), as is code with IMPORT_STAR, which writes locals through a dict.

use peregrine_runtime::bytecode::{op, Handler, Instr};
use peregrine_runtime::opcodes::Flow;

/// A set of local slots.
#[derive(Clone, PartialEq, Eq)]
struct Locals(Vec<u64>);

impl Locals {
    fn none(n: usize) -> Self {
        Locals(vec![0; n.div_ceil(64).max(1)])
    }

    fn first(n: usize, bound: usize) -> Self {
        let mut s = Locals::none(n);
        for i in 0..bound.min(n) {
            s.set(i, true);
        }
        s
    }

    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    fn set(&mut self, i: usize, bound: bool) {
        if let Some(w) = self.0.get_mut(i / 64) {
            if bound {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }

    /// `self` = `self` ∩ `other`; whether it changed.
    fn meet(&mut self, other: &Locals) -> bool {
        let mut changed = false;
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            let m = *a & b;
            changed |= m != *a;
            *a = m;
        }
        changed
    }
}

/// For each of `instrs`, whether it is a LOAD_FAST of a local bound on every path to it.
/// `n_args`: the parameters (positional, keyword-only, `*args`, `**kwargs`), the first slots.
pub fn bound_loads(instrs: &[Instr], handlers: &[Option<Handler>], n_args: usize, n_locals: usize, resumable: bool) -> Vec<bool> {
    let mut result = vec![false; instrs.len()];
    if resumable || instrs.is_empty() || instrs.iter().any(|i| i.opcode == op::IMPORT_STAR) {
        return result;
    }
    let n_units = instrs.last().map_or(0, |i| i.next);
    let mut at_unit = vec![usize::MAX; n_units + 1];
    for (k, ins) in instrs.iter().enumerate() {
        at_unit[ins.start] = k;
    }
    let index_of = |unit: usize| at_unit.get(unit).copied().filter(|&k| k != usize::MAX);
    let mut states: Vec<Option<Locals>> = vec![None; instrs.len()];
    states[0] = Some(Locals::first(n_locals, n_args));
    let mut work = vec![0usize];
    let mut queued = vec![false; instrs.len()];
    queued[0] = true;
    while let Some(k) = work.pop() {
        queued[k] = false;
        let ins = &instrs[k];
        let before = states[k].clone().expect("queued instructions have a state");
        let mut after = before.clone();
        match ins.opcode {
            op::STORE_FAST => after.set(ins.oparg as usize, true),
            op::DELETE_FAST => after.set(ins.oparg as usize, false),
            _ => {}
        }
        let mut edges: Vec<(usize, &Locals)> = Vec::with_capacity(3);
        if ins.info().flow != Flow::Ends && k + 1 < instrs.len() {
            edges.push((k + 1, &after));
        }
        if let Some(t) = ins.jump_target().and_then(index_of) {
            edges.push((t, &after));
        }
        if let Some(t) = handlers[k].and_then(|h| index_of(h.target)) {
            edges.push((t, &before));
        }
        for (t, state) in edges {
            let changed = match &mut states[t] {
                Some(s) => s.meet(state),
                none => {
                    *none = Some(state.clone());
                    true
                }
            };
            if changed && !queued[t] {
                queued[t] = true;
                work.push(t);
            }
        }
    }
    for (k, ins) in instrs.iter().enumerate() {
        if ins.opcode == op::LOAD_FAST {
            // Unreached code (no state) keeps its test.
            result[k] = states[k].as_ref().is_some_and(|s| s.get(ins.oparg as usize));
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use peregrine_runtime::bytecode;

    fn analyse(src: &[(u8, u32)], n_args: usize, n_locals: usize) -> Vec<bool> {
        let bytes: Vec<u8> = src.iter().flat_map(|&(o, a)| {
            let mut v = vec![o, a as u8];
            // Inline caches after the instructions that have them.
            v.extend(std::iter::repeat_n(0u8, 2 * peregrine_runtime::opcodes::cache_entries(o)));
            v
        }).collect();
        let instrs = bytecode::decode(&bytes).expect("decodes");
        let handlers = vec![None; instrs.len()];
        bound_loads(&instrs, &handlers, n_args, n_locals, false)
    }

    #[test]
    fn parameters_and_stored_locals_are_bound_deleted_ones_not() {
        let r = analyse(
            &[
                (op::RESUME, 0),
                (op::LOAD_FAST, 0), // a parameter: bound
                (op::LOAD_FAST, 1), // not yet stored: test kept
                (op::STORE_FAST, 1),
                (op::LOAD_FAST, 1), // stored: bound
                (op::DELETE_FAST, 0),
                (op::LOAD_FAST, 0), // deleted: test kept
                (op::RETURN_VALUE, 0),
            ],
            1,
            2,
        );
        assert_eq!(r, vec![false, true, false, false, true, false, false, false]);
    }

    #[test]
    fn a_local_stored_on_one_branch_only_is_not_bound_after_the_join() {
        // if a: b = a ; return b
        let r = analyse(
            &[
                (op::RESUME, 0),
                (op::LOAD_FAST, 0),
                (op::POP_JUMP_FORWARD_IF_FALSE, 2),
                (op::LOAD_FAST, 0),
                (op::STORE_FAST, 1),
                (op::LOAD_FAST, 1), // joined: unbound when `a` is false
                (op::RETURN_VALUE, 0),
            ],
            1,
            2,
        );
        assert_eq!(r, vec![false, true, false, true, false, false, false]);
    }
}
