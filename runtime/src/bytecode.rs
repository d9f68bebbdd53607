//! CPython 3.11 bytecode: a validating decoder, the exception table and the stack verifier.
//!
//! Tiers compile from the canonical bytecode (`co.co_code`, i.e. `PyCode_GetCode`), never from
//! `co_code_adaptive`, which the specializing interpreter rewrites while it runs. What each
//! opcode is (caches, jumps, stack use) comes from the one table in `crate::opcodes`.

use crate::compile_error::CompileError;
use crate::opcodes::{info, Flow, JumpKind, OpInfo};
pub use crate::opcodes::{cache_entries, name, op, stack_use, StackUse, OPCODES};

/// Relative jumps forward: target = index after the instruction (and its caches) + oparg.
pub fn jumps_forward(opcode: u8) -> bool {
    info(opcode).is_some_and(|i| i.jump == JumpKind::Forward)
}

/// Relative jumps backward: target = index after the instruction - oparg.
pub fn jumps_backward(opcode: u8) -> bool {
    info(opcode).is_some_and(|i| i.jump == JumpKind::Backward)
}

/// Whether the code has a loop (a backward jump other than the `yield from` loop's
/// `JUMP_BACKWARD_NO_INTERRUPT`). Scans without validating; unknown bytes count as no loop.
pub fn has_loop(code: &[u8]) -> bool {
    let mut i = 0;
    while i + 1 < code.len() {
        let opcode = code[i];
        if jumps_backward(opcode) && opcode != op::JUMP_BACKWARD_NO_INTERRUPT {
            return true;
        }
        i += 2 * (1 + cache_entries(opcode));
    }
    false
}

/// One decoded instruction. Indices are in code units (2 bytes) from the start of the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instr {
    /// Index of the first `EXTENDED_ARG` prefix, or of the instruction itself if it has none.
    pub start: usize,
    /// Index of the instruction's own code unit (what `prev_instr` points at while it runs).
    pub index: usize,
    pub opcode: u8,
    /// The argument with every `EXTENDED_ARG` prefix folded in.
    pub oparg: u32,
    /// Index of the next instruction (after the inline caches).
    pub next: usize,
}

impl Instr {
    /// The index of the last code unit of this instruction (its last cache entry, if any): where
    /// `prev_instr` must point for the interpreter to resume at the next instruction.
    pub fn last_unit(&self) -> usize {
        self.next - 1
    }

    /// The jump target of a relative jump, `None` for other instructions.
    pub fn jump_target(&self) -> Option<usize> {
        if jumps_forward(self.opcode) {
            Some(self.next + self.oparg as usize)
        } else if jumps_backward(self.opcode) {
            self.next.checked_sub(self.oparg as usize)
        } else {
            None
        }
    }

    pub fn name(&self) -> &'static str {
        name(self.opcode).unwrap_or("<unknown>")
    }

    /// The opcode's row of the table; `decode` yields base opcodes only.
    pub fn info(&self) -> &'static OpInfo {
        info(self.opcode).expect("decoded instructions are base opcodes")
    }
}

/// Decodes canonical 3.11 bytecode (little-endian code units: opcode, then oparg) and checks that
/// it is something the CPython compiler produces: known opcodes, complete caches, jump targets on
/// instruction boundaries. Anything else is [`CompileError::Malformed`].
pub fn decode(code: &[u8]) -> Result<Vec<Instr>, CompileError> {
    let malformed = |what: String| Err(CompileError::Malformed(what));
    if code.len() % 2 != 0 {
        return malformed(format!("odd code length {}", code.len()));
    }
    let units = code.len() / 2;
    let mut instrs = Vec::new();
    let mut i = 0;
    while i < units {
        let start = i;
        let mut oparg: u32 = 0;
        let mut prefixes = 0;
        loop {
            let (opcode, arg) = (code[2 * i], code[2 * i + 1]);
            if opcode == op::EXTENDED_ARG {
                prefixes += 1;
                if prefixes > 3 {
                    return malformed(format!("more than three EXTENDED_ARG at offset {}", 2 * start));
                }
                oparg = (oparg << 8) | arg as u32;
                i += 1;
                if i >= units {
                    return malformed("EXTENDED_ARG at the end of the code".to_string());
                }
                continue;
            }
            if name(opcode).is_none() {
                return malformed(format!("unknown opcode {} at offset {}", opcode, 2 * i));
            }
            if opcode == op::CACHE {
                return malformed(format!("CACHE where an instruction should be, offset {}", 2 * i));
            }
            oparg = (oparg << 8) | arg as u32;
            let next = i + 1 + cache_entries(opcode);
            if next > units {
                return malformed(format!("{} at offset {} lacks its caches", name(opcode).unwrap(), 2 * i));
            }
            instrs.push(Instr { start, index: i, opcode, oparg, next });
            i = next;
            break;
        }
    }
    for ins in &instrs {
        if jumps_backward(ins.opcode) && ins.jump_target().is_none() {
            return malformed(format!("{} at offset {} jumps before the code", ins.name(), 2 * ins.index));
        }
        if let Some(target) = ins.jump_target() {
            if instrs.binary_search_by_key(&target, |t| t.start).is_err() {
                return malformed(format!(
                    "{} at offset {} jumps to offset {}, not an instruction",
                    ins.name(),
                    2 * ins.index,
                    2 * target
                ));
            }
        }
    }
    if instrs.is_empty() {
        return malformed("empty code".to_string());
    }
    Ok(instrs)
}

/// An exception-table entry's handler (Objects/exception_handling_notes.txt): where to jump,
/// the value-stack depth to unwind to, and whether to push the raising instruction's offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handler {
    /// Code unit of the handler's first instruction.
    pub target: usize,
    pub depth: usize,
    pub push_lasti: bool,
}

/// One varint of the exception table: six bits per byte, most significant first, bit 6 = more.
fn table_varint(table: &[u8], pos: &mut usize) -> Option<usize> {
    let mut b = *table.get(*pos)?;
    *pos += 1;
    let mut v = (b & 63) as usize;
    while b & 64 != 0 {
        b = *table.get(*pos)?;
        *pos += 1;
        v = (v << 6) | (b & 63) as usize;
    }
    Some(v)
}

/// The entries of exception table `table`, as `(first unit, end unit, handler)`, if it is well
/// formed: complete, sorted and not overlapping (what compile.c writes). ceval searches such a
/// table by bisection and then linearly, which for any other table can find a different entry
/// than a plain scan: compiled code resolves handlers at compile time, so it refuses those.
pub fn exception_entries(table: &[u8]) -> Result<Vec<(usize, usize, Handler)>, CompileError> {
    let malformed = |what: &str| Err(CompileError::Malformed(format!("exception table: {what}")));
    let mut entries: Vec<(usize, usize, Handler)> = Vec::new();
    let mut pos = 0;
    while pos < table.len() {
        let entry = (|| {
            let start = table_varint(table, &mut pos)?;
            let size = table_varint(table, &mut pos)?;
            let target = table_varint(table, &mut pos)?;
            let depth_lasti = table_varint(table, &mut pos)?;
            Some((start, start.checked_add(size)?, Handler { target, depth: depth_lasti >> 1, push_lasti: depth_lasti & 1 != 0 }))
        })();
        let Some(entry) = entry else { return malformed("truncated") };
        if entries.last().is_some_and(|last| last.1 > entry.0) {
            return malformed("entries out of order or overlapping");
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// The handler of each of `instrs` (by its own code unit, where ceval searches the table),
/// given `entries` from [`exception_entries`].
pub fn handlers_of(entries: &[(usize, usize, Handler)], instrs: &[Instr]) -> Vec<Option<Handler>> {
    let mut next = 0;
    instrs
        .iter()
        .map(|ins| {
            while next < entries.len() && entries[next].1 <= ins.index {
                next += 1;
            }
            entries.get(next).filter(|(start, _, _)| *start <= ins.index).map(|e| e.2)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(pairs: &[(u8, u8)]) -> Vec<u8> {
        pairs.iter().flat_map(|&(o, a)| [o, a]).collect()
    }

    #[test]
    fn finds_exception_handlers_as_ceval() {
        // 2..22 -> 44 depth 1 lasti; 30..30+70 -> 100 depth 0 (70 and 100 take two bytes).
        let table = [0x80 | 2, 20, 44, 3, 0x80 | 30, 64 | 1, 6, 64 | 1, 36, 0];
        let h1 = Some(Handler { target: 44, depth: 1, push_lasti: true });
        let h2 = Some(Handler { target: 100, depth: 0, push_lasti: false });
        let at = |index: usize| Instr { start: index, index, opcode: op::NOP, oparg: 0, next: index + 1 };
        let instrs: Vec<Instr> = [1, 2, 21, 22, 30, 99, 100].into_iter().map(at).collect();
        let entries = exception_entries(&table).unwrap();
        assert_eq!(handlers_of(&entries, &instrs), vec![None, h1, h1, None, h2, h2, None]);
        assert!(exception_entries(&table[..3]).is_err()); // truncated
        // Out of order, and overlapping: refused (ceval's bisection could find another entry).
        assert!(exception_entries(&[0x80 | 30, 1, 6, 0, 0x80 | 2, 1, 6, 0]).is_err());
        assert!(exception_entries(&[0x80 | 2, 10, 6, 0, 0x80 | 5, 1, 6, 0]).is_err());
    }

    #[test]
    fn decodes_caches_and_extended_args() {
        // RESUME 0; EXTENDED_ARG 1; LOAD_CONST 2 (=258); BINARY_OP 0 + 1 cache; RETURN_VALUE
        let code = units(&[(op::RESUME, 0), (op::EXTENDED_ARG, 1), (op::LOAD_CONST, 2),
            (op::BINARY_OP, 0), (op::CACHE, 0), (op::RETURN_VALUE, 0)]);
        let instrs = decode(&code).unwrap();
        assert_eq!(instrs.len(), 4);
        assert_eq!(instrs[1], Instr { start: 1, index: 2, opcode: op::LOAD_CONST, oparg: 258, next: 3 });
        assert_eq!(instrs[2].next, 5);
        assert_eq!(instrs[2].last_unit(), 4);
        assert_eq!(instrs[3].index, 5);
    }

    #[test]
    fn finds_loops() {
        let looping = units(&[(op::RESUME, 0), (op::NOP, 0), (op::JUMP_BACKWARD, 1)]);
        assert!(has_loop(&looping));
        let straight = units(&[(op::RESUME, 0), (op::BINARY_OP, 0), (op::CACHE, 0), (op::RETURN_VALUE, 0)]);
        assert!(!has_loop(&straight));
        // A cache entry whose bytes look like JUMP_BACKWARD is not an instruction.
        let cache_lookalike = units(&[(op::BINARY_OP, 0), (op::JUMP_BACKWARD, 0), (op::RETURN_VALUE, 0)]);
        assert!(!has_loop(&cache_lookalike));
        let yield_from = units(&[(op::SEND, 1), (op::JUMP_BACKWARD_NO_INTERRUPT, 2)]);
        assert!(!has_loop(&yield_from));
    }

    #[test]
    fn jump_targets() {
        // 0 RESUME; 1 JUMP_FORWARD 1 -> 3; 2 NOP; 3 JUMP_BACKWARD 2 -> 2
        let code = units(&[(op::RESUME, 0), (op::JUMP_FORWARD, 1), (op::NOP, 0), (op::JUMP_BACKWARD, 2)]);
        let instrs = decode(&code).unwrap();
        assert_eq!(instrs[1].jump_target(), Some(3));
        assert_eq!(instrs[3].jump_target(), Some(2));
    }

    #[test]
    fn rejects_malformed_code() {
        let cases: Vec<Vec<u8>> = vec![
            vec![op::RESUME],                                          // odd length
            units(&[(op::RESUME, 0), (255, 0)]),                       // unknown opcode
            units(&[(op::RESUME, 0), (op::BINARY_OP, 0)]),             // missing cache
            units(&[(op::CACHE, 0)]),                                  // cache as instruction
            units(&[(op::EXTENDED_ARG, 0)]),                           // dangling prefix
            units(&[(op::RESUME, 0), (op::JUMP_FORWARD, 9)]),          // target past the end
            units(&[(op::RESUME, 0), (op::JUMP_BACKWARD, 5)]),         // target before the start
            units(&[(op::BINARY_OP, 0), (op::CACHE, 0), (op::JUMP_BACKWARD, 2)]), // into a cache
            vec![],
        ];
        for code in cases {
            assert!(matches!(decode(&code), Err(CompileError::Malformed(_))), "{code:?}");
        }
    }
}

/// Whether control never falls through to the next instruction.
fn ends_flow(opcode: u8) -> bool {
    info(opcode).is_some_and(|i| i.flow == Flow::Ends)
}

/// Checks the value stack along every path from the first instruction, exceptional ones
/// included (`handlers`, each instruction's exception-table entry, from [`handlers_of`]): no
/// instruction reads slots that are not there, the depth never exceeds `max_depth`
/// (`co_stacksize`, what the frame has room for), and paths that meet agree on the depth. A
/// handler's depth is at most the depth before each instruction it covers. (An instruction
/// that raises may have popped its inputs first; compile.c never puts a handler's depth above
/// what is left then, and ceval asserts it; the unwinder fills a shortfall in other code, see
/// `jit::exceptions::pg_unwind`.) Returns the depth before each reachable instruction.
pub fn verify_stack(
    instrs: &[Instr],
    handlers: &[Option<Handler>],
    start_depth: i32,
    max_depth: i32,
) -> Result<Vec<Option<i32>>, CompileError> {
    let position = |start: usize| instrs.binary_search_by_key(&start, |i| i.start).ok();
    let mut depth: Vec<Option<i32>> = vec![None; instrs.len()];
    let mut work = vec![(0usize, start_depth)];
    while let Some((k, d)) = work.pop() {
        match depth[k] {
            Some(seen) if seen == d => continue,
            Some(seen) => {
                return Err(CompileError::Malformed(format!(
                    "stack depth {} and {} meet at offset {}",
                    seen,
                    d,
                    2 * instrs[k].index
                )))
            }
            None => depth[k] = Some(d),
        }
        let ins = &instrs[k];
        let bad = |what: String| Err(CompileError::Malformed(format!("{} at offset {}: {}", ins.name(), 2 * ins.index, what)));
        let Some(u) = stack_use(ins.opcode, ins.oparg) else {
            return bad("no known stack effect".to_string());
        };
        if u.inputs < 0 || d < u.inputs {
            return bad(format!("needs {} stack values, has {}", u.inputs, d));
        }
        let mut next = Vec::with_capacity(2);
        if !ends_flow(ins.opcode) {
            next.push((k + 1, d + u.effect));
        }
        if let (Some(target), Some(je)) = (ins.jump_target(), u.jump_effect) {
            let t = position(target).expect("decode checked jump targets");
            next.push((t, d + je));
        }
        if let Some(h) = handlers[k] {
            let Some(t) = position(h.target) else {
                return bad(format!("exception handler at {} is not an instruction", 2 * h.target));
            };
            if h.depth as i64 > d as i64 {
                return bad(format!("exception handler depth {} above the stack's {}", h.depth, d));
            }
            next.push((t, h.depth as i32 + h.push_lasti as i32 + 1));
        }
        for (to, nd) in next {
            if nd < 0 || nd > max_depth {
                return bad(format!("stack depth {nd} outside 0..={max_depth}"));
            }
            if to >= instrs.len() {
                return bad("falls off the end of the code".to_string());
            }
            work.push((to, nd));
        }
    }
    Ok(depth)
}

#[cfg(test)]
mod stack_tests {
    use super::*;

    fn code(pairs: &[(u8, u8)]) -> Vec<Instr> {
        let bytes: Vec<u8> = pairs.iter().flat_map(|&(o, a)| [o, a]).collect();
        decode(&bytes).unwrap()
    }

    #[test]
    fn accepts_balanced_code_and_reports_depths() {
        // RESUME; LOAD_CONST; LOAD_CONST; BINARY_OP (+cache); RETURN_VALUE
        let instrs = code(&[(op::RESUME, 0), (op::LOAD_CONST, 0), (op::LOAD_CONST, 0), (op::BINARY_OP, 0),
            (op::CACHE, 0), (op::RETURN_VALUE, 0)]);
        let d = verify_stack(&instrs, &[None; 5], 0, 2).unwrap();
        assert_eq!(d, vec![Some(0), Some(0), Some(1), Some(2), Some(1)]);
    }

    #[test]
    fn rejects_underflow_overflow_falling_off_and_mismatch() {
        let underflow = code(&[(op::RESUME, 0), (op::POP_TOP, 0), (op::RETURN_VALUE, 0)]);
        assert!(verify_stack(&underflow, &vec![None; underflow.len()], 0, 4).is_err());
        let overflow = code(&[(op::LOAD_CONST, 0), (op::LOAD_CONST, 0), (op::RETURN_VALUE, 0)]);
        assert!(verify_stack(&overflow, &vec![None; overflow.len()], 0, 1).is_err());
        let off_end = code(&[(op::RESUME, 0), (op::NOP, 0)]);
        assert!(verify_stack(&off_end, &vec![None; off_end.len()], 0, 1).is_err());
        // 0 LOAD_CONST; 1 POP_JUMP_FORWARD_IF_TRUE -> 3; 2 LOAD_CONST; 3 RETURN_VALUE: depth 0 vs 1 at 3
        let mismatch = code(&[(op::LOAD_CONST, 0), (op::POP_JUMP_FORWARD_IF_TRUE, 1), (op::LOAD_CONST, 0),
            (op::RETURN_VALUE, 0)]);
        assert!(verify_stack(&mismatch, &vec![None; mismatch.len()], 0, 4).is_err());
    }

    #[test]
    fn follows_exception_handlers_at_their_depth() {
        // 0 NOP (covered: handler at 3, depth 0, lasti); 1 LOAD_CONST; 2 RETURN_VALUE;
        // 3 POP_TOP; 4 POP_TOP; 5 LOAD_CONST; 6 RETURN_VALUE. Only the handler reaches 3..6.
        let instrs = code(&[(op::NOP, 0), (op::LOAD_CONST, 0), (op::RETURN_VALUE, 0), (op::POP_TOP, 0),
            (op::POP_TOP, 0), (op::LOAD_CONST, 0), (op::RETURN_VALUE, 0)]);
        let h = Some(Handler { target: 3, depth: 0, push_lasti: true });
        let mut handlers = vec![None; instrs.len()];
        handlers[0] = h;
        let d = verify_stack(&instrs, &handlers, 0, 2).unwrap();
        assert_eq!(d, vec![Some(0), Some(0), Some(1), Some(2), Some(1), Some(0), Some(1)]);
        // The handler's values must fit the frame, its depth the covered instruction's stack,
        // and its target be an instruction.
        assert!(verify_stack(&instrs, &handlers, 0, 1).is_err());
        handlers[0] = Some(Handler { target: 3, depth: 1, push_lasti: true });
        assert!(verify_stack(&instrs, &handlers, 0, 4).is_err());
        handlers[0] = Some(Handler { target: 30, depth: 0, push_lasti: true });
        assert!(verify_stack(&instrs, &handlers, 0, 4).is_err());
    }
}
