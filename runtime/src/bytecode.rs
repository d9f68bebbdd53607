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

#[cfg(test)]
mod tests {
    use super::*;

    fn units(pairs: &[(u8, u8)]) -> Vec<u8> {
        pairs.iter().flat_map(|&(o, a)| [o, a]).collect()
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
