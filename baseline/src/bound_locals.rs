//! Which LOAD_FASTs read a local that is bound on every path to them, so that their template
//! needs neither the unbound test nor the UnboundLocalError stub (about 80 bytes of cold code
//! and 9 of hot code per LOAD_FAST), and which STORE_FASTs replace a value that is there (its
//! release needs no NULL test: 5 bytes).
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

/// For each of `instrs`, whether it is a LOAD_FAST or STORE_FAST of a local bound on every path
/// to it (a STORE_FAST's old value is then not NULL: its release needs no test).
/// `n_args`: the parameters (positional, keyword-only, `*args`, `**kwargs`), the first slots.
///
/// The sets are bit rows of one flat table, updated in place by forward passes over the code
/// until none changes (loops and handlers above their code take a second pass; compile time
/// is a budget here, about 1 us per instruction for everything).
pub fn bound_loads(instrs: &[Instr], handlers: &[Option<Handler>], n_args: usize, n_locals: usize, resumable: bool) -> Vec<bool> {
    let n = instrs.len();
    let mut result = vec![false; n];
    if resumable || n == 0 || instrs.iter().any(|i| i.opcode == op::IMPORT_STAR) {
        return result;
    }
    let w = n_locals.div_ceil(64).max(1);
    let n_units = instrs.last().map_or(0, |i| i.next);
    let mut at_unit = vec![u32::MAX; n_units + 1];
    for (k, ins) in instrs.iter().enumerate() {
        at_unit[ins.start] = k as u32;
    }
    let index_of = |unit: usize| at_unit.get(unit).copied().filter(|&k| k != u32::MAX).map(|k| k as usize);
    // Per instruction, the locals bound before it (valid once `reached`).
    let mut table = vec![0u64; n * w];
    let mut reached = vec![false; n];
    for i in 0..n_args.min(n_locals) {
        table[i / 64] |= 1 << (i % 64);
    }
    reached[0] = true;
    let mut row = vec![0u64; w];
    // `table[t]` = `table[t]` ∩ `row` (or `row`, first reached); whether it changed.
    let meet = |table: &mut [u64], reached: &mut [bool], t: usize, row: &[u64]| -> bool {
        let dst = &mut table[t * w..(t + 1) * w];
        if !reached[t] {
            reached[t] = true;
            dst.copy_from_slice(row);
            return true;
        }
        let mut changed = false;
        for (a, b) in dst.iter_mut().zip(row) {
            let m = *a & b;
            changed |= m != *a;
            *a = m;
        }
        changed
    };
    loop {
        let mut changed = false;
        for (k, ins) in instrs.iter().enumerate() {
            if !reached[k] {
                continue;
            }
            row.copy_from_slice(&table[k * w..(k + 1) * w]);
            // An exception leaves with the locals as they were before the instruction.
            if let Some(t) = handlers[k].and_then(|h| index_of(h.target)) {
                changed |= meet(&mut table, &mut reached, t, &row);
            }
            let slot = ins.oparg as usize;
            match ins.opcode {
                op::STORE_FAST if slot < n_locals => row[slot / 64] |= 1 << (slot % 64),
                op::DELETE_FAST if slot < n_locals => row[slot / 64] &= !(1 << (slot % 64)),
                _ => {}
            }
            if ins.info().flow != Flow::Ends && k + 1 < n {
                changed |= meet(&mut table, &mut reached, k + 1, &row);
            }
            if let Some(t) = ins.jump_target().and_then(index_of) {
                changed |= meet(&mut table, &mut reached, t, &row);
            }
        }
        if !changed {
            break;
        }
    }
    for (k, ins) in instrs.iter().enumerate() {
        let slot = ins.oparg as usize;
        // Unreached code keeps its test.
        let reads = matches!(ins.opcode, op::LOAD_FAST | op::STORE_FAST);
        result[k] = reads && reached[k] && slot < n_locals && table[k * w + slot / 64] >> (slot % 64) & 1 == 1;
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
        // The STORE_FAST replaces nothing (local 1 unbound before it): its release tests.
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

    #[test]
    fn a_store_over_a_bound_local_replaces_a_value() {
        let r = analyse(&[(op::RESUME, 0), (op::LOAD_CONST, 0), (op::STORE_FAST, 0), (op::LOAD_CONST, 0), (op::STORE_FAST, 1), (op::RETURN_VALUE, 0)], 1, 2);
        assert_eq!(r, vec![false, false, true, false, false, false]);
    }
}
