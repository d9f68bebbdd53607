//! Inline fast paths: the machine code that checks a site's inline cache
//! (`peregrine_runtime::jit::inline_cache`) or an operand's exact type and does the work without
//! a call, with the site's helper as the slow path, which runs the generic instruction and
//! (re)fills the cache. Each path takes only steps the generic instruction would take for those
//! operands; see the cache kinds for why each guard suffices.
//!
//! Registers: as in `emitter` (`r12` frame, `r13` thread state, `r14` stack, `rbx` scratch
//! surviving calls); the caller-saved ones are scratch. Every template here leaves by `done`.

use crate::offsets::*;
use crate::emitter::{x64, Emitter};
use crate::shared_lookups;
use dynasmrt::x64::Rq;
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi};
use peregrine_runtime::bytecode::Instr;
use peregrine_runtime::opcodes::op;
use peregrine_runtime::ExitReason;
use peregrine_runtime::cpython::layout::{DictObject, LONG_DIGIT_OFFSET};
use peregrine_runtime::cpython::{self, ffi};
use peregrine_runtime::jit::inline_cache::{self as ic, kind};
use peregrine_runtime::jit::ops::{COMPARE_FLOAT, COMPARE_INT, COMPARE_STR};
use peregrine_runtime::jit::specialize::{Site, CACHE_OFFSET, FORM_OFFSET, RUNNING_OFFSET};
use peregrine_runtime::semantics::operators::nb;
use std::mem::offset_of;

const DIGIT: i32 = LONG_DIGIT_OFFSET as i32;

/// The address of a site's inline cache.
fn cache_addr(site: *const Site) -> i64 {
    site as i64 + CACHE_OFFSET as i64
}

fn addr_of_type(tp: *mut ffi::PyTypeObject) -> i64 {
    tp as i64
}

/// `rdi` = the owner `owner_depth` slots down the stack, `rcx` = the way of the site's cache
/// whose key is its type's version (the ways in turn, `inline_cache::Way`), and on to `slow`
/// if none is.
fn guard_type_version(e: &mut Emitter, site: *const Site, owner_depth: i32, slow: DynamicLabel) {
    x64!(e.ops
        ; mov rcx, QWORD cache_addr(site)
        ; mov rdi, [r14 - 8 * owner_depth]
        ; mov rax, [BYTE rdi + const { d8(OB_TYPE) }]
        ; mov edx, DWORD [rax + TP_VERSION]
        ; way:
        ; cmp rdx, [rcx + ic::KEY]
        ; je BYTE >found
        ; mov rcx, [rcx + ic::NEXT_WAY]
        ; test rcx, rcx
        ; jnz BYTE <way
        ; jmp =>slow
        ; found:
    );
}

/// Ends a fast path at `done`; the slow path (the site helper) at `slow`, in the cold section,
/// comes back there.
fn slow_path(e: &mut Emitter, ins: &Instr, helper: peregrine_runtime::jit::ops::SiteHelper, site: *const Site, slow: DynamicLabel, done: DynamicLabel) {
    e.cold_site_helper(slow, done, ins.opcode, ins.oparg, helper, site);
    x64!(e.ops ; =>done);
}

/// Calls a shared lookup (`shared_lookups`) with `rcx` = the site's cache and, for an owner at
/// `owner_depth`, `rdi` = the owner; a miss goes to `slow`. Without the lookups (no executable
/// memory) every execution takes the slow path.
fn call_lookup(e: &mut Emitter, routine: impl Fn(&shared_lookups::Lookups) -> usize, site: *const Site, owner_depth: Option<i32>, slow: DynamicLabel) {
    let Some(lookups) = shared_lookups::lookups() else {
        x64!(e.ops ; jmp =>slow);
        return;
    };
    x64!(e.ops ; mov rcx, QWORD cache_addr(site));
    if let Some(depth) = owner_depth {
        x64!(e.ops ; mov rdi, [r14 - 8 * depth]);
    }
    let lookup = routine(lookups);
    e.call_fn(lookup);
    x64!(e.ops
        ; test rax, rax
        ; jz =>slow
    );
}

/// LOAD_GLOBAL: the shared lookup (a global's entry or a builtin under both dicts' versions),
/// then the value pushed (after NULL when the oparg asks).
pub fn load_global(e: &mut Emitter, ins: &Instr, site: *const Site) {
    let (slow, done) = (e.label(), e.label());
    call_lookup(e, |l| l.load_global, site, None, slow);
    e.incref_rax();
    if ins.oparg & 1 != 0 {
        x64!(e.ops ; mov QWORD [r14], 0 ; add r14, 8);
    }
    e.push_rax();
    slow_path(e, ins, ic::pg_load_global_cached, site, slow, done);
}

/// LOAD_ATTR: the shared lookup (an instance value in the values array or the instance's dict,
/// a slot, a class's or a module's attribute), then the value replaces the owner.
pub fn load_attr(e: &mut Emitter, ins: &Instr, site: *const Site) {
    let (slow, done) = (e.label(), e.label());
    call_lookup(e, |l| l.load_attr, site, Some(1), slow);
    e.incref_rax();
    x64!(e.ops ; mov [r14 - 8], rax);
    e.decref_rdi(); // the owner
    slow_path(e, ins, ic::pg_load_attr_cached, site, slow, done);
}

/// STORE_ATTR (stack: value, owner): an instance value (set or new), an attribute of an
/// instance whose dict was made, or a writable slot, through the way of the cache armed for the
/// owner's type.
pub fn store_attr(e: &mut Emitter, ins: &Instr, site: *const Site) {
    let (slow, done, with_dict) = (e.label(), e.label(), e.label());
    guard_type_version(e, site, 1, slow);
    x64!(e.ops
        ; mov edx, DWORD [rcx + ic::KIND]
        ; cmp edx, kind::INSTANCE_DICT as i32
        ; je =>with_dict
        ; cmp edx, kind::INSTANCE_VALUE as i32
        ; jne BYTE >slot
        ; mov r9, [rdi + ic::VALUES_DISP]
        ; test r9, r9
        ; jz =>with_dict
        ; mov rdx, [rcx + ic::VALUE]
        ; lea rax, [r9 + rdx * 8]
        ; cmp QWORD [rax], 0
        ; je BYTE >new_attribute
        ; jmp BYTE >store
        ; slot:                             // kind::SLOT
        ; mov rdx, [rcx + ic::VALUE]
        ; lea rax, [rdi + rdx]
        ; store:
        ; add QWORD [rcx + ic::HITS], 1
        ; mov rsi, [r14 - 16]
        ; mov rdx, [rax]                    // the old value (a slot's may be unset)
        ; mov [rax], rsi                    // the stack's reference moves into the object
        ; sub r14, 16
        ; mov rbx, rdi
        ; mov rdi, rdx
    );
    e.xdecref_rdi(); // the old value, then the owner, as STORE_ATTR_INSTANCE_VALUE/SLOT
    x64!(e.ops ; mov rdi, rbx);
    e.decref_rdi();
    // A new attribute in the values array: stored, and its index appended to the insertion
    // order kept in the bytes before the array (`_PyDictValues_AddToInsertionOrder`, an inline
    // function of pycore_dict.h: the count at values[-2], the indices below it).
    x64!(e.ops
        ; jmp =>done
        ; new_attribute:
        ; add QWORD [rcx + ic::HITS], 1
        ; mov rsi, [r14 - 16]
        ; mov [rax], rsi                    // the stack's reference moves into the object
        ; sub r14, 16
        ; movzx r8d, BYTE [r9 - 2]
        ; add r8d, 1
        ; mov r10, r9
        ; sub r10, r8
        ; mov BYTE [r10 - 2], dl            // size_ptr[-size] = index
        ; mov BYTE [r9 - 2], r8b            // *size_ptr = size
    );
    e.decref_rdi(); // the owner
    // An instance whose dict was made (rarer than values): the generic path's PyDict_SetItem,
    // without the rest, in the cold section.
    let error = e.error_exit();
    e.cold(with_dict, move |e| {
        let callee = ffi::PyDict_SetItem as *const () as usize;
        x64!(e.ops
            ; mov rax, [rdi + ic::DICT_DISP]
            ; test rax, rax
            ; jz =>slow
            ; add QWORD [rcx + ic::HITS], 1
            ; mov rbx, rdi
            ; mov rdi, rax
            ; mov rsi, [rcx + ic::NAME]
            ; mov rdx, [r14 - 16]
        );
        e.call_fn(callee);
        x64!(e.ops
            ; sub r14, 16
            ; mov ebx, eax                      // 0, or -1 with an exception set
            ; mov rdi, [r14]
        );
        e.decref_rdi(); // the value (the dict holds its own reference), then the owner
        x64!(e.ops ; mov rdi, [r14 + 8]);
        e.decref_rdi();
        x64!(e.ops
            ; test ebx, ebx
            ; jnz =>error
            ; jmp =>done
        );
    });
    slow_path(e, ins, ic::pg_store_attr_cached, site, slow, done);
}

/// LOAD_METHOD: the shared lookup; a method of the type leaves (method, self), a module
/// attribute (NULL, attribute).
pub fn load_method(e: &mut Emitter, ins: &Instr, site: *const Site) {
    let (slow, done) = (e.label(), e.label());
    call_lookup(e, |l| l.load_method, site, Some(1), slow);
    e.incref_rax();
    x64!(e.ops
        ; test edx, edx
        ; jz BYTE >module
        ; mov [r14 - 8], rax
        ; mov [r14], rdi                    // self keeps the stack's reference
        ; add r14, 8
        ; jmp =>done
        ; module:
        ; mov QWORD [r14 - 8], 0
        ; mov [r14], rax
        ; add r14, 8
    );
    e.decref_rdi(); // the module
    slow_path(e, ins, ic::pg_load_method_cached, site, slow, done);
}

/// `xmm0 <op> xmm1` for a float BINARY_OP, boxed with `PyFloat_FromDouble` (into `rax`), then on
/// to `boxed`; a zero divisor goes to `slow` (float_div raises ZeroDivisionError).
fn float_operation(e: &mut Emitter, op: u32, slow: DynamicLabel, boxed: DynamicLabel, site: *const Site) {
    match op {
        nb::ADD => x64!(e.ops ; addsd xmm0, xmm1),
        nb::SUBTRACT => x64!(e.ops ; subsd xmm0, xmm1),
        nb::MULTIPLY => x64!(e.ops ; mulsd xmm0, xmm1),
        _ => x64!(e.ops
            ; xorpd xmm2, xmm2
            ; ucomisd xmm1, xmm2
            ; je =>slow                    // zero (or NaN, which the generic path divides)
            ; divsd xmm0, xmm1
        ),
    }
    let callee = ffi::PyFloat_FromDouble as *const () as usize;
    x64!(e.ops
        ; mov rcx, QWORD cache_addr(site)
        ; add QWORD [rcx + ic::KEY2], 1
    );
    e.call_fn(callee);
    x64!(e.ops
        ; jmp =>boxed
    );
}

/// The plain operator of BINARY_OP `oparg` (in-place forms of floats and ints are the plain
/// ones: neither type has in-place slots).
fn base_op(oparg: u32) -> u32 {
    if oparg >= nb::INPLACE { oparg - nb::INPLACE } else { oparg }
}

/// BINARY_OP: exact floats and one-digit ints mixed with them (+ - * and / by non-zero), one-digit
/// ints divided (/), and one-digit ints (+ - * & | ^ // %), inline;
/// the result object is made by the same allocator call the generic path makes.
pub fn binary_op(e: &mut Emitter, ins: &Instr, next: Option<&Instr>, site: *const Site) {
    let op = base_op(ins.oparg);
    // `s = s + t` / `s += t`: the slow path may join strs in place, as ceval's
    // BINARY_OP_INPLACE_ADD_UNICODE, when a STORE_FAST follows directly (its own code unit right
    // after the caches, as ceval's specializer looks for it).
    let add_to_local = next.filter(|n| {
        op == nb::ADD && n.opcode == op::STORE_FAST && n.start == ins.next && n.index == n.start && n.oparg < 1 << 24
    });
    if let Some(store) = add_to_local {
        let (slow, done) = (e.label(), e.label());
        let error = e.error_exit();
        let (opcode, oparg, packed) = (ins.opcode, ins.oparg, ins.oparg | store.oparg << 8);
        let helper = ic::pg_binary_op_add_to_local as peregrine_runtime::jit::ops::SiteHelper;
        binary_op_fast(e, site, op, slow);
        e.cold(slow, move |e| {
            e.call_site_helper_with(opcode, helper, oparg, packed, site, error);
            x64!(e.ops ; jmp =>done);
        });
        x64!(e.ops ; =>done);
        return;
    }
    let slow = e.label();
    binary_op_fast(e, site, op, slow);
    let done = e.label();
    slow_path(e, ins, ic::pg_binary_op_cached, site, slow, done);
}

/// The fast paths of BINARY_OP `ins` (operator `op`), which jump to `slow` for what they leave.
fn binary_op_fast(e: &mut Emitter, site: *const Site, op: u32, slow: DynamicLabel) {
    let float_ok = matches!(op, nb::ADD | nb::SUBTRACT | nb::MULTIPLY | nb::TRUE_DIVIDE);
    let int_ok = matches!(
        op,
        nb::ADD | nb::SUBTRACT | nb::MULTIPLY | nb::AND | nb::OR | nb::XOR | nb::FLOOR_DIVIDE | nb::REMAINDER
    );
    if !float_ok && !int_ok {
        x64!(e.ops ; jmp =>slow);
        return;
    }
    let (float_type, long_type) = (
        addr_of_type(std::ptr::addr_of_mut!(ffi::PyFloat_Type)),
        addr_of_type(std::ptr::addr_of_mut!(ffi::PyLong_Type)),
    );
    let (boxed, mixed) = (e.label(), e.label());
    x64!(e.ops
        ; mov rcx, QWORD cache_addr(site)
        ; mov rdi, [r14 - 16]
        ; mov rsi, [r14 - 8]
        ; mov rax, [BYTE rdi + const { d8(OB_TYPE) }]
        ; mov r8, [BYTE rsi + const { d8(OB_TYPE) }]
        ; cmp rax, r8
        ; jne =>mixed
    );
    // Two floats first, straight through: the common case of numeric code stays short.
    if float_ok {
        x64!(e.ops
            ; mov rdx, QWORD float_type
            ; cmp rax, rdx
            ; jne BYTE >not_float
            ; movsd xmm0, QWORD [BYTE rdi + const { d8(FLOAT_VALUE) }]
            ; movsd xmm1, QWORD [BYTE rsi + const { d8(FLOAT_VALUE) }]
        );
        float_operation(e, op, slow, boxed, site);
        x64!(e.ops ; not_float:);
    }
    // Two ints: int arithmetic, or (true division) the conversion below.
    if !int_ok {
        x64!(e.ops ; jmp =>mixed);
    }
    if int_ok {
        x64!(e.ops
            ; mov rdx, QWORD long_type
            ; cmp rax, rdx
            ; jne =>slow
            // At most one digit each: Py_SIZE in -1..=1, the value size * digit.
            ; mov rax, [BYTE rdi + const { d8(OB_SIZE) }]
            ; lea rdx, [rax + 1]
            ; cmp rdx, 2
            ; ja =>slow
            ; mov rdx, [BYTE rsi + const { d8(OB_SIZE) }]
            ; lea r8, [rdx + 1]
            ; cmp r8, 2
            ; ja =>slow
            ; mov r8d, DWORD [BYTE rdi + const { d8(DIGIT) }]
            ; imul rax, r8
            ; mov r8d, DWORD [BYTE rsi + const { d8(DIGIT) }]
            ; imul rdx, r8
        );
        // 30-bit operands: no result below overflows 64 bits.
        match op {
            nb::ADD => x64!(e.ops ; add rax, rdx),
            nb::SUBTRACT => x64!(e.ops ; sub rax, rdx),
            nb::MULTIPLY => x64!(e.ops ; imul rax, rdx),
            nb::AND => x64!(e.ops ; and rax, rdx),
            nb::OR => x64!(e.ops ; or rax, rdx),
            nb::XOR => x64!(e.ops ; xor rax, rdx),
            _ => {
                // Python's // and % round towards minus infinity: the truncated quotient less
                // one, and the remainder plus the divisor, when the remainder's sign differs
                // from the divisor's. A zero divisor raises: the generic path.
                x64!(e.ops
                    ; mov r8, rdx
                    ; test r8, r8
                    ; jz =>slow
                    ; cqo
                    ; idiv r8
                    ; test rdx, rdx
                    ; jz BYTE >exact
                    ; mov r9, rdx
                    ; xor r9, r8
                    ; jns BYTE >exact
                );
                if op == nb::FLOOR_DIVIDE {
                    x64!(e.ops ; sub rax, 1 ; exact:);
                } else {
                    x64!(e.ops ; add rdx, r8 ; exact: ; mov rax, rdx);
                }
            }
        }
        let callee = ffi::PyLong_FromLongLong as *const () as usize;
        x64!(e.ops
            ; add QWORD [rcx + ic::KEY3], 1
            ; mov rdi, rax
        );
        e.call_fn(callee);
        x64!(e.ops
            ; jmp =>boxed
        );
    }
    // Floats and one-digit ints (exact as doubles) mixed, or ints divided: the number protocol
    // ends in float_add & co. (or long_true_divide's small-int path), which convert the int
    // exactly and compute the same double.
    // Mixed operands are rare next to same-typed ones: their conversions wait in the cold
    // section, out of the hot path's way.
    e.cold(mixed, move |e| {
        if !float_ok {
            x64!(e.ops ; jmp =>slow);
            return;
        }
        let (float_type, long_type) = (
            addr_of_type(std::ptr::addr_of_mut!(ffi::PyFloat_Type)),
            addr_of_type(std::ptr::addr_of_mut!(ffi::PyLong_Type)),
        );
        for (reg_obj, reg_type, xmm) in [(Rq::RDI, Rq::RAX, 0u8), (Rq::RSI, Rq::R8, 1u8)] {
            let (obj, tp) = (reg_obj as u8, reg_type as u8);
            x64!(e.ops
                ; mov r9, QWORD float_type
                ; cmp Rq(tp), r9
                ; jne BYTE >not_float
                ; movsd Rx(xmm), QWORD [Rq(obj) + FLOAT_VALUE]
                ; jmp BYTE >loaded
                ; not_float:
                ; mov r9, QWORD long_type
                ; cmp Rq(tp), r9
                ; jne =>slow
                ; mov r9, [Rq(obj) + OB_SIZE]
                ; lea r10, [r9 + 1]
                ; cmp r10, 2
                ; ja =>slow
                ; mov r10d, DWORD [Rq(obj) + DIGIT]
                ; imul r9, r10
                ; cvtsi2sd Rx(xmm), r9
                ; loaded:
            );
        }
        float_operation(e, op, slow, boxed, site);
    });
    // rax = the result or null (MemoryError); release the operands (exact floats and ints run
    // no Python code when freed), as BINARY_OP does: left, then right.
    x64!(e.ops
        ; =>boxed
        ; mov rbx, rax
        ; mov rcx, QWORD cache_addr(site)
        ; add QWORD [rcx + ic::HITS], 1
        ; mov rdi, [r14 - 16]
    );
    e.decref_rdi();
    x64!(e.ops ; mov rdi, [r14 - 8]);
    e.decref_rdi();
    let error = e.error_exit();
    x64!(e.ops
        ; sub r14, 8
        ; mov [r14 - 8], rbx
        ; test rbx, rbx
        ; jz =>error
    );
}

/// COMPARE_OP before a conditional jump, where the site's form is ceval's
/// COMPARE_OP_INT_JUMP, COMPARE_OP_FLOAT_JUMP or COMPARE_OP_STR_JUMP and its guard passes: the comparison inline, no
/// call (a specialized form whose guard passes changes no site state, so the helper need not
/// run). When `jump` is given (a forward jump: no eval-breaker check), the combined form jumps
/// straight to `jump.0` when the result is `jump.1`, else to `fallthrough`, past the jump's own
/// code; otherwise it pushes the bool for the jump instruction.
pub fn compare_jump(e: &mut Emitter, ins: &Instr, site: *const Site, fused: Option<(DynamicLabel, bool, DynamicLabel)>) {
    let (slow, done) = (e.label(), e.label());
    let cond = compare_cond(ins.oparg);
    x64!(e.ops
        ; mov rcx, QWORD site as i64
        ; movzx eax, BYTE [rcx + FORM_OFFSET]
        ; mov rdi, [r14 - 16]
        ; mov rsi, [r14 - 8]
        ; mov r8, [BYTE rdi + const { d8(OB_TYPE) }]
        ; cmp r8, [BYTE rsi + const { d8(OB_TYPE) }]
        ; jne =>slow
        ; cmp eax, COMPARE_INT as i32
        ; jne BYTE >float
        ; mov rdx, QWORD addr_of_type(std::ptr::addr_of_mut!(ffi::PyLong_Type))
        ; cmp r8, rdx
        ; jne =>slow
        ; mov rax, [BYTE rdi + const { d8(OB_SIZE) }]
        ; lea rdx, [rax + 1]
        ; cmp rdx, 2
        ; ja =>slow
        ; mov rdx, [BYTE rsi + const { d8(OB_SIZE) }]
        ; lea r9, [rdx + 1]
        ; cmp r9, 2
        ; ja =>slow
        ; mov r9d, DWORD [BYTE rdi + const { d8(DIGIT) }]
        ; imul rax, r9
        ; mov r9d, DWORD [BYTE rsi + const { d8(DIGIT) }]
        ; imul rdx, r9
        ; cmp rax, rdx
    );
    set_bl(e, cond, true);
    x64!(e.ops
        ; jmp BYTE >decided
        ; float:
        ; cmp eax, COMPARE_FLOAT as i32
        ; jne BYTE >string
        ; mov rdx, QWORD addr_of_type(std::ptr::addr_of_mut!(ffi::PyFloat_Type))
        ; cmp r8, rdx
        ; jne =>slow
        ; movsd xmm0, QWORD [BYTE rdi + const { d8(FLOAT_VALUE) }]
        ; ucomisd xmm0, QWORD [BYTE rsi + const { d8(FLOAT_VALUE) }]
        ; jp =>slow                          // a NaN: the form's guard fails
    );
    set_bl(e, cond, false);
    x64!(e.ops ; jmp BYTE >decided ; string:);
    if matches!(cond, Cond::Eq | Cond::Ne) {
        // COMPARE_OP_STR_JUMP: `_PyUnicode_Equal` (a C function; same object, equal).
        let callee = cpython::_PyUnicode_Equal as *const () as usize;
        x64!(e.ops
            ; cmp eax, COMPARE_STR as i32
            ; jne =>slow
            ; mov rdx, QWORD addr_of_type(std::ptr::addr_of_mut!(ffi::PyUnicode_Type))
            ; cmp r8, rdx
            ; jne =>slow
            ; mov bl, 1
            ; cmp rdi, rsi
            ; je BYTE >same
        );
        e.call_fn(callee);
        x64!(e.ops
            ; test eax, eax
            ; setnz bl
            ; mov rcx, QWORD site as i64
            ; mov rdi, [r14 - 16]
            ; same:
        );
        if let Cond::Ne = cond {
            x64!(e.ops ; xor bl, 1);
        }
    } else {
        x64!(e.ops ; jmp =>slow);
    }
    x64!(e.ops
        ; decided:
        ; add QWORD [rcx + CACHE_OFFSET + ic::HITS], 1
    );
    // Both operands released (ints, floats and strs run no Python code when freed).
    e.decref_rdi();
    x64!(e.ops ; mov rdi, [r14 - 8]);
    e.decref_rdi();
    x64!(e.ops ; sub r14, 16);
    match fused {
        Some((target, when, fallthrough)) => {
            x64!(e.ops ; test bl, bl);
            if when {
                x64!(e.ops ; jnz =>target ; jmp =>fallthrough);
            } else {
                x64!(e.ops ; jz =>target ; jmp =>fallthrough);
            }
        }
        None => {
            // SAFETY-free: the bool singletons' addresses.
            let (t, f) = unsafe { (ffi::Py_True() as i64, ffi::Py_False() as i64) };
            x64!(e.ops
                ; mov rax, QWORD f
                ; mov rcx, QWORD t
                ; test bl, bl
                ; cmovnz rax, rcx
            );
            e.incref_rax();
            e.push_rax();
        }
    }
    // The helper pushes the bool, which the jump's own code (next) tests.
    slow_path(e, ins, peregrine_runtime::jit::ops::pg_compare_op_jump, site, slow, done);
}

/// Which comparison COMPARE_OP `oparg` is.
#[derive(Clone, Copy)]
enum Cond {
    Lt,
    Le,
    Eq,
    Ne,
    Gt,
    Ge,
}

fn compare_cond(oparg: u32) -> Cond {
    match oparg as i32 {
        ffi::Py_LT => Cond::Lt,
        ffi::Py_LE => Cond::Le,
        ffi::Py_EQ => Cond::Eq,
        ffi::Py_NE => Cond::Ne,
        ffi::Py_GT => Cond::Gt,
        _ => Cond::Ge,
    }
}

/// `bl` = the comparison's truth after `cmp` (signed ints) or `ucomisd` (floats, ordered).
fn set_bl(e: &mut Emitter, cond: Cond, signed: bool) {
    match (cond, signed) {
        (Cond::Lt, true) => x64!(e.ops ; setl bl),
        (Cond::Le, true) => x64!(e.ops ; setle bl),
        (Cond::Gt, true) => x64!(e.ops ; setg bl),
        (Cond::Ge, true) => x64!(e.ops ; setge bl),
        (Cond::Lt, false) => x64!(e.ops ; setb bl),
        (Cond::Le, false) => x64!(e.ops ; setbe bl),
        (Cond::Gt, false) => x64!(e.ops ; seta bl),
        (Cond::Ge, false) => x64!(e.ops ; setae bl),
        (Cond::Eq, _) => x64!(e.ops ; sete bl),
        (Cond::Ne, _) => x64!(e.ops ; setne bl),
    }
}



/// `rax` = the index in `rsi` (an exact int, checked here, non-negative of at most one digit,
/// as ceval's list and tuple forms take it) or on to `slow`. Clobbers `rdx`, `r8`.
fn small_index(e: &mut Emitter, slow: DynamicLabel) {
    let long_type = addr_of_type(std::ptr::addr_of_mut!(ffi::PyLong_Type));
    x64!(e.ops
        ; mov rdx, QWORD long_type
        ; cmp [BYTE rsi + const { d8(OB_TYPE) }], rdx
        ; jne =>slow
        ; mov rdx, [BYTE rsi + const { d8(OB_SIZE) }]
        ; cmp rdx, 1
        ; ja =>slow                          // negative, or more than one digit
        ; mov eax, DWORD [BYTE rsi + const { d8(DIGIT) }]
        ; imul rax, rdx                      // zero has size 0
    );
}

/// BINARY_SUBSCR of a list or tuple by a small int, where the site replays ceval's
/// BINARY_SUBSCR_LIST_INT or _TUPLE_INT and that form's guard passes (no site state changes);
/// where it replays BINARY_SUBSCR_DICT, the guard (an exact dict) inline and the form's helper
/// (`pg_binary_subscr_dict`) in the cold section; everything else, `__getitem__` included,
/// through the site helper.
pub fn binary_subscr(e: &mut Emitter, ins: &Instr, site: *const Site) {
    use peregrine_runtime::jit::ops::{pg_binary_subscr, pg_binary_subscr_dict, SUBSCR_DICT, SUBSCR_LIST_INT, SUBSCR_TUPLE_INT};
    let (slow, done, got, dict) = (e.label(), e.label(), e.label(), e.label());
    let (list_type, tuple_type, dict_type) = (
        addr_of_type(std::ptr::addr_of_mut!(ffi::PyList_Type)),
        addr_of_type(std::ptr::addr_of_mut!(ffi::PyTuple_Type)),
        addr_of_type(std::ptr::addr_of_mut!(ffi::PyDict_Type)),
    );
    x64!(e.ops
        ; mov rcx, QWORD site as i64
        ; movzx r9d, BYTE [rcx + FORM_OFFSET]
        ; mov rdi, [r14 - 16]
        ; mov rsi, [r14 - 8]
        ; cmp r9d, SUBSCR_DICT as i32
        ; je =>dict
    );
    let (oparg, error) = (ins.oparg, e.error_exit());
    e.cold(dict, move |e| {
        x64!(e.ops
            ; mov rdx, QWORD dict_type
            ; cmp [BYTE rdi + const { d8(OB_TYPE) }], rdx
            ; jne =>slow
        );
        e.call_site_helper(op::BINARY_SUBSCR, pg_binary_subscr_dict, oparg, site, error);
        x64!(e.ops ; jmp =>done);
    });
    small_index(e, slow);
    x64!(e.ops
        ; cmp r9d, SUBSCR_LIST_INT as i32
        ; jne BYTE >tuple
        ; mov rdx, QWORD list_type
        ; cmp [BYTE rdi + const { d8(OB_TYPE) }], rdx
        ; jne =>slow
        ; cmp rax, [BYTE rdi + const { d8(OB_SIZE) }]
        ; jae =>slow
        ; mov rdx, [BYTE rdi + const { d8(LIST_ITEMS) }]
        ; mov rax, [rdx + rax * 8]
        ; jmp =>got
        ; tuple:
        ; cmp r9d, SUBSCR_TUPLE_INT as i32
        ; jne =>slow
        ; mov rdx, QWORD tuple_type
        ; cmp [BYTE rdi + const { d8(OB_TYPE) }], rdx
        ; jne =>slow
        ; cmp rax, [BYTE rdi + const { d8(OB_SIZE) }]
        ; jae =>slow
        ; mov rax, [rdi + rax * 8 + TUPLE_ITEMS]
        ; =>got
        ; add QWORD [rcx + CACHE_OFFSET + ic::HITS], 1
    );
    e.incref_rax();
    // As the specialized forms: the index (an int: freeing it runs nothing), the result in
    // place, then the container (whose items' destructors may run).
    x64!(e.ops
        ; mov rbx, rax
        ; mov rdi, [r14 - 8]
    );
    e.decref_rdi();
    x64!(e.ops
        ; sub r14, 8
        ; mov rdi, [r14 - 8]
        ; mov [r14 - 8], rbx
    );
    e.decref_rdi();
    slow_path(e, ins, pg_binary_subscr, site, slow, done);
}

/// STORE_SUBSCR (stack: value, container, index) of a list item by a small int index, as
/// STORE_SUBSCR_LIST_INT (which is not observable, so always); the rest through the helper.
pub fn store_subscr(e: &mut Emitter, ins: &Instr) {
    let (slow, done) = (e.label(), e.label());
    let list_type = addr_of_type(std::ptr::addr_of_mut!(ffi::PyList_Type));
    x64!(e.ops
        ; mov rdi, [r14 - 16]
        ; mov rsi, [r14 - 8]
    );
    small_index(e, slow);
    x64!(e.ops
        ; mov rdx, QWORD list_type
        ; cmp [BYTE rdi + const { d8(OB_TYPE) }], rdx
        ; jne =>slow
        ; cmp rax, [BYTE rdi + const { d8(OB_SIZE) }]
        ; jae =>slow
        ; mov rdx, [BYTE rdi + const { d8(LIST_ITEMS) }]
        ; lea rdx, [rdx + rax * 8]
        ; mov rcx, [r14 - 24]
        ; mov rax, [rdx]                     // the old item
        ; mov [rdx], rcx                     // the stack's reference moves into the list
        ; sub r14, 24
        ; mov rdi, rax
    );
    e.decref_rdi(); // the old item, the index, then the list
    x64!(e.ops ; mov rdi, [r14 + 16]);
    e.decref_rdi();
    x64!(e.ops ; mov rdi, [r14 + 8]);
    e.decref_rdi();
    let error = e.error_exit();
    let (opcode, oparg) = (ins.opcode, ins.oparg);
    e.cold(slow, move |e| {
        e.call_op_helper(opcode, peregrine_runtime::jit::ops::pg_store_subscr, oparg, error);
        x64!(e.ops ; jmp =>done);
    });
    x64!(e.ops ; =>done);
}

/// The most items UNPACK_SEQUENCE copies unrolled (more: a copy loop).
const UNPACK_INLINE_MAX: u32 = 8;

/// UNPACK_SEQUENCE of an exact tuple or list of exactly `oparg` items, where the site replays
/// ceval's UNPACK_SEQUENCE_TUPLE/_TWO_TUPLE or _LIST and its guard passes.
pub fn unpack_sequence(e: &mut Emitter, ins: &Instr, site: *const Site) {
    use peregrine_runtime::jit::ops::{pg_unpack_sequence, UNPACK_LIST, UNPACK_TUPLE};
    let (slow, done, copy) = (e.label(), e.label(), e.label());
    let n = ins.oparg;
    if n == 0 || n > i32::MAX as u32 / 8 {
        x64!(e.ops ; jmp =>slow);
        slow_path(e, ins, pg_unpack_sequence, site, slow, done);
        return;
    }
    let (list_type, tuple_type) = (
        addr_of_type(std::ptr::addr_of_mut!(ffi::PyList_Type)),
        addr_of_type(std::ptr::addr_of_mut!(ffi::PyTuple_Type)),
    );
    x64!(e.ops
        ; mov rcx, QWORD site as i64
        ; movzx eax, BYTE [rcx + FORM_OFFSET]
        ; mov rdi, [r14 - 8]
        ; cmp eax, UNPACK_TUPLE as i32
        ; jne BYTE >list
        ; mov rdx, QWORD tuple_type
        ; cmp [BYTE rdi + const { d8(OB_TYPE) }], rdx
        ; jne =>slow
        ; cmp QWORD [BYTE rdi + const { d8(OB_SIZE) }], n as i32
        ; jne =>slow
        ; lea rsi, [BYTE rdi + const { d8(TUPLE_ITEMS) }]
        ; jmp =>copy
        ; list:
        ; cmp eax, UNPACK_LIST as i32
        ; jne =>slow
        ; mov rdx, QWORD list_type
        ; cmp [BYTE rdi + const { d8(OB_TYPE) }], rdx
        ; jne =>slow
        ; cmp QWORD [BYTE rdi + const { d8(OB_SIZE) }], n as i32
        ; jne =>slow
        ; mov rsi, [BYTE rdi + const { d8(LIST_ITEMS) }]
        ; =>copy
        ; add QWORD [rcx + CACHE_OFFSET + ic::HITS], 1
    );
    // Item i goes n - 1 - i slots above the sequence's own: the first ends on top.
    if n <= UNPACK_INLINE_MAX {
        for i in 0..n as i32 {
            let dest = 8 * (n as i32 - 1 - i) - 8;
            x64!(e.ops ; mov rax, [rsi + 8 * i]);
            e.incref_rax();
            x64!(e.ops ; mov [r14 + dest], rax);
        }
    } else {
        x64!(e.ops
            ; lea rdx, [r14 + 8 * (n as i32 - 2)]
            ; mov ecx, n as i32
            ; next_item:
            ; mov rax, [rsi]
        );
        e.incref_rax();
        x64!(e.ops
            ; mov [rdx], rax
            ; add rsi, 8
            ; sub rdx, 8
            ; dec ecx
            ; jnz <next_item
        );
    }
    x64!(e.ops ; add r14, 8 * (n as i32 - 1));
    e.decref_rdi(); // the sequence
    slow_path(e, ins, pg_unpack_sequence, site, slow, done);
}

/// UNPACK_SEQUENCE and the STORE_FASTs after it (to `locals`, in order) as one run: first the
/// shared routine (`Lookups::unpack_store`, one copy for all sites: a few bytes here), which does
/// the whole run where nothing can be released for the last time; where it declines, in the cold
/// section, `pg_unpack_store`, which runs the instructions as ceval does, one dispatch at a time:
/// an error is UNPACK_SEQUENCE's (its `prev_instr` stored by the prelude); where tracing went on
/// in a destructor, the frame goes to the interpreter at the instruction it names. Where the last
/// store pairs with the next instruction, `paired_next` is that instruction's entry as a second
/// half, where the helper has it go on when the last store headed the pair.
pub fn unpack_store(e: &mut Emitter, site: *const Site, locals: &[u8], paired_next: Option<DynamicLabel>) {
    use peregrine_runtime::jit::ops::{
        pg_unpack_store, pg_unpack_store_rest, UNPACK_STORE_LAST_PAIRS, UNPACK_STORE_MAX, UNPACK_STORE_PAIRED,
        UNPACK_STORE_RESUME_SHIFT,
    };
    assert!((1..=UNPACK_STORE_MAX).contains(&locals.len()), "the caller fuses 1 to {UNPACK_STORE_MAX} stores");
    let (mut low, mut high) = (0u64, (locals.len() as u64) << 56);
    if paired_next.is_some() {
        high |= UNPACK_STORE_LAST_PAIRS;
    }
    for (k, &local) in locals.iter().enumerate() {
        if k < 8 {
            low |= (local as u64) << (8 * k);
        } else {
            high |= (local as u64) << (8 * (k - 8));
        }
    }
    let (error, handoff, careful, done, rest) = (e.error_exit(), e.label(), e.label(), e.label(), e.label());
    if let Some(lookups) = shared_lookups::lookups() {
        // The run's descriptor, read by the routine: in the cold section, beside the careful path.
        let descriptor = e.label();
        let bytes: Vec<u8> = locals.to_vec();
        e.cold(descriptor, move |e| {
            x64!(e.ops ; .u64 site as u64 ; .u8 bytes.len() as u8);
            for &b in &bytes {
                x64!(e.ops ; .u8 b);
            }
        });
        x64!(e.ops ; lea rsi, [=>descriptor]);
        e.call_fn(lookups.unpack_store);
        x64!(e.ops
            ; test eax, eax
            ; jz =>careful
            ; cmp eax, 1
            ; jne =>rest
            ; =>done
        );
    } else {
        x64!(e.ops ; jmp =>careful ; =>done);
    }
    // The helper's call: from scratch (`careful`), or from store `eax - 2` on (`rest`).
    let call = move |e: &mut Emitter, from_scratch: bool| {
        let helper = if from_scratch { pg_unpack_store as *const () as usize } else { pg_unpack_store_rest as *const () as usize };
        if from_scratch {
            x64!(e.ops ; mov r9, QWORD high as i64);
        } else {
            x64!(e.ops
                ; sub eax, 2
                ; shl rax, UNPACK_STORE_RESUME_SHIFT as i8
                ; mov r9, QWORD high as i64
                ; or r9, rax
            );
        }
        x64!(e.ops
            ; mov rdi, r13
            ; mov rsi, r12
            ; mov rdx, r14
            ; mov rcx, QWORD site as i64
        );
        if low <= u32::MAX as u64 {
            x64!(e.ops ; mov r8d, low as u32 as i32);
        } else {
            x64!(e.ops ; mov r8, QWORD low as i64);
        }
        e.call_fn(helper);
        x64!(e.ops
            ; mov r14, rax
            ; test al, 1
            ; jnz =>error
            ; test rdx, rdx
            ; jz =>done
        );
        if let Some(second) = paired_next {
            x64!(e.ops ; cmp rdx, UNPACK_STORE_PAIRED as i32 ; je =>second);
        }
        x64!(e.ops ; jmp =>handoff);
    };
    e.cold(careful, move |e| call(e, true));
    e.cold(rest, move |e| call(e, false));
    e.cold(handoff, |e| e.handoff_at_rdx(ExitReason::Tracing));
}

/// FOR_ITER over an exact list, tuple or range iterator that has a next item: the item pushed
/// as their `tp_iternext` makes it, inline; an exhausted iterator and every other kind go to the
/// helper (`pg_for_iter`), which also ends the loop. The iterators' layouts are private to
/// CPython's .c files: verified at run time first (`iterator_layouts_verified`), else only the
/// helper runs.
pub fn for_iter(e: &mut Emitter, ins: &Instr, target: DynamicLabel) {
    use peregrine_runtime::cpython::layout::{iterator_layouts_verified, RangeIterObject, SeqIterObject};
    let error = e.error_exit();
    let (slow, done, push) = (e.label(), e.label(), e.label());
    // SAFETY: compiling runs with the GIL held.
    if unsafe { iterator_layouts_verified() } {
        const IT_INDEX: i32 = offset_of!(SeqIterObject, it_index) as i32;
        const IT_SEQ: i32 = offset_of!(SeqIterObject, it_seq) as i32;
        const R_INDEX: i32 = offset_of!(RangeIterObject, index) as i32;
        const R_START: i32 = offset_of!(RangeIterObject, start) as i32;
        const R_STEP: i32 = offset_of!(RangeIterObject, step) as i32;
        const R_LEN: i32 = offset_of!(RangeIterObject, len) as i32;
        let (list_iter, tuple_iter, range_iter) = (
            addr_of_type(std::ptr::addr_of_mut!(ffi::PyListIter_Type)),
            addr_of_type(std::ptr::addr_of_mut!(ffi::PyTupleIter_Type)),
            addr_of_type(std::ptr::addr_of_mut!(ffi::PyRangeIter_Type)),
        );
        let callee = ffi::PyLong_FromLong as *const () as usize;
        x64!(e.ops
            ; mov rdi, [r14 - 8]
            ; mov rax, [BYTE rdi + const { d8(OB_TYPE) }]
            ; mov rdx, QWORD range_iter
            ; cmp rax, rdx
            ; jne BYTE >not_range
            ; mov rcx, [BYTE rdi + const { d8(R_INDEX) }]
            ; cmp rcx, [BYTE rdi + const { d8(R_LEN) }]
            ; jge =>slow                       // exhausted
            ; mov rax, rcx
            ; imul rax, [BYTE rdi + const { d8(R_STEP) }]         // as unsigned: wraps, as rangeiter_next's cast
            ; add rax, [BYTE rdi + const { d8(R_START) }]
            ; add rcx, 1
            ; mov [BYTE rdi + const { d8(R_INDEX) }], rcx
            ; mov rdi, rax
        );
        e.call_fn(callee);
        x64!(e.ops
            ; test rax, rax
            ; jz =>error                        // MemoryError: the iterator stays, as in ceval
            ; jmp BYTE >pushed
            ; not_range:
            ; mov rdx, QWORD list_iter
            ; cmp rax, rdx
            ; jne BYTE >not_list
            ; mov rsi, [BYTE rdi + const { d8(IT_SEQ) }]
            ; test rsi, rsi
            ; jz =>slow
            ; mov rcx, [BYTE rdi + const { d8(IT_INDEX) }]
            ; cmp rcx, [BYTE rsi + const { d8(OB_SIZE) }]
            ; jge =>slow                       // the end (the helper drops the list)
            ; mov rdx, [BYTE rsi + const { d8(LIST_ITEMS) }]
            ; mov rax, [rdx + rcx * 8]
            ; jmp =>push
            ; not_list:
            ; mov rdx, QWORD tuple_iter
            ; cmp rax, rdx
            ; jne =>slow
            ; mov rsi, [BYTE rdi + const { d8(IT_SEQ) }]
            ; test rsi, rsi
            ; jz =>slow
            ; mov rcx, [BYTE rdi + const { d8(IT_INDEX) }]
            ; cmp rcx, [BYTE rsi + const { d8(OB_SIZE) }]
            ; jge =>slow
            ; mov rax, [rsi + rcx * 8 + TUPLE_ITEMS]
            ; =>push
            ; add rcx, 1
            ; mov [BYTE rdi + const { d8(IT_INDEX) }], rcx
        );
        e.incref_rax();
        x64!(e.ops
            ; pushed:
            ; mov [r14], rax
            ; add r14, 8
        );
    } else {
        x64!(e.ops ; jmp =>slow);
    }
    // Generators are resumed by machine code (`direct_entry`), everything else by pg_for_iter;
    // in the cold section, as is the end of a list, tuple or range.
    let (opcode, helper) = (ins.opcode, crate::direct_entry::for_iter_stub());
    e.cold(slow, move |e| {
        e.call_op_helper_branching(opcode, helper, error, target);
        x64!(e.ops ; jmp =>done);
    });
    x64!(e.ops ; =>done);
}

// The sizes truth tests read, all at one offset (checked here and, for the structs, by the
// layout test against the C compiler).
const _: () = {
    assert!(offset_of!(ffi::PyVarObject, ob_size) == OB_SIZE as usize);
    assert!(offset_of!(DictObject, ma_used) == OB_SIZE as usize);
    assert!(offset_of!(ffi::PyASCIIObject, length) == OB_SIZE as usize);
};

/// UNARY_NOT of True and False, and of None and the exact sized builtins by the shared truth
/// routine (none of them asks Python code, as `PyObject_IsTrue` finds), inline: the operand
/// released, then the result in its place, as ceval does. Anything else through the helper.
pub fn unary_not(e: &mut Emitter, ins: &Instr) {
    use peregrine_runtime::jit::ops::pg_unary_not;
    let (slow, done) = (e.label(), e.label());
    // SAFETY-free: the bool singletons' addresses, compared by identity.
    let (py_true, py_false) = unsafe { (ffi::Py_True() as i64, ffi::Py_False() as i64) };
    x64!(e.ops
        ; mov rdi, [r14 - 8]
        ; mov rax, QWORD py_true
        ; cmp rdi, rax
        ; je >is_true
        ; mov rax, QWORD py_false
        ; cmp rdi, rax
        ; je >is_false
    );
    match shared_lookups::lookups() {
        Some(lookups) => {
            e.call_fn(lookups.truth);
            x64!(e.ops
                ; test eax, eax
                ; js =>slow
                ; mov ebx, eax
                ; jmp >known
            );
        }
        None => x64!(e.ops ; jmp =>slow),
    }
    x64!(e.ops
        ; is_true:
        ; mov ebx, 1
        ; jmp >known
        ; is_false:
        ; xor ebx, ebx
        ; known:
    );
    e.decref_rdi(); // the operand; `ebx` (its truth) survives a destructor
    x64!(e.ops
        ; mov rax, QWORD py_false
        ; mov rdx, QWORD py_true
        ; test ebx, ebx
        ; cmovz rax, rdx
        ; mov [r14 - 8], rax
    );
    e.incref_rax();
    let (opcode, oparg, error) = (ins.opcode, ins.oparg, e.error_exit());
    e.cold(slow, move |e| {
        e.call_op_helper(opcode, pg_unary_not, oparg, error);
        x64!(e.ops ; jmp =>done);
    });
    x64!(e.ops ; =>done);
}

/// For a conditional jump's value in `rdi` (already popped) that is not True or False: the
/// truth of None and of exact ints, lists, tuples, dicts and strs by the shared routine
/// (`shared_lookups`, one copy for all sites: None is false; the others are true when the
/// size, length or count at offset 16 is not zero, as their `nb_bool`/`mp_length` say),
/// releasing the value, then on to `on_true` or `on_false`. Other values fall through to the
/// caller's generic path with `rdi` unchanged.
pub fn truth_inline(e: &mut Emitter, on_true: DynamicLabel, on_false: DynamicLabel) {
    let Some(lookups) = shared_lookups::lookups() else {
        return; // the generic path follows
    };
    let generic = e.label();
    e.call_fn(lookups.truth);
    x64!(e.ops
        ; test eax, eax
        ; js =>generic
        ; mov ebx, eax
    );
    e.decref_rdi();
    x64!(e.ops
        ; test bl, bl
        ; jnz =>on_true
        ; jmp =>on_false
        ; =>generic
    );
}

/// PRECALL: where the site runs PRECALL_PYFUNC (a Python function was called here once warm),
/// its guard, the callable's exact type, inline: the form runs for the CALL (`Site::running`)
/// and nothing else happens, as `Site::execute` does when a form's guard passes. Everything
/// else is in the cold section: first, for a call without keywords, the handler of the site's
/// form (`precall_forms::C_FORM_HANDLERS`, by the form's number), which runs a form that calls a
/// C function together with the CALL it skips (as ceval's forms do) and then jumps past the
/// CALL (`next` is the CALL), or misses; then, for the rest (cold code, other forms, a guard
/// that fails), `pg_precall`. Raises only from the C function's call.
pub fn precall(e: &mut Emitter, ins: &Instr, next: Option<&Instr>, site: *const Site, kwnames: *mut ffi::PyObject) {
    use peregrine_runtime::jit::ops::pg_precall;
    use peregrine_runtime::jit::precall_forms::{C_FORM_HANDLERS, PRECALL_PYFUNC};
    let (slow, done) = (e.label(), e.label());
    let oparg = ins.oparg as i32;
    // Where a C form's call goes on: the instruction after the CALL, with the error exit and
    // eval-breaker check CALL would have made, asked for here (cold paths cannot ask).
    let after_call = next
        .filter(|call| call.opcode == op::CALL && kwnames.is_null() && !site.is_null())
        .and_then(|call| e.start_label(call.next))
        .map(|label| {
            let error = e.error_exit();
            (label, error, e.pending_after_call(error))
        });
    let function_type = addr_of_type(std::ptr::addr_of_mut!(ffi::PyFunction_Type));
    // Where the CALL makes a direct call, the fast path below has made its checks: it goes
    // straight to the call, and the rest of CALL's entry (tracing check, the callable's type)
    // is in the cold section, for the slow path (`templates::gen_fused_call`).
    let fused = next.is_some_and(|call| call.opcode == op::CALL)
        && kwnames.is_null()
        && !site.is_null()
        && crate::direct_entry::call_stub().is_some();
    let resume = if fused {
        let (entry, checked) = (e.label(), e.label());
        e.fused_call = Some((entry, checked));
        entry
    } else {
        done
    };
    x64!(e.ops
        ; mov rcx, QWORD site as i64
        ; cmp BYTE [rcx + FORM_OFFSET], PRECALL_PYFUNC as i8
        ; jne =>slow
        // The callable: the method slot if it is set (a method call), else the one above it.
        ; mov rax, [r14 - 8 * (oparg + 2)]
        ; test rax, rax
        ; jnz BYTE >callable
        ; mov rax, [r14 - 8 * (oparg + 1)]
        ; callable:
        ; mov rdx, QWORD function_type
        ; cmp [BYTE rax + const { d8(OB_TYPE) }], rdx
        ; jne =>slow
        ; mov BYTE [rcx + RUNNING_OFFSET], PRECALL_PYFUNC as i8
    );
    if !fused {
        e.bind(done);
    }
    let opcode = ins.opcode;
    e.cold(slow, move |e| {
        if let Some((after_call, error, pending)) = after_call {
            let generic = e.label();
            let handlers = C_FORM_HANDLERS.as_ptr() as i64;
            // rcx still holds the site: both jumps here follow its load and leave it.
            x64!(e.ops
                ; movzx eax, BYTE [rcx + FORM_OFFSET]
                ; mov r8, rcx
                ; mov rdi, r13
                ; mov rsi, r12
                ; mov rdx, r14
                ; mov ecx, oparg
                ; mov r9, QWORD handlers
                ; call QWORD [r9 + rax * 8]
                ; test rax, rax
                ; jz =>generic
            );
            e.check_helper_moved(op::CALL, oparg as u32);
            x64!(e.ops
                ; mov r14, rax
                ; test al, 1
                ; jnz =>error
            );
            e.emit_pending_check(pending);
            x64!(e.ops
                ; jmp =>after_call
                ; =>generic
            );
        }
        let callee = pg_precall as *const () as usize;
        x64!(e.ops
            ; mov rdi, r13
            ; mov rsi, r12
            ; mov rdx, r14
            ; mov ecx, oparg
            ; mov r9, QWORD site as i64
        );
        e.load_r8(kwnames as u64);
        e.call_fn(callee);
        e.check_helper_moved(opcode, oparg as u32);
        x64!(e.ops ; mov r14, rax ; jmp =>resume);
    });
}
