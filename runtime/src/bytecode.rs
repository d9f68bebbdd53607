//! CPython 3.11 bytecode: the opcode table and a validating decoder.
//!
//! Tiers compile from the canonical bytecode (`co.co_code`, i.e. `PyCode_GetCode`), never from
//! `co_code_adaptive`, which the specializing interpreter rewrites while it runs. The table below
//! is checked against Python's own `opcode` module by `runtime/tests/opcodes.rs`.

use crate::compile_error::CompileError;

macro_rules! opcodes {
    ($( $name:ident = $value:literal, $caches:literal; )*) => {
        /// Opcode numbers of CPython 3.11 (`opcode.opmap`).
        #[allow(non_upper_case_globals)]
        pub mod op {
            $( pub const $name: u8 = $value; )*
        }
        /// (name, value, inline cache entries) of every base opcode.
        pub const OPCODES: &[(&str, u8, u8)] = &[ $( (stringify!($name), $value, $caches), )* ];
    };
}

opcodes! {
    CACHE = 0, 0;
    POP_TOP = 1, 0;
    PUSH_NULL = 2, 0;
    NOP = 9, 0;
    UNARY_POSITIVE = 10, 0;
    UNARY_NEGATIVE = 11, 0;
    UNARY_NOT = 12, 0;
    UNARY_INVERT = 15, 0;
    BINARY_SUBSCR = 25, 4;
    GET_LEN = 30, 0;
    MATCH_MAPPING = 31, 0;
    MATCH_SEQUENCE = 32, 0;
    MATCH_KEYS = 33, 0;
    PUSH_EXC_INFO = 35, 0;
    CHECK_EXC_MATCH = 36, 0;
    CHECK_EG_MATCH = 37, 0;
    WITH_EXCEPT_START = 49, 0;
    GET_AITER = 50, 0;
    GET_ANEXT = 51, 0;
    BEFORE_ASYNC_WITH = 52, 0;
    BEFORE_WITH = 53, 0;
    END_ASYNC_FOR = 54, 0;
    STORE_SUBSCR = 60, 1;
    DELETE_SUBSCR = 61, 0;
    GET_ITER = 68, 0;
    GET_YIELD_FROM_ITER = 69, 0;
    PRINT_EXPR = 70, 0;
    LOAD_BUILD_CLASS = 71, 0;
    LOAD_ASSERTION_ERROR = 74, 0;
    RETURN_GENERATOR = 75, 0;
    LIST_TO_TUPLE = 82, 0;
    RETURN_VALUE = 83, 0;
    IMPORT_STAR = 84, 0;
    SETUP_ANNOTATIONS = 85, 0;
    YIELD_VALUE = 86, 0;
    ASYNC_GEN_WRAP = 87, 0;
    PREP_RERAISE_STAR = 88, 0;
    POP_EXCEPT = 89, 0;
    STORE_NAME = 90, 0;
    DELETE_NAME = 91, 0;
    UNPACK_SEQUENCE = 92, 1;
    FOR_ITER = 93, 0;
    UNPACK_EX = 94, 0;
    STORE_ATTR = 95, 4;
    DELETE_ATTR = 96, 0;
    STORE_GLOBAL = 97, 0;
    DELETE_GLOBAL = 98, 0;
    SWAP = 99, 0;
    LOAD_CONST = 100, 0;
    LOAD_NAME = 101, 0;
    BUILD_TUPLE = 102, 0;
    BUILD_LIST = 103, 0;
    BUILD_SET = 104, 0;
    BUILD_MAP = 105, 0;
    LOAD_ATTR = 106, 4;
    COMPARE_OP = 107, 2;
    IMPORT_NAME = 108, 0;
    IMPORT_FROM = 109, 0;
    JUMP_FORWARD = 110, 0;
    JUMP_IF_FALSE_OR_POP = 111, 0;
    JUMP_IF_TRUE_OR_POP = 112, 0;
    POP_JUMP_FORWARD_IF_FALSE = 114, 0;
    POP_JUMP_FORWARD_IF_TRUE = 115, 0;
    LOAD_GLOBAL = 116, 5;
    IS_OP = 117, 0;
    CONTAINS_OP = 118, 0;
    RERAISE = 119, 0;
    COPY = 120, 0;
    BINARY_OP = 122, 1;
    SEND = 123, 0;
    LOAD_FAST = 124, 0;
    STORE_FAST = 125, 0;
    DELETE_FAST = 126, 0;
    POP_JUMP_FORWARD_IF_NOT_NONE = 128, 0;
    POP_JUMP_FORWARD_IF_NONE = 129, 0;
    RAISE_VARARGS = 130, 0;
    GET_AWAITABLE = 131, 0;
    MAKE_FUNCTION = 132, 0;
    BUILD_SLICE = 133, 0;
    JUMP_BACKWARD_NO_INTERRUPT = 134, 0;
    MAKE_CELL = 135, 0;
    LOAD_CLOSURE = 136, 0;
    LOAD_DEREF = 137, 0;
    STORE_DEREF = 138, 0;
    DELETE_DEREF = 139, 0;
    JUMP_BACKWARD = 140, 0;
    CALL_FUNCTION_EX = 142, 0;
    EXTENDED_ARG = 144, 0;
    LIST_APPEND = 145, 0;
    SET_ADD = 146, 0;
    MAP_ADD = 147, 0;
    LOAD_CLASSDEREF = 148, 0;
    COPY_FREE_VARS = 149, 0;
    RESUME = 151, 0;
    MATCH_CLASS = 152, 0;
    FORMAT_VALUE = 155, 0;
    BUILD_CONST_KEY_MAP = 156, 0;
    BUILD_STRING = 157, 0;
    LOAD_METHOD = 160, 10;
    LIST_EXTEND = 162, 0;
    SET_UPDATE = 163, 0;
    DICT_MERGE = 164, 0;
    DICT_UPDATE = 165, 0;
    PRECALL = 166, 1;
    CALL = 171, 4;
    KW_NAMES = 172, 0;
    POP_JUMP_BACKWARD_IF_NOT_NONE = 173, 0;
    POP_JUMP_BACKWARD_IF_NONE = 174, 0;
    POP_JUMP_BACKWARD_IF_FALSE = 175, 0;
    POP_JUMP_BACKWARD_IF_TRUE = 176, 0;
}

/// The name of a base opcode, `None` for numbers that are not one (specialized forms included).
pub fn name(opcode: u8) -> Option<&'static str> {
    OPCODES.iter().find(|(_, v, _)| *v == opcode).map(|(n, _, _)| *n)
}

/// Inline cache entries (code units) after an instruction.
pub fn cache_entries(opcode: u8) -> usize {
    OPCODES.iter().find(|(_, v, _)| *v == opcode).map_or(0, |(_, _, c)| *c as usize)
}

/// Relative jumps forward: target = index after the instruction (and its caches) + oparg.
pub fn jumps_forward(opcode: u8) -> bool {
    use op::*;
    matches!(
        opcode,
        JUMP_FORWARD
            | JUMP_IF_FALSE_OR_POP
            | JUMP_IF_TRUE_OR_POP
            | POP_JUMP_FORWARD_IF_FALSE
            | POP_JUMP_FORWARD_IF_TRUE
            | POP_JUMP_FORWARD_IF_NONE
            | POP_JUMP_FORWARD_IF_NOT_NONE
            | FOR_ITER
            | SEND
    )
}

/// Relative jumps backward: target = index after the instruction - oparg.
pub fn jumps_backward(opcode: u8) -> bool {
    use op::*;
    matches!(
        opcode,
        JUMP_BACKWARD
            | JUMP_BACKWARD_NO_INTERRUPT
            | POP_JUMP_BACKWARD_IF_FALSE
            | POP_JUMP_BACKWARD_IF_TRUE
            | POP_JUMP_BACKWARD_IF_NONE
            | POP_JUMP_BACKWARD_IF_NOT_NONE
    )
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// The handler that covers code unit `index` in `table` (`co_exceptiontable`), as ceval's
/// `get_exception_handler` finds it; `None` if no entry covers it (or the table is truncated).
pub fn exception_handler(table: &[u8], index: usize) -> Option<Handler> {
    let mut pos = 0;
    while pos < table.len() {
        let start = table_varint(table, &mut pos)?;
        let size = table_varint(table, &mut pos)?;
        let target = table_varint(table, &mut pos)?;
        let depth_lasti = table_varint(table, &mut pos)?;
        if start > index {
            return None;
        }
        if index < start + size {
            return Some(Handler { target, depth: depth_lasti >> 1, push_lasti: depth_lasti & 1 != 0 });
        }
    }
    None
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
        assert_eq!(exception_handler(&table, 1), None);
        assert_eq!(exception_handler(&table, 2), h1);
        assert_eq!(exception_handler(&table, 21), h1);
        assert_eq!(exception_handler(&table, 22), None);
        assert_eq!(exception_handler(&table, 30), h2);
        assert_eq!(exception_handler(&table, 99), h2);
        assert_eq!(exception_handler(&table, 100), None);
        assert_eq!(exception_handler(&table[..3], 5), None); // truncated
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

/// How an instruction uses the value stack: the slots it reads (they must exist) and its net
/// effect, on the fall-through path and, for jumps, on the taken path (CPython's
/// `stack_effect` in Python/compile.c, plus the inputs that table leaves implicit).
/// `None` for opcodes that are not base opcodes.
pub fn stack_use(opcode: u8, oparg: u32) -> Option<StackUse> {
    use op::*;
    let n = oparg as i32;
    let bits = |mask: u32| (oparg & mask != 0) as i32;
    let (inputs, effect, jump_effect) = match opcode {
        NOP | EXTENDED_ARG | RESUME | CACHE | KW_NAMES | MAKE_CELL | COPY_FREE_VARS | DELETE_FAST
        | DELETE_DEREF | DELETE_NAME | DELETE_GLOBAL | SETUP_ANNOTATIONS | RETURN_GENERATOR => (0, 0, None),
        POP_TOP | RETURN_VALUE | PRINT_EXPR | IMPORT_STAR | STORE_NAME | STORE_GLOBAL | STORE_FAST
        | STORE_DEREF | DELETE_ATTR | POP_EXCEPT => (1, -1, None),
        SWAP => (n, 0, None),
        COPY => (n, 1, None),
        LOAD_GLOBAL => (0, 1 + bits(1), None),
        PUSH_NULL | LOAD_CONST | LOAD_NAME | LOAD_FAST | LOAD_CLOSURE | LOAD_DEREF | LOAD_CLASSDEREF
        | LOAD_BUILD_CLASS | LOAD_ASSERTION_ERROR => (0, 1, None),
        UNARY_POSITIVE | UNARY_NEGATIVE | UNARY_NOT | UNARY_INVERT | GET_ITER | LOAD_ATTR
        | GET_AWAITABLE | GET_AITER | GET_YIELD_FROM_ITER | ASYNC_GEN_WRAP | YIELD_VALUE | LIST_TO_TUPLE => {
            (1, 0, None)
        }
        SET_ADD | LIST_APPEND => (n + 1, -1, None),
        MAP_ADD => (n + 2, -2, None),
        LIST_EXTEND | SET_UPDATE | DICT_MERGE | DICT_UPDATE => (n + 1, -1, None),
        BINARY_SUBSCR | BINARY_OP | COMPARE_OP | IS_OP | CONTAINS_OP => (2, -1, None),
        STORE_SUBSCR => (3, -3, None),
        DELETE_SUBSCR | STORE_ATTR => (2, -2, None),
        CHECK_EXC_MATCH | CHECK_EG_MATCH => (2, 0, None),
        IMPORT_NAME => (2, -1, None),
        IMPORT_FROM | GET_LEN | MATCH_MAPPING | MATCH_SEQUENCE | LOAD_METHOD | GET_ANEXT => (1, 1, None),
        MATCH_KEYS => (2, 1, None),
        MATCH_CLASS => (3, -2, None),
        BEFORE_WITH | BEFORE_ASYNC_WITH => (1, 1, None),
        UNPACK_SEQUENCE => (1, n - 1, None),
        UNPACK_EX => (1, (n & 0xff) + (n >> 8), None),
        BUILD_TUPLE | BUILD_LIST | BUILD_SET | BUILD_STRING => (n, 1 - n, None),
        BUILD_MAP => (2 * n, 1 - 2 * n, None),
        BUILD_CONST_KEY_MAP => (n + 1, -n, None),
        BUILD_SLICE => if n == 3 { (3, -2, None) } else { (2, -1, None) },
        FORMAT_VALUE => (1 + bits(4), -bits(4), None),
        MAKE_FUNCTION => {
            let extra = bits(1) + bits(2) + bits(4) + bits(8);
            (1 + extra, -extra, None)
        }
        // compile.c books the arguments on PRECALL (-n) and the callable pair on CALL (-1);
        // PRECALL n is always directly followed by CALL n (the baseline checks it), so the
        // real requirement, n + 2 values, is checked on PRECALL.
        PRECALL => (n + 2, -n, None),
        CALL => (2, -1, None),
        CALL_FUNCTION_EX => (3 + bits(1), -2 - bits(1), None),
        RAISE_VARARGS => (n, -n, None),
        RERAISE => (1 + n, -1, None),
        PUSH_EXC_INFO => (1, 1, None),
        WITH_EXCEPT_START => (4, 1, None),
        PREP_RERAISE_STAR => (2, -1, None),
        END_ASYNC_FOR => (2, -2, None),
        JUMP_FORWARD | JUMP_BACKWARD | JUMP_BACKWARD_NO_INTERRUPT => (0, 0, Some(0)),
        JUMP_IF_TRUE_OR_POP | JUMP_IF_FALSE_OR_POP => (1, -1, Some(0)),
        POP_JUMP_FORWARD_IF_FALSE | POP_JUMP_BACKWARD_IF_FALSE | POP_JUMP_FORWARD_IF_TRUE
        | POP_JUMP_BACKWARD_IF_TRUE | POP_JUMP_FORWARD_IF_NONE | POP_JUMP_BACKWARD_IF_NONE
        | POP_JUMP_FORWARD_IF_NOT_NONE | POP_JUMP_BACKWARD_IF_NOT_NONE => (1, -1, Some(-1)),
        FOR_ITER => (1, 1, Some(-1)),
        SEND => (2, 0, Some(-1)),
        _ => return None,
    };
    Some(StackUse { inputs, effect, jump_effect })
}

/// See [`stack_use`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackUse {
    pub inputs: i32,
    pub effect: i32,
    /// The effect when the jump is taken, for instructions that jump.
    pub jump_effect: Option<i32>,
}

/// Whether control never falls through to the next instruction.
fn ends_flow(opcode: u8) -> bool {
    use op::*;
    matches!(opcode, RETURN_VALUE | RAISE_VARARGS | RERAISE | JUMP_FORWARD | JUMP_BACKWARD | JUMP_BACKWARD_NO_INTERRUPT)
}

/// Checks the value stack along every normal (non-exceptional) path from the first instruction:
/// no instruction reads slots that are not there, the depth never exceeds `max_depth`
/// (`co_stacksize`, what the frame has room for), and paths that meet agree on the depth.
/// Exception handlers are not followed: compiled code hands exceptions to the interpreter.
/// Returns the depth before each reachable instruction.
pub fn verify_stack(instrs: &[Instr], start_depth: i32, max_depth: i32) -> Result<Vec<Option<i32>>, CompileError> {
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
        let d = verify_stack(&instrs, 0, 2).unwrap();
        assert_eq!(d, vec![Some(0), Some(0), Some(1), Some(2), Some(1)]);
    }

    #[test]
    fn rejects_underflow_overflow_falling_off_and_mismatch() {
        let underflow = code(&[(op::RESUME, 0), (op::POP_TOP, 0), (op::RETURN_VALUE, 0)]);
        assert!(verify_stack(&underflow, 0, 4).is_err());
        let overflow = code(&[(op::LOAD_CONST, 0), (op::LOAD_CONST, 0), (op::RETURN_VALUE, 0)]);
        assert!(verify_stack(&overflow, 0, 1).is_err());
        let off_end = code(&[(op::RESUME, 0), (op::NOP, 0)]);
        assert!(verify_stack(&off_end, 0, 1).is_err());
        // 0 LOAD_CONST; 1 POP_JUMP_FORWARD_IF_TRUE -> 3; 2 LOAD_CONST; 3 RETURN_VALUE: depth 0 vs 1 at 3
        let mismatch = code(&[(op::LOAD_CONST, 0), (op::POP_JUMP_FORWARD_IF_TRUE, 1), (op::LOAD_CONST, 0),
            (op::RETURN_VALUE, 0)]);
        assert!(verify_stack(&mismatch, 0, 4).is_err());
    }
}
