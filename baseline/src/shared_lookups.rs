//! The inline caches' lookups, emitted once and called by every site: LOAD_GLOBAL, LOAD_ATTR
//! and LOAD_METHOD each have one routine that reads the site's cache, checks it against the
//! operands and leaves the cached value, or says "miss". The template around the call keeps
//! what differs per site (the cache's address, the stack's shape, the reference counts, the
//! slow path).
//!
//! Why not inline: a template that checks every cache kind in line is 365-490 bytes per site,
//! and real programs have thousands of sites: the main job's compiled code missed the
//! instruction cache on 4.6% of its instructions (cachegrind), five times the interpreter's
//! rate. One copy of each lookup stays in the cache for all sites; the call and return cost a
//! few cycles and are predicted.
//!
//! The truth tests' cold path (a value other than True and False) shares a routine for the
//! same reason: [`Lookups::truth`] classifies None and the sized builtins.
//!
//! Convention (the compiled code's registers, `emitter`): `r12` frame, `r13` thread state,
//! `r14` stack, left alone. In: `rcx` = the site's cache, `rdi` = the owner (LOAD_ATTR,
//! LOAD_METHOD). LOAD_ATTR and LOAD_METHOD try the cache's ways in turn (`inline_cache::Way`).
//! Out on a hit: `rax` = the cached value, borrowed and not null, the hit count of the way that
//! served it incremented, `rcx` that way (the cache itself for LOAD_GLOBAL), `rdi` as it came
//! in; LOAD_METHOD also leaves `edx` = 1 for a
//! method (push method, self) or 0 for a module attribute (push NULL, attribute). Out on a
//! miss: `rax` = 0, nothing changed, the other registers undefined. The caller-saved registers
//! and `rbx` are clobbered. The routines run no Python code and cannot raise: each step is
//! one the inline version took (the kinds' documentation in `inline_cache` says why each guard
//! suffices).

use crate::offsets::*;
use crate::emitter::x64;
use dynasmrt::x64::Assembler;
use dynasmrt::{dynasm, DynasmApi, DynasmLabelApi, ExecutableBuffer};
use peregrine_runtime::cpython::layout::{DICT_KEYS_GENERAL, DICT_KEYS_UNICODE};
use peregrine_runtime::cpython::ffi;
use peregrine_runtime::jit::inline_cache::{self as ic, kind};
use std::sync::OnceLock;


/// The routines' addresses, emitted on first use into one buffer.
pub struct Lookups {
    _buffer: ExecutableBuffer,
    pub load_global: usize,
    pub load_attr: usize,
    pub load_method: usize,
    /// In: `rdi` = a value that is neither True nor False. Out: `eax` = 0 if it is None or an
    /// exact int, list, tuple, dict or str of size 0, 1 if one of those of another size, -1 for
    /// anything else (whose truth only the generic path may ask: it can run code). Clobbers
    /// `rax` and `rdx` only; references untouched.
    pub truth: usize,
    /// UNPACK_SEQUENCE and the STORE_FASTs after it where nothing can die: see
    /// [`emit_unpack_store`]. In: `rsi` = the run's descriptor (`fast_paths::unpack_store`),
    /// `r12` frame, `r14` stack. Out: `eax` = 1 and the run done (`r14` one lower), or 0 with
    /// nothing changed. Clobbers the caller-saved registers.
    pub unpack_store: usize,
}

static LOOKUPS: OnceLock<Option<Lookups>> = OnceLock::new();

/// The shared lookups, or `None` if no executable memory could be had (sites then always take
/// their slow path, which is the generic instruction).
pub fn lookups() -> Option<&'static Lookups> {
    LOOKUPS.get_or_init(|| emit().ok()).as_ref()
}

fn emit() -> std::io::Result<Lookups> {
    let mut ops = Assembler::new()?;
    let load_global = ops.offset();
    emit_load_global(&mut ops);
    let load_attr = ops.offset();
    emit_load_attr(&mut ops);
    let load_method = ops.offset();
    emit_load_method(&mut ops);
    let truth = ops.offset();
    emit_truth(&mut ops);
    let unpack_store = ops.offset();
    emit_unpack_store(&mut ops);
    let buffer = ops.finalize().map_err(|_| std::io::Error::other("could not make the cache lookups executable"))?;
    let at = |o: dynasmrt::AssemblyOffset| buffer.ptr(o) as usize;
    Ok(Lookups {
        load_global: at(load_global),
        load_attr: at(load_attr),
        load_method: at(load_method),
        truth: at(truth),
        unpack_store: at(unpack_store),
        _buffer: buffer,
    })
}

/// [`Lookups::truth`]: ceval's `PyObject_IsTrue` for None and the exact sized builtins, whose
/// truth is their size (`ob_size`, and `ma_used` and the str's length at the same offset), which
/// asks no Python code.
fn emit_truth(ops: &mut Assembler) {
    // SAFETY-free: static objects' addresses, compared by identity.
    let none = unsafe { ffi::Py_None() } as i64;
    x64!(ops
        ; mov rax, QWORD none
        ; cmp rdi, rax
        ; je >falsy
        ; mov rax, [BYTE rdi + const { d8(OB_TYPE) }]
    );
    for tp in [
        std::ptr::addr_of_mut!(ffi::PyLong_Type),
        std::ptr::addr_of_mut!(ffi::PyList_Type),
        std::ptr::addr_of_mut!(ffi::PyTuple_Type),
        std::ptr::addr_of_mut!(ffi::PyDict_Type),
        std::ptr::addr_of_mut!(ffi::PyUnicode_Type),
    ] {
        x64!(ops
            ; mov rdx, QWORD tp as i64
            ; cmp rax, rdx
            ; je >sized
        );
    }
    x64!(ops
        ; mov eax, -1
        ; ret
        ; sized:
        ; xor eax, eax
        ; cmp QWORD [BYTE rdi + const { d8(OB_SIZE) }], 0
        ; setne al
        ; ret
        ; falsy:
        ; xor eax, eax
        ; ret
    );
}

/// Offsets in a run's descriptor (`fast_paths::unpack_store`): the UNPACK_SEQUENCE's site, the
/// number of stores, their locals (a byte each).
pub const RUN_SITE: i32 = 0;
pub const RUN_COUNT: i32 = 8;
pub const RUN_LOCALS: i32 = 9;

/// [`Lookups::unpack_store`]: UNPACK_SEQUENCE of an exact tuple or list of the run's length where
/// the site replays ceval's UNPACK_SEQUENCE_TUPLE or _LIST (the inline template's guard), then
/// the run's STORE_FASTs, the items copied from the sequence straight into the locals, as long
/// as no old value is released for the last time: until then no code runs, so neither
/// `prev_instr`, nor a tracing check, nor ceval's pairing of the stores shows, nor when the
/// sequence itself is released (freeing it runs nothing either: its items live on in the
/// locals). At store k whose old value would die it stops, with items k to n - 1 pushed as
/// UNPACK_SEQUENCE leaves them (item k on top) and the sequence released, as ceval releases it
/// before that store: `eax` = k + 2, and `ops::pg_unpack_store_rest` goes on one dispatch at a
/// time.
/// `eax` = 1 when the run is done, 0 when it declined, having changed nothing
/// (`ops::pg_unpack_store` then runs it all).
fn emit_unpack_store(ops: &mut Assembler) {
    use peregrine_runtime::cpython::ref_debug;
    use peregrine_runtime::jit::ops::{UNPACK_LIST, UNPACK_TUPLE};
    use peregrine_runtime::jit::specialize::{CACHE_OFFSET, FORM_OFFSET};
    let (tuple_type, list_type) = (
        std::ptr::addr_of_mut!(ffi::PyTuple_Type) as i64,
        std::ptr::addr_of_mut!(ffi::PyList_Type) as i64,
    );
    // Freeing the sequence (an exact tuple or list whose items all live on) runs no Python code.
    let dealloc = peregrine_runtime::cpython::_Py_Dealloc as *const () as i64;
    // A debug interpreter's reference total: n increfs in all, then the releases (`ecx` counts
    // the old values') and the sequence's.
    let ref_total = |ops: &mut Assembler| {
        if ref_debug::ENABLED {
            x64!(ops
                ; mov rax, rdx
                ; sub rax, rcx
                ; sub rax, 1
                ; mov r11, QWORD ref_debug::total_addr() as i64
                ; add [r11], rax
            );
        }
    };
    x64!(ops
        ; mov rcx, [rsi + RUN_SITE]
        ; mov rdi, [r14 - 8]                 // the sequence
        ; movzx edx, BYTE [rsi + RUN_COUNT]
        ; movzx eax, BYTE [rcx + FORM_OFFSET]
        ; mov r8, [BYTE rdi + const { d8(OB_TYPE) }]
        ; cmp eax, UNPACK_TUPLE as i32
        ; jne >list
        ; mov r9, QWORD tuple_type
        ; cmp r8, r9
        ; jne >decline
        ; cmp [BYTE rdi + const { d8(OB_SIZE) }], rdx
        ; jne >decline
        ; lea r8, [BYTE rdi + const { d8(TUPLE_ITEMS) }]
        ; jmp >check
        ; list:
        ; cmp eax, UNPACK_LIST as i32
        ; jne >decline
        ; mov r9, QWORD list_type
        ; cmp r8, r9
        ; jne >decline
        ; cmp [BYTE rdi + const { d8(OB_SIZE) }], rdx
        ; jne >decline
        ; mov r8, [BYTE rdi + const { d8(LIST_ITEMS) }]
        ; check:
        ; add QWORD [rcx + CACHE_OFFSET + ic::HITS], 1
        ; xor ecx, ecx                       // old values released
        ; xor r9d, r9d
        ; store:
        ; movzx r10d, BYTE [rsi + r9 + RUN_LOCALS]
        ; lea r10, [r12 + r10 * 8 + F_LOCALSPLUS]
        ; mov r11, [r10]
        ; test r11, r11
        ; jz >set
        ; cmp QWORD [r11], 1
        ; je >rest                           // the old value would die: one dispatch at a time
        ; set:
        ; mov rax, [r8 + r9 * 8]
        ; inc QWORD [rax]
        ; mov [r10], rax
        ; test r11, r11
        ; jz >next
        ; dec QWORD [r11]                    // not to zero: checked
        ; inc ecx
        ; next:
        ; inc r9
        ; cmp r9, rdx
        ; jb <store
        ; sub r14, 8
    );
    ref_total(ops);
    x64!(ops
        ; mov eax, 1
        ; dec QWORD [rdi]                    // the sequence, now that nothing else can run
        ; jz >free_sequence
        ; ret
        ; free_sequence:
        ; sub rsp, 8                         // aligns the stack for the call
        ; mov rax, QWORD dealloc
        ; call rax
        ; add rsp, 8
        ; mov eax, 1
        ; ret
        // Store r9 (k) would release its old value for the last time: items k.. n - 1 go where
        // UNPACK_SEQUENCE leaves them, item j at the sequence's slot + n - 1 - j.
        ; rest:
        ; mov r10, r9
        ; push:
        ; mov rax, [r8 + r10 * 8]
        ; inc QWORD [rax]
        ; mov r11, rdx
        ; sub r11, r10
        ; mov [r14 + r11 * 8 - 16], rax
        ; inc r10
        ; cmp r10, rdx
        ; jb <push
        ; mov rax, rdx
        ; sub rax, r9
        ; lea r14, [r14 + rax * 8 - 8]
    );
    ref_total(ops);
    x64!(ops
        // The sequence, before any store releases anything for the last time (as ceval's
        // UNPACK_SEQUENCE releases it before the stores; the stores so far ran nothing).
        ; dec QWORD [rdi]
        ; jnz >released
        ; push r9                            // also aligns the stack for the call
        ; mov rax, QWORD dealloc
        ; call rax
        ; pop r9
        ; released:
        ; lea eax, [r9 + 2]
        ; ret
        ; decline:
        ; xor eax, eax
        ; ret
    );
}

/// The owner's type's version against the cache's key (`rdi` owner, `rcx` cache), else `miss`.
macro_rules! guard_type_version {
    ($ops:expr) => {
        x64!($ops
            ; mov rax, [BYTE rdi + const { d8(OB_TYPE) }]
            ; mov edx, DWORD [rax + TP_VERSION]
            ; cmp rdx, [rcx + ic::KEY]
            ; jne >miss
        )
    };
}

/// The owner, a module (`rdi`), still has the dict version the cache saw (`KEY2`), else `miss`.
macro_rules! guard_module_version {
    ($ops:expr) => {
        x64!($ops
            ; mov rax, [BYTE rdi + const { d8(MD_DICT) }]
            ; test rax, rax
            ; jz >miss                           // cleared by the GC (tp_clear) while still alive
            ; mov rax, [BYTE rax + const { d8(MA_VERSION) }]
            ; cmp rax, [rcx + ic::KEY2]
            ; jne >miss
        )
    };
}

/// Looks the way's name up in the dict at `[rdi + dict_disp]` if it was made and its keys are
/// all strs (such a lookup runs no Python code and cannot fail), else `miss`. Leaves the value
/// (borrowed) or null in `rax`; `rcx` and `rdi` kept. Entered with `rsp` 8 below a 16-byte
/// boundary (just called), so one push aligns it for the C call.
macro_rules! dict_lookup_at {
    ($ops:expr, $dict_disp:expr) => {
        x64!($ops ; mov rax, [rdi + $dict_disp]);
        dict_lookup_rax!($ops)
    };
}

/// [`dict_lookup_at`] of the dict (or null) in `rax`.
macro_rules! dict_lookup_rax {
    ($ops:expr) => {
        x64!($ops
            ; test rax, rax
            ; jz >miss
            ; mov rdx, [BYTE rax + const { d8(MA_KEYS) }]
            ; cmp BYTE [BYTE rdx + const { d8(DK_KIND) }], DICT_KEYS_GENERAL as i8
            ; je >miss
            ; push rcx
            ; mov rbx, rdi
            ; mov rdi, rax
            ; mov rsi, [rcx + ic::NAME]
            ; mov rax, QWORD ffi::PyDict_GetItemWithError as *const () as usize as i64
            ; call rax
            ; pop rcx
            ; mov rdi, rbx
        )
    };
}

/// The end of a lookup through the ways of a cache (`rcx`): a miss tries the next way, from
/// `start`, until there is none (`rdi` is the owner again at every `miss`).
macro_rules! next_way_or_miss {
    ($ops:expr) => {
        x64!($ops
            ; miss:
            ; mov rcx, [rcx + ic::NEXT_WAY]
            ; test rcx, rcx
            ; jnz <start
            ; xor eax, eax
            ; ret
        )
    };
}

/// LOAD_GLOBAL: the name's entry among the globals (`GLOBAL_MODULE`), or a builtin with both
/// dicts in the versions the cache saw (`GLOBAL_BUILTIN`).
fn emit_load_global(ops: &mut Assembler) {
    let dict_type = std::ptr::addr_of_mut!(ffi::PyDict_Type) as i64;
    x64!(ops
        ; mov r8, [BYTE r12 + const { d8(F_GLOBALS) }]
        // A dict subclass is looked up with its own __getitem__: the generic path.
        ; mov rdx, QWORD dict_type
        ; cmp [BYTE r8 + const { d8(OB_TYPE) }], rdx
        ; jne >miss
        ; cmp DWORD [rcx + ic::KIND], kind::GLOBAL_MODULE as i32
        ; jne >builtin
        ; mov rax, [BYTE r8 + const { d8(MA_KEYS) }]
        ; cmp BYTE [BYTE rax + const { d8(DK_KIND) }], DICT_KEYS_GENERAL as i8
        ; je >miss                           // entries of another layout
        ; mov rdx, [rcx + ic::VALUE]
        ; cmp rdx, [BYTE rax + const { d8(DK_NENTRIES) }]
        ; jae >miss
        // The entry: after the index table, 1 << dk_log2_index_bytes bytes.
        ; mov r9, rcx
        ; movzx ecx, BYTE [BYTE rax + const { d8(DK_LOG2_INDEX_BYTES) }]
        ; mov r10d, 1
        ; shl r10, cl
        ; add r10, rax
        ; shl rdx, 4                         // 16 bytes per PyDictUnicodeEntry
        ; add r10, rdx
        ; mov rcx, r9
        ; mov rax, [rcx + ic::NAME]
        ; cmp [BYTE r10 + const { d8(DK_INDICES) }], rax
        ; jne >miss                          // another key (or a deleted one) there now
        ; mov rax, [BYTE r10 + const { d8(DK_INDICES + 8) }]
        ; test rax, rax
        ; jz >miss
        ; add QWORD [rcx + ic::HITS], 1
        ; ret
        ; builtin:
        ; mov rax, [BYTE r8 + const { d8(MA_VERSION) }]
        ; cmp rax, [rcx + ic::KEY]
        ; je >globals_unchanged
        ; cmp DWORD [rcx + ic::KIND], kind::GLOBAL_BUILTIN as i32
        ; jne >miss
        // The globals changed: still without the name? (str keys: the lookup runs no Python
        // code and cannot fail.) Then remember their new version.
        ; mov rax, [BYTE r8 + const { d8(MA_KEYS) }]
        ; cmp BYTE [BYTE rax + const { d8(DK_KIND) }], DICT_KEYS_GENERAL as i8
        ; je >miss
        ; push rcx                           // also aligns rsp for the call
        ; mov rdi, r8
        ; mov rsi, [rcx + ic::NAME]
        ; mov rax, QWORD ffi::PyDict_GetItemWithError as *const () as usize as i64
        ; call rax
        ; pop rcx
        ; test rax, rax
        ; jnz >miss
        ; mov r8, [BYTE r12 + const { d8(F_GLOBALS) }]
        ; mov rax, [BYTE r8 + const { d8(MA_VERSION) }]
        ; mov [rcx + ic::KEY], rax
        ; globals_unchanged:
        ; mov rax, [BYTE r12 + const { d8(F_BUILTINS) }]        // any mapping: check it is a dict before reading
        ; mov rdx, QWORD dict_type
        ; cmp [BYTE rax + const { d8(OB_TYPE) }], rdx
        ; jne >miss
        ; mov rax, [BYTE rax + const { d8(MA_VERSION) }]
        ; cmp rax, [rcx + ic::KEY2]
        ; jne >miss
        ; mov rax, [rcx + ic::VALUE]
        ; add QWORD [rcx + ic::HITS], 1
        ; ret
        ; miss:
        ; xor eax, eax
        ; ret
    );
}

/// LOAD_ATTR: an instance value (in the values array or the instance's dict, managed or at the
/// type's dict offset), a slot, a class's attribute or a module attribute.
fn emit_load_attr(ops: &mut Assembler) {
    x64!(ops ; start:);
    guard_type_version!(ops);
    x64!(ops
        ; mov edx, DWORD [rcx + ic::KIND]
        ; cmp edx, kind::INSTANCE_DICT_AT as i32
        ; je >dict_at
        ; cmp edx, kind::CLASS_ATTR as i32
        ; je >class_attr
        ; cmp edx, kind::INSTANCE_DICT as i32
        ; je >dict_hint
        ; cmp edx, kind::INSTANCE_VALUE as i32
        ; jne >not_values
        ; mov rax, [rdi + ic::VALUES_DISP]
        ; test rax, rax
        ; jz >made                           // the instance's dict was made: no values
        ; values_at:                         // a values array in rax: the way's index
        ; mov rdx, [rcx + ic::VALUE]
        ; mov rax, [rax + rdx * 8]
        ; test rax, rax
        ; jz >miss                           // not set: the class's value or AttributeError
        ; jmp >hit
        // The dict made from the values: while split with the type's shared keys, its values
        // array holds the name's value at the same index; once combined, the hint.
        ; made:
        ; mov rax, [rdi + ic::DICT_DISP]
        ; test rax, rax
        ; jz >miss
        ; mov r8, [BYTE rax + const { d8(MA_VALUES) }]
        ; test r8, r8
        ; jz >hinted                         // combined: the dict is in rax
        ; mov rdx, [BYTE rdi + const { d8(OB_TYPE) }]
        ; mov rdx, [rdx + HT_CACHED_KEYS]
        ; cmp rdx, [BYTE rax + const { d8(MA_KEYS) }]
        ; jne >with_dict
        ; mov rax, r8
        ; jmp <values_at
        // kind::INSTANCE_DICT: the entry at the hint (KEY2) of a combined table of str keys
        // holding this very name and a value is the lookup's answer; else the lookup.
        ; dict_hint:
        ; mov rax, [rdi + ic::DICT_DISP]
        ; test rax, rax
        ; jz >miss                           // no dict: the class's value or AttributeError
        ; hinted:
        ; mov rdx, [BYTE rax + const { d8(MA_KEYS) }]
        ; cmp BYTE [BYTE rdx + const { d8(DK_KIND) }], DICT_KEYS_UNICODE as i8
        ; jne >with_dict
        ; mov r8, [rcx + ic::KEY2]
        ; cmp r8, [BYTE rdx + const { d8(DK_NENTRIES) }]
        ; jae >with_dict
        ; mov r9, rcx
        ; movzx ecx, BYTE [BYTE rdx + const { d8(DK_LOG2_INDEX_BYTES) }]
        ; mov r10d, 1
        ; shl r10, cl
        ; mov rcx, r9
        ; add r10, rdx
        ; shl r8, 4                          // 16 bytes per PyDictUnicodeEntry
        ; add r10, r8
        ; mov rax, [rcx + ic::NAME]
        ; cmp [BYTE r10 + const { d8(DK_INDICES) }], rax
        ; jne >with_dict
        ; mov rax, [BYTE r10 + const { d8(DK_INDICES + 8) }]
        ; test rax, rax
        ; jz >with_dict
        ; jmp >hit
        ; with_dict:
    );
    dict_lookup_at!(ops, ic::DICT_DISP);
    x64!(ops
        ; test rax, rax
        ; jz >miss                           // not there: the class's value or AttributeError
        ; jmp >hit
        ; not_values:
        ; cmp edx, kind::SLOT as i32
        ; jne >module
        ; mov rdx, [rcx + ic::VALUE]
        ; mov rax, [rdi + rdx]
        ; test rax, rax
        ; jz >miss
        ; jmp >hit
        ; class_attr:                        // the owner is a class: its own version
        ; mov eax, DWORD [rdi + TP_VERSION]
        ; cmp rax, [rcx + ic::KEY2]
        ; jne >miss
        ; mov rax, [rcx + ic::VALUE]
        ; jmp >hit
        ; module:                            // kind::MODULE, the only other LOAD_ATTR kind
    );
    guard_module_version!(ops);
    x64!(ops
        ; mov rax, [rcx + ic::VALUE]
        ; jmp >hit
        ; dict_at:                           // the dict at the type's offset (way VALUE)
        ; mov rdx, [rcx + ic::VALUE]
        ; mov rax, [rdi + rdx]
    );
    dict_lookup_rax!(ops);
    x64!(ops
        ; test rax, rax
        ; jz >miss                           // not there: the class's value or AttributeError
        ; hit:
        ; add QWORD [rcx + ic::HITS], 1
        ; ret
    );
    next_way_or_miss!(ops);
}

/// LOAD_METHOD: a method of the type (instance without a dict, or whose values cannot shadow
/// it; `edx` = 1) or a module attribute (`edx` = 0).
fn emit_load_method(ops: &mut Assembler) {
    x64!(ops ; start:);
    guard_type_version!(ops);
    x64!(ops
        ; mov edx, DWORD [rcx + ic::KIND]
        ; cmp edx, kind::METHOD_NO_DICT as i32
        ; je >method
        ; cmp edx, kind::METHOD_WITH_VALUES as i32
        ; jne >module
        ; cmp QWORD [rdi + ic::DICT_DISP], 0
        ; jne >with_dict                     // the instance has a dict, which may shadow it
        ; mov rax, [rcx + ic::KEY2]
        ; mov rdx, [BYTE rdi + const { d8(OB_TYPE) }]
        ; cmp rax, [rdx + HT_CACHED_KEYS]
        ; jne >miss
        ; mov rax, [BYTE rax + const { d8(DK_NENTRIES) }]
        ; cmp rax, [rcx + ic::KEY3]
        ; jne >miss                          // names were added to the shared keys
        ; jmp >method
        ; with_dict:
    );
    dict_lookup_at!(ops, ic::DICT_DISP);
    x64!(ops
        ; test rax, rax
        ; jnz >miss                          // shadowed by the instance
        ; method:
        ; add QWORD [rcx + ic::HITS], 1
        ; mov rax, [rcx + ic::VALUE]
        ; mov edx, 1
        ; ret
        ; module:                            // kind::MODULE
    );
    guard_module_version!(ops);
    x64!(ops
        ; add QWORD [rcx + ic::HITS], 1
        ; mov rax, [rcx + ic::VALUE]
        ; xor edx, edx
        ; ret
    );
    next_way_or_miss!(ops);
}
