//! The opcode table of CPython 3.11: every fact about a base opcode that Peregrine relies on,
//! written once, one row per opcode. The decoder (inline caches, jumps), the stack verifier
//! (stack effects, where flow ends), the tiers' argument checks (operand kinds) and the tests
//! read it; nothing else restates these facts.
//!
//! `runtime/tests/opcodes.rs` checks the table against the installed interpreter: names, numbers
//! and inline caches against `opcode`, operand kinds against `opcode.has*`, stack effects against
//! `dis.stack_effect`. Which template compiles each opcode is the baseline's own table
//! (`baseline/src/templates.rs`, `template`), tested to cover every row.

/// How an instruction uses the value stack: the slots it reads (they must exist) and its net
/// effect, on the fall-through path and, for jumps, on the taken path (CPython's
/// `stack_effect` in Python/compile.c, plus the inputs that table leaves implicit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackUse {
    pub inputs: i32,
    pub effect: i32,
    /// The effect when the jump is taken, for instructions that jump.
    pub jump_effect: Option<i32>,
}

/// Where a jump goes. CPython 3.11 has relative jumps only: the offset counts code units from
/// the instruction after the jump (and its inline caches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JumpKind {
    NoJump,
    /// target = next instruction + oparg
    Forward,
    /// target = next instruction - oparg
    Backward,
}

/// Whether control can fall through to the next instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Next,
    /// Never falls through: returns, raises or jumps unconditionally.
    Ends,
}

/// What the argument of an opcode is, and so which values a tier may trust it to have. Kinds
/// that index into a code object are checked against it by the compiler (the baseline's
/// `check`); the others are bounds that hold for any code CPython's compiler produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// Below `HAVE_ARGUMENT`: ceval ignores the argument.
    Unused,
    /// A count, flags or a selector that nothing indexes with: the stack check bounds the counts.
    Raw,
    /// A relative jump offset (see [`JumpKind`]); the decoder checks the target.
    JumpOffset,
    /// An index into `co_consts`.
    Const,
    /// An index into `co_names`.
    Name,
    /// LOAD_GLOBAL: an index into `co_names` shifted left by one; the low bit pushes a NULL.
    GlobalName,
    /// A slot of `localsplus`.
    Local,
    /// A slot of `localsplus` that holds a cell or free variable (cell operations rely on it).
    CellOrFree,
    /// COPY_FREE_VARS: exactly `co_nfreevars`.
    FreeVarCount,
    /// A number in `lo..=hi` (operator numbers, stack positions the helpers' layouts rely on).
    Range(u32, u32),
    /// A number of at least this much.
    AtLeast(u32),
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct OpInfo {
    pub name: &'static str,
    pub number: u8,
    /// Inline cache entries (code units) after the instruction.
    pub caches: u8,
    /// The stack use for an argument `n` (the argument as compile.c's `int oparg`).
    pub stack: fn(i32) -> StackUse,
    pub jump: JumpKind,
    pub operand: Operand,
    pub flow: Flow,
}

/// A stack use without a jump: `inputs` slots read, `effect` net.
const fn stack(inputs: i32, effect: i32) -> StackUse {
    StackUse { inputs, effect, jump_effect: None }
}

/// A stack use of a jump: `effect` when it falls through, `taken` when it jumps.
const fn branch(inputs: i32, effect: i32, taken: i32) -> StackUse {
    StackUse { inputs, effect, jump_effect: Some(taken) }
}

/// 1 if any bit of `mask` is set in `n`, else 0 (flag arguments that add an operand).
const fn bit(n: i32, mask: i32) -> i32 {
    (n & mask != 0) as i32
}

macro_rules! opcodes {
    ($( $name:ident = $number:literal, $caches:literal, $stack:expr, $jump:ident,
        $operand:ident $(($($arg:expr),*))?, $flow:ident; )*) => {
        /// Opcode numbers of CPython 3.11 (`opcode.opmap`).
        #[allow(non_upper_case_globals)]
        pub mod op {
            $( pub const $name: u8 = $number; )*
        }
        /// Every base opcode, in number order (`CACHE` and `EXTENDED_ARG` included).
        pub const OPCODES: &[OpInfo] = &[ $( OpInfo {
            name: stringify!($name),
            number: $number,
            caches: $caches,
            stack: $stack,
            jump: JumpKind::$jump,
            operand: Operand::$operand $(($($arg),*))?,
            flow: Flow::$flow,
        }, )* ];
    };
}

opcodes! {
//  name                             no. cache stack use of argument n                      jump      operand       flow
    CACHE                         =   0,  0, |_| stack(0, 0),                             NoJump,   Unused,       Next;
    POP_TOP                       =   1,  0, |_| stack(1, -1),                            NoJump,   Unused,       Next;
    PUSH_NULL                     =   2,  0, |_| stack(0, 1),                             NoJump,   Unused,       Next;
    NOP                           =   9,  0, |_| stack(0, 0),                             NoJump,   Unused,       Next;
    UNARY_POSITIVE                =  10,  0, |_| stack(1, 0),                             NoJump,   Unused,       Next;
    UNARY_NEGATIVE                =  11,  0, |_| stack(1, 0),                             NoJump,   Unused,       Next;
    UNARY_NOT                     =  12,  0, |_| stack(1, 0),                             NoJump,   Unused,       Next;
    UNARY_INVERT                  =  15,  0, |_| stack(1, 0),                             NoJump,   Unused,       Next;
    BINARY_SUBSCR                 =  25,  4, |_| stack(2, -1),                            NoJump,   Unused,       Next;
    GET_LEN                       =  30,  0, |_| stack(1, 1),                             NoJump,   Unused,       Next;
    MATCH_MAPPING                 =  31,  0, |_| stack(1, 1),                             NoJump,   Unused,       Next;
    MATCH_SEQUENCE                =  32,  0, |_| stack(1, 1),                             NoJump,   Unused,       Next;
    MATCH_KEYS                    =  33,  0, |_| stack(2, 1),                             NoJump,   Unused,       Next;
    PUSH_EXC_INFO                 =  35,  0, |_| stack(1, 1),                             NoJump,   Unused,       Next;
    CHECK_EXC_MATCH               =  36,  0, |_| stack(2, 0),                             NoJump,   Unused,       Next;
    CHECK_EG_MATCH                =  37,  0, |_| stack(2, 0),                             NoJump,   Unused,       Next;
    WITH_EXCEPT_START             =  49,  0, |_| stack(4, 1),                             NoJump,   Unused,       Next;
    GET_AITER                     =  50,  0, |_| stack(1, 0),                             NoJump,   Unused,       Next;
    GET_ANEXT                     =  51,  0, |_| stack(1, 1),                             NoJump,   Unused,       Next;
    BEFORE_ASYNC_WITH             =  52,  0, |_| stack(1, 1),                             NoJump,   Unused,       Next;
    BEFORE_WITH                   =  53,  0, |_| stack(1, 1),                             NoJump,   Unused,       Next;
    END_ASYNC_FOR                 =  54,  0, |_| stack(2, -2),                            NoJump,   Unused,       Next;
    STORE_SUBSCR                  =  60,  1, |_| stack(3, -3),                            NoJump,   Unused,       Next;
    DELETE_SUBSCR                 =  61,  0, |_| stack(2, -2),                            NoJump,   Unused,       Next;
    GET_ITER                      =  68,  0, |_| stack(1, 0),                             NoJump,   Unused,       Next;
    GET_YIELD_FROM_ITER           =  69,  0, |_| stack(1, 0),                             NoJump,   Unused,       Next;
    PRINT_EXPR                    =  70,  0, |_| stack(1, -1),                            NoJump,   Unused,       Next;
    LOAD_BUILD_CLASS              =  71,  0, |_| stack(0, 1),                             NoJump,   Unused,       Next;
    LOAD_ASSERTION_ERROR          =  74,  0, |_| stack(0, 1),                             NoJump,   Unused,       Next;
    RETURN_GENERATOR              =  75,  0, |_| stack(0, 0),                             NoJump,   Unused,       Next;
    LIST_TO_TUPLE                 =  82,  0, |_| stack(1, 0),                             NoJump,   Unused,       Next;
    RETURN_VALUE                  =  83,  0, |_| stack(1, -1),                            NoJump,   Unused,       Ends;
    IMPORT_STAR                   =  84,  0, |_| stack(1, -1),                            NoJump,   Unused,       Next;
    SETUP_ANNOTATIONS             =  85,  0, |_| stack(0, 0),                             NoJump,   Unused,       Next;
    YIELD_VALUE                   =  86,  0, |_| stack(1, 0),                             NoJump,   Unused,       Next;
    ASYNC_GEN_WRAP                =  87,  0, |_| stack(1, 0),                             NoJump,   Unused,       Next;
    PREP_RERAISE_STAR             =  88,  0, |_| stack(2, -1),                            NoJump,   Unused,       Next;
    POP_EXCEPT                    =  89,  0, |_| stack(1, -1),                            NoJump,   Unused,       Next;
    // HAVE_ARGUMENT: the opcodes from here on take an argument.
    STORE_NAME                    =  90,  0, |_| stack(1, -1),                            NoJump,   Name,         Next;
    DELETE_NAME                   =  91,  0, |_| stack(0, 0),                             NoJump,   Name,         Next;
    UNPACK_SEQUENCE               =  92,  1, |n| stack(1, n - 1),                         NoJump,   Raw,          Next;
    FOR_ITER                      =  93,  0, |_| branch(1, 1, -1),                        Forward,  JumpOffset,   Next;
    UNPACK_EX                     =  94,  0, |n| stack(1, (n & 0xff) + (n >> 8)),         NoJump,   Raw,          Next;
    STORE_ATTR                    =  95,  4, |_| stack(2, -2),                            NoJump,   Name,         Next;
    DELETE_ATTR                   =  96,  0, |_| stack(1, -1),                            NoJump,   Name,         Next;
    STORE_GLOBAL                  =  97,  0, |_| stack(1, -1),                            NoJump,   Name,         Next;
    DELETE_GLOBAL                 =  98,  0, |_| stack(0, 0),                             NoJump,   Name,         Next;
    SWAP                          =  99,  0, |n| stack(n, 0),                             NoJump,   AtLeast(2),   Next;
    LOAD_CONST                    = 100,  0, |_| stack(0, 1),                             NoJump,   Const,        Next;
    LOAD_NAME                     = 101,  0, |_| stack(0, 1),                             NoJump,   Name,         Next;
    BUILD_TUPLE                   = 102,  0, |n| stack(n, 1 - n),                         NoJump,   Raw,          Next;
    BUILD_LIST                    = 103,  0, |n| stack(n, 1 - n),                         NoJump,   Raw,          Next;
    BUILD_SET                     = 104,  0, |n| stack(n, 1 - n),                         NoJump,   Raw,          Next;
    BUILD_MAP                     = 105,  0, |n| stack(2 * n, 1 - 2 * n),                 NoJump,   Raw,          Next;
    LOAD_ATTR                     = 106,  4, |_| stack(1, 0),                             NoJump,   Name,         Next;
    // Rich comparison numbers, Py_LT..=Py_GE.
    COMPARE_OP                    = 107,  2, |_| stack(2, -1),                            NoJump,   Range(0, 5),  Next;
    IMPORT_NAME                   = 108,  0, |_| stack(2, -1),                            NoJump,   Name,         Next;
    IMPORT_FROM                   = 109,  0, |_| stack(1, 1),                             NoJump,   Name,         Next;
    JUMP_FORWARD                  = 110,  0, |_| branch(0, 0, 0),                         Forward,  JumpOffset,   Ends;
    JUMP_IF_FALSE_OR_POP          = 111,  0, |_| branch(1, -1, 0),                        Forward,  JumpOffset,   Next;
    JUMP_IF_TRUE_OR_POP           = 112,  0, |_| branch(1, -1, 0),                        Forward,  JumpOffset,   Next;
    POP_JUMP_FORWARD_IF_FALSE     = 114,  0, |_| branch(1, -1, -1),                       Forward,  JumpOffset,   Next;
    POP_JUMP_FORWARD_IF_TRUE      = 115,  0, |_| branch(1, -1, -1),                       Forward,  JumpOffset,   Next;
    LOAD_GLOBAL                   = 116,  5, |n| stack(0, 1 + bit(n, 1)),                 NoJump,   GlobalName,   Next;
    IS_OP                         = 117,  0, |_| stack(2, -1),                            NoJump,   Raw,          Next;
    CONTAINS_OP                   = 118,  0, |_| stack(2, -1),                            NoJump,   Raw,          Next;
    RERAISE                       = 119,  0, |n| stack(1 + n, -1),                        NoJump,   Raw,          Ends;
    COPY                          = 120,  0, |n| stack(n, 1),                             NoJump,   AtLeast(1),   Next;
    // NB_* operator numbers (`opcode._nb_ops`).
    BINARY_OP                     = 122,  1, |_| stack(2, -1),                            NoJump,   Range(0, 25), Next;
    SEND                          = 123,  0, |_| branch(2, 0, -1),                        Forward,  JumpOffset,   Next;
    LOAD_FAST                     = 124,  0, |_| stack(0, 1),                             NoJump,   Local,        Next;
    STORE_FAST                    = 125,  0, |_| stack(1, -1),                            NoJump,   Local,        Next;
    DELETE_FAST                   = 126,  0, |_| stack(0, 0),                             NoJump,   Local,        Next;
    POP_JUMP_FORWARD_IF_NOT_NONE  = 128,  0, |_| branch(1, -1, -1),                       Forward,  JumpOffset,   Next;
    POP_JUMP_FORWARD_IF_NONE      = 129,  0, |_| branch(1, -1, -1),                       Forward,  JumpOffset,   Next;
    RAISE_VARARGS                 = 130,  0, |n| stack(n, -n),                            NoJump,   Range(0, 2),  Ends;
    GET_AWAITABLE                 = 131,  0, |_| stack(1, 0),                             NoJump,   Raw,          Next;
    MAKE_FUNCTION                 = 132,  0, |n| make_function(n),                        NoJump,   Raw,          Next;
    BUILD_SLICE                   = 133,  0, |n| build_slice(n),                          NoJump,   Range(2, 3),  Next;
    JUMP_BACKWARD_NO_INTERRUPT    = 134,  0, |_| branch(0, 0, 0),                         Backward, JumpOffset,   Ends;
    MAKE_CELL                     = 135,  0, |_| stack(0, 0),                             NoJump,   CellOrFree,   Next;
    LOAD_CLOSURE                  = 136,  0, |_| stack(0, 1),                             NoJump,   CellOrFree,   Next;
    LOAD_DEREF                    = 137,  0, |_| stack(0, 1),                             NoJump,   CellOrFree,   Next;
    STORE_DEREF                   = 138,  0, |_| stack(1, -1),                            NoJump,   CellOrFree,   Next;
    DELETE_DEREF                  = 139,  0, |_| stack(0, 0),                             NoJump,   CellOrFree,   Next;
    JUMP_BACKWARD                 = 140,  0, |_| branch(0, 0, 0),                         Backward, JumpOffset,   Ends;
    // The helper's stack layout depends on the flag: 0 or 1 (a ** mapping).
    CALL_FUNCTION_EX              = 142,  0, |n| stack(3 + bit(n, 1), -2 - bit(n, 1)),    NoJump,   Range(0, 1),  Next;
    // Folded into the next instruction's argument by the decoder, never an instruction itself.
    EXTENDED_ARG                  = 144,  0, |_| stack(0, 0),                             NoJump,   Raw,          Next;
    LIST_APPEND                   = 145,  0, |n| stack(n + 1, -1),                        NoJump,   Raw,          Next;
    SET_ADD                       = 146,  0, |n| stack(n + 1, -1),                        NoJump,   Raw,          Next;
    MAP_ADD                       = 147,  0, |n| stack(n + 2, -2),                        NoJump,   Raw,          Next;
    LOAD_CLASSDEREF               = 148,  0, |_| stack(0, 1),                             NoJump,   CellOrFree,   Next;
    COPY_FREE_VARS                = 149,  0, |_| stack(0, 0),                             NoJump,   FreeVarCount, Next;
    RESUME                        = 151,  0, |_| stack(0, 0),                             NoJump,   Raw,          Next;
    MATCH_CLASS                   = 152,  0, |_| stack(3, -2),                            NoJump,   Raw,          Next;
    FORMAT_VALUE                  = 155,  0, |n| stack(1 + bit(n, 4), -bit(n, 4)),        NoJump,   Raw,          Next;
    BUILD_CONST_KEY_MAP           = 156,  0, |n| stack(n + 1, -n),                        NoJump,   Raw,          Next;
    BUILD_STRING                  = 157,  0, |n| stack(n, 1 - n),                         NoJump,   Raw,          Next;
    LOAD_METHOD                   = 160, 10, |_| stack(1, 1),                             NoJump,   Name,         Next;
    // The depth of the container below the iterable: the helpers' layouts need at least 1.
    LIST_EXTEND                   = 162,  0, |n| stack(n + 1, -1),                        NoJump,   AtLeast(1),   Next;
    SET_UPDATE                    = 163,  0, |n| stack(n + 1, -1),                        NoJump,   AtLeast(1),   Next;
    DICT_MERGE                    = 164,  0, |n| stack(n + 1, -1),                        NoJump,   AtLeast(1),   Next;
    DICT_UPDATE                   = 165,  0, |n| stack(n + 1, -1),                        NoJump,   AtLeast(1),   Next;
    // compile.c books the arguments on PRECALL (-n) and the callable pair on CALL (-1); PRECALL n
    // is always directly followed by CALL n (the baseline checks it), so the real requirement,
    // n + 2 values, is checked on PRECALL. See `moves` for what the stack pointer does.
    PRECALL                       = 166,  1, |n| stack(n + 2, -n),                        NoJump,   Raw,          Next;
    CALL                          = 171,  4, |_| stack(2, -1),                            NoJump,   Raw,          Next;
    KW_NAMES                      = 172,  0, |_| stack(0, 0),                             NoJump,   Const,        Next;
    POP_JUMP_BACKWARD_IF_NOT_NONE = 173,  0, |_| branch(1, -1, -1),                       Backward, JumpOffset,   Next;
    POP_JUMP_BACKWARD_IF_NONE     = 174,  0, |_| branch(1, -1, -1),                       Backward, JumpOffset,   Next;
    POP_JUMP_BACKWARD_IF_FALSE    = 175,  0, |_| branch(1, -1, -1),                       Backward, JumpOffset,   Next;
    POP_JUMP_BACKWARD_IF_TRUE     = 176,  0, |_| branch(1, -1, -1),                       Backward, JumpOffset,   Next;
}

/// BUILD_SLICE's stack use: start and stop, and a step when the argument is 3 (compile.c counts
/// any other argument as 2).
const fn build_slice(n: i32) -> StackUse {
    if n == 3 { stack(3, -2) } else { stack(2, -1) }
}

/// MAKE_FUNCTION's stack use: the code object, plus one value per flag set (defaults,
/// keyword-only defaults, annotations, closure).
const fn make_function(n: i32) -> StackUse {
    let extra = bit(n, 1) + bit(n, 2) + bit(n, 4) + bit(n, 8);
    stack(1 + extra, -extra)
}

/// Row of each opcode number in [`OPCODES`], [`NOT_AN_OPCODE`] for numbers without a row.
/// Building it fails to compile if two rows share a number.
const ROW: [u8; 256] = {
    let mut row = [NOT_AN_OPCODE; 256];
    let mut i = 0;
    while i < OPCODES.len() {
        let number = OPCODES[i].number as usize;
        assert!(row[number] == NOT_AN_OPCODE, "two rows of the opcode table share a number");
        row[number] = i as u8;
        i += 1;
    }
    row
};
const NOT_AN_OPCODE: u8 = u8::MAX;

/// The row of a base opcode, `None` for numbers that are not one (specialized forms included).
pub const fn info(opcode: u8) -> Option<&'static OpInfo> {
    match ROW[opcode as usize] {
        NOT_AN_OPCODE => None,
        i => Some(&OPCODES[i as usize]),
    }
}

/// The name of a base opcode, `None` for numbers that are not one.
pub fn name(opcode: u8) -> Option<&'static str> {
    info(opcode).map(|i| i.name)
}

/// Inline cache entries (code units) after an instruction; 0 for numbers that are not opcodes.
pub const fn cache_entries(opcode: u8) -> usize {
    match info(opcode) {
        Some(i) => i.caches as usize,
        None => 0,
    }
}

/// How an instruction uses the value stack, as compile.c books it (see [`StackUse`]). `None` for
/// opcodes that are not base opcodes.
pub fn stack_use(opcode: u8, oparg: u32) -> Option<StackUse> {
    info(opcode).map(|i| (i.stack)(oparg as i32))
}

/// How far an instruction actually moves the value-stack pointer when it runs: its
/// [`stack_use`], except for the PRECALL/CALL pair, which compile.c books differently from how
/// ceval runs it. ceval's PRECALL leaves the stack as it is (the n arguments compile.c books on
/// it stay until CALL), and CALL pops the arguments with the callable pair. Compiled code moves
/// the pointer as ceval does; its debug checks compare with this.
pub fn moves(opcode: u8, oparg: u32) -> Option<StackUse> {
    let u = stack_use(opcode, oparg)?;
    Some(match opcode {
        op::PRECALL => StackUse { effect: 0, ..u },
        op::CALL => StackUse { effect: u.effect + stack_use(op::PRECALL, oparg)?.effect, ..u },
        _ => u,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARGS: [u32; 9] = [0, 1, 2, 3, 4, 5, 8, 15, 0x103];

    #[test]
    fn rows_are_in_number_order_and_found_by_number() {
        for w in OPCODES.windows(2) {
            assert!(w[0].number < w[1].number, "{} before {}", w[0].name, w[1].name);
        }
        for row in OPCODES {
            assert_eq!(info(row.number).map(|i| i.name), Some(row.name));
        }
        assert_eq!((0..=255u8).filter(|&n| info(n).is_some()).count(), OPCODES.len());
    }

    /// The columns agree with each other: jumps and only jumps have a taken-path effect and a
    /// jump offset; flow ends only at returns, raises and unconditional jumps.
    #[test]
    fn columns_agree() {
        for row in OPCODES {
            let jumps = row.jump != JumpKind::NoJump;
            assert_eq!(row.operand == Operand::JumpOffset, jumps, "{}", row.name);
            for n in ARGS {
                assert_eq!((row.stack)(n as i32).jump_effect.is_some(), jumps, "{} {n}", row.name);
            }
            if row.flow == Flow::Ends && jumps {
                assert_eq!((row.stack)(0).jump_effect, Some((row.stack)(0).effect), "{}", row.name);
            }
        }
        let ends: Vec<&str> = OPCODES.iter().filter(|r| r.flow == Flow::Ends).map(|r| r.name).collect();
        assert_eq!(
            ends,
            ["RETURN_VALUE", "JUMP_FORWARD", "RERAISE", "RAISE_VARARGS", "JUMP_BACKWARD_NO_INTERRUPT", "JUMP_BACKWARD"]
        );
    }

    #[test]
    fn the_call_pair_moves_the_stack_at_call() {
        for n in ARGS {
            let booked = stack_use(op::PRECALL, n).unwrap().effect + stack_use(op::CALL, n).unwrap().effect;
            assert_eq!(moves(op::PRECALL, n).unwrap().effect, 0);
            assert_eq!(moves(op::CALL, n).unwrap().effect, booked);
            assert_eq!(moves(op::BUILD_TUPLE, n), stack_use(op::BUILD_TUPLE, n));
        }
        assert_eq!(cache_entries(op::CALL), 4);
        assert_eq!(cache_entries(255), 0);
    }
}
