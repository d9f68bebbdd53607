//! Inline caches: the data a template's fast path checks without calling out, filled and
//! refilled by the slow path (the helpers here, which also run the generic instruction), and
//! read back as the type profile (`peregrine.profile(func)`, tier 2's input).
//!
//! One [`InlineCache`] lives in each [`Site`](super::specialize::Site). Its layout is fixed
//! (`repr(C)`, offsets below) because machine code reads it. `kind` says which fast path is armed;
//! `key`, `key2`, `key3` are what that path compares, `value` what it then uses (see [`kind`]).
//! BINARY_OP's inline paths (exact floats, one-digit ints) need no key: its cache stays unarmed
//! and counts float hits in `key2`, int hits in `key3`, for the profile.
//! An unarmed cache holds [`NO_KEY`] in `key`, which no type version (32 bits) or dict version
//! (a counter far from 2^64) equals, so the first compare fails and no separate "armed" test is
//! needed.
//!
//! Every fast path is exact by construction: it runs only where its guards prove the generic
//! path would take the same steps (see each kind), and the slow path is the generic instruction.
//! A cache never owns a reference: what it points at is kept alive by what its guards check (a
//! dict in the same version holds its values; a type in the same version holds its methods).

use super::ops::push_global;
use super::specialize::Site;
use super::support::{name_at, peek};
use super::Sp;
use crate::cpython::layout::{DictObject, ModuleObject, DICT_KEYS_GENERAL, DICT_KEYS_UNICODE, MANAGED_DICT_OFFSET, MANAGED_VALUES_OFFSET};
use crate::cpython::{ffi, InterpreterFrame, ThreadState};
use crate::semantics::{self, attrs::OnType};
use ffi::PyObject;
use std::cell::{Cell, RefCell};
use std::mem::offset_of;

/// `key` of an unarmed cache.
pub const NO_KEY: u64 = u64::MAX;

/// Which fast path a cache has armed. Per kind: what `key`, `key2`, `key3` and `value` hold.
pub mod kind {
    /// Nothing armed.
    pub const NONE: u32 = 0;
    /// LOAD_GLOBAL of a name found among the globals: `value` = the index of its entry in the
    /// globals dict's keys, `name` the name. The guard reads the frame's globals: an exact
    /// dict of str keys whose entry at that index holds this very name and a value. Whatever
    /// dict that is, its live entry for the name is what a lookup finds, so no version is needed.
    pub const GLOBAL_MODULE: u32 = 1;
    /// LOAD_GLOBAL of a builtin: `key` = the globals dict's version tag, `key2` = the builtins
    /// dict's, `value` = the object. Equal tags mean the very dicts, unchanged; when only the
    /// globals changed, the name's absence there is checked with a lookup (a dict of str keys:
    /// no Python code runs) and the new tag remembered.
    pub const GLOBAL_BUILTIN: u32 = 9;
    /// LOAD_ATTR/STORE_ATTR of an instance attribute of a type with a managed dict: `key` = type
    /// version, `value` = index in the values array. The type has nothing under the name, or a
    /// class attribute an instance's own overrides (`OnType::Shadowable`: an instance without
    /// it misses), and the generic protocol. An instance whose dict was made is looked up in
    /// that dict: LOAD_ATTR reads a split dict that still shares the type's keys at the same
    /// index (its values array is the instance's values, moved), and a combined table of str
    /// keys at the hint `key2` as [`INSTANCE_DICT`] does; else a C call (`name` the
    /// attribute's name) when its keys are all strs.
    pub const INSTANCE_VALUE: u32 = 2;
    /// As [`INSTANCE_VALUE`] for a name not among the type's shared keys: only an instance
    /// whose dict was made can have it, and is looked up there. LOAD_ATTR first tries `key2`,
    /// the entry where the name sat in the instance the cache was armed for (ceval's
    /// LOAD_ATTR_WITH_HINT): in a combined table of str keys, an entry holding this very name
    /// and a value is what a lookup finds.
    pub const INSTANCE_DICT: u32 = 8;
    /// LOAD_ATTR/STORE_ATTR of a `__slots__` member: `key` = type version, `value` = byte
    /// offset of the slot in the instance.
    pub const SLOT: u32 = 3;
    /// LOAD_ATTR/LOAD_METHOD of a module attribute: `key` = the module type's version,
    /// `key2` = the module dict's version tag, `key3` = the dict's address (which module's way
    /// this is, for the slow path), `value` = the object.
    pub const MODULE: u32 = 4;
    /// LOAD_METHOD of a method on a type whose instances have no dict: `key` = type version,
    /// `value` = the function or method descriptor.
    pub const METHOD_NO_DICT: u32 = 5;
    /// LOAD_METHOD of a method on a type with a managed dict, for an instance whose dict was
    /// never made and whose values cannot hold the name: `key` = type version, `key2` = the
    /// type's shared keys, `key3` = how many entries they had (they only grow: the name, absent
    /// then, is absent while the count is unchanged), `value` = the method.
    pub const METHOD_WITH_VALUES: u32 = 6;
    /// LOAD_ATTR of an instance attribute of a type whose instances keep their dict at a fixed
    /// offset (`tp_dictoffset`, not a managed dict: C types such as the `ast` nodes' and their
    /// subclasses): `key` = type version, `value` = the offset. The instance's dict is looked
    /// up when its keys are all strs. ceval 3.11 does not specialize these.
    pub const INSTANCE_DICT_AT: u32 = 10;
    /// LOAD_ATTR of a class attribute on the class itself (`Direction.FORWARD`), the class an
    /// instance of exactly `type`: `key` = `type`'s version, `key2` = the class's own version,
    /// `value` = the attribute, an object of an immutable type without `__get__` (what
    /// `type_getattro` returns as it is). `type` has nothing under the name (its dict never
    /// changes). ceval 3.11 does not specialize these.
    pub const CLASS_ATTR: u32 = 11;
}

/// The name `peregrine.profile()` gives a cache kind.
pub fn kind_name(k: u32) -> Option<&'static str> {
    Some(match k {
        kind::GLOBAL_MODULE => "global_module",
        kind::GLOBAL_BUILTIN => "global_builtin",
        kind::INSTANCE_VALUE => "instance_value",
        kind::INSTANCE_DICT => "instance_dict",
        kind::SLOT => "slot",
        kind::MODULE => "module",
        kind::METHOD_NO_DICT => "method_no_dict",
        kind::METHOD_WITH_VALUES => "method_with_values",
        kind::INSTANCE_DICT_AT => "instance_dict_at",
        kind::CLASS_ATTR => "class_attr",
        _ => return None,
    })
}

/// One armed entry of an inline cache: `kind`, `key`, `key2`, `key3` and `value` as [`kind`]
/// describes, `name` the attribute's name, `hits` the executions it served. The first way is
/// the start of [`InlineCache`] and also keeps the site's other counters (`misses`, the
/// re-arming state); LOAD_ATTR, LOAD_METHOD and STORE_ATTR chain more ways (`next`, up to
/// [`MAX_WAYS`] in all) for sites that see several types, which the shared lookups and
/// STORE_ATTR's inline guard try in turn. Machine code
/// reads every way at the offsets below.
#[repr(C)]
pub struct Way {
    pub key: Cell<u64>,
    pub key2: Cell<u64>,
    pub key3: Cell<u64>,
    pub value: Cell<u64>,
    /// Executions that took the inline fast path through this way.
    pub hits: Cell<u64>,
    /// Executions that took the slow path (the first way's only).
    pub misses: Cell<u64>,
    pub kind: Cell<u32>,
    /// A type version the analysis failed for (0: none): misses of that type skip it (the
    /// first way's only).
    failed_version: Cell<u32>,
    /// Misses of another type to let pass before the cache is armed for it again, and the
    /// exponent of the next wait: a site that sees more types than it has ways keeps them armed,
    /// as ceval's miss counter keeps a specialized form, instead of re-analysing at every miss
    /// (the first way's only).
    rearm_wait: Cell<u16>,
    rearm_shift: Cell<u16>,
    /// The attribute name, for the paths that look an instance dict up (borrowed from the code
    /// object's names, which the compiled code keeps alive).
    pub name: Cell<u64>,
    /// The next way (owned, boxed), or null.
    next: Cell<*mut Way>,
}

impl Default for Way {
    fn default() -> Self {
        Way {
            key: Cell::new(NO_KEY),
            key2: Cell::new(0),
            key3: Cell::new(0),
            value: Cell::new(0),
            hits: Cell::new(0),
            misses: Cell::new(0),
            kind: Cell::new(kind::NONE),
            failed_version: Cell::new(0),
            rearm_wait: Cell::new(0),
            rearm_shift: Cell::new(0),
            name: Cell::new(0),
            next: Cell::new(std::ptr::null_mut()),
        }
    }
}

impl Way {
    fn arm(&self, (kind, key, key2, key3, value): Arming, name: *mut PyObject) {
        self.kind.set(kind);
        self.key.set(key);
        self.key2.set(key2);
        self.key3.set(key3);
        self.value.set(value);
        self.name.set(name as u64);
    }

    fn disarm(&self) {
        self.kind.set(kind::NONE);
        self.key.set(NO_KEY);
    }

    /// The next way, if any.
    fn next_way(&self) -> Option<&Way> {
        // SAFETY: `next` is null or a way this chain owns, freed only with the cache.
        unsafe { self.next.get().as_ref() }
    }
}

/// The most ways a LOAD_ATTR, LOAD_METHOD or STORE_ATTR cache has, the first included: a site that sees
/// this many types or fewer (a method called on each of a few shapes) hits for all of them.
pub const MAX_WAYS: usize = 4;

/// The inline cache of one site: its first way, then what only the slow path reads.
#[repr(C)]
pub struct InlineCache {
    way: Way,
    /// The operand types of the last miss, so a repeated miss skips the profile.
    last_seen: Cell<(usize, usize)>,
    /// The profile: types the slow path saw (see [`Profile`]).
    pub profile: RefCell<Profile>,
}

impl std::ops::Deref for InlineCache {
    type Target = Way;

    fn deref(&self) -> &Way {
        &self.way
    }
}

impl Drop for InlineCache {
    fn drop(&mut self) {
        let mut next = self.way.next.replace(std::ptr::null_mut());
        while !next.is_null() {
            // SAFETY: each way after the first was boxed by `refill` and is owned by the chain.
            let way = unsafe { Box::from_raw(next) };
            next = way.next.get();
        }
    }
}

const _: () = assert!(offset_of!(InlineCache, way) == 0, "machine code reads the first way at the cache's address");
pub const KEY: i32 = offset_of!(Way, key) as i32;
pub const KEY2: i32 = offset_of!(Way, key2) as i32;
pub const KEY3: i32 = offset_of!(Way, key3) as i32;
pub const VALUE: i32 = offset_of!(Way, value) as i32;
pub const HITS: i32 = offset_of!(Way, hits) as i32;
pub const MISSES: i32 = offset_of!(Way, misses) as i32;
pub const KIND: i32 = offset_of!(Way, kind) as i32;
pub const NAME: i32 = offset_of!(Way, name) as i32;
pub const NEXT_WAY: i32 = offset_of!(Way, next) as i32;

/// How many distinct operand types a site's profile names before it calls the site megamorphic.
pub const PROFILE_TYPES: usize = 4;

/// The operand types a site's slow path saw, by identity, with their names copied (a profile
/// holds no reference: it must not keep a class alive). For a two-operand site the pair.
#[derive(Default)]
pub struct Profile {
    pub seen: Vec<((usize, usize), String)>,
    /// More distinct types than [`PROFILE_TYPES`] were seen.
    pub megamorphic: bool,
}

impl Default for InlineCache {
    fn default() -> Self {
        InlineCache { way: Way::default(), last_seen: Cell::new((0, 0)), profile: RefCell::new(Profile::default()) }
    }
}

impl InlineCache {
    /// The ways, first to last.
    pub fn ways(&self) -> impl Iterator<Item = &Way> {
        std::iter::successors(Some(&self.way), |w| w.next_way())
    }

    /// Executions the fast path served, through any way.
    pub fn total_hits(&self) -> u64 {
        self.ways().map(|w| w.hits.get()).sum()
    }

    /// Counts a slow-path execution and records its operand types.
    ///
    /// # Safety
    /// GIL held; live objects (`b` may be null).
    pub(crate) unsafe fn miss(&self, a: *mut PyObject, b: *mut PyObject) {
        self.misses.set(self.misses.get() + 1);
        // SAFETY: per the contract.
        unsafe {
            let ta = ffi::Py_TYPE(a);
            let tb = if b.is_null() { std::ptr::null_mut() } else { ffi::Py_TYPE(b) };
            let id = (ta as usize, tb as usize);
            if self.last_seen.get() == id {
                return;
            }
            self.last_seen.set(id);
            let mut p = self.profile.borrow_mut();
            if p.megamorphic || p.seen.iter().any(|(k, _)| *k == id) {
                return;
            }
            if p.seen.len() == PROFILE_TYPES {
                p.megamorphic = true;
                return;
            }
            let mut name = type_name(ta);
            if !tb.is_null() {
                name = format!("{name}, {}", type_name(tb));
            }
            p.seen.push((id, name));
        }
    }
}

/// A type's name as Python shows it (`tp_name`).
unsafe fn type_name(tp: *mut ffi::PyTypeObject) -> String {
    // SAFETY: live type, NUL-terminated name.
    unsafe { std::ffi::CStr::from_ptr((*tp).tp_name).to_string_lossy().into_owned() }
}

/// A dict's version tag.
///
/// # Safety
/// `d` is a dict (or subclass).
#[inline]
unsafe fn dict_version(d: *mut PyObject) -> u64 {
    // SAFETY: per the contract.
    unsafe { (*(d as *mut DictObject)).ma_version_tag }
}

/// LOAD_GLOBAL's slow path: the generic lookup, then (re)arms the cache when both dicts are
/// exact and the name was found.
pub unsafe extern "C" fn pg_load_global_cached(
    _t: *mut ThreadState,
    frame: *mut InterpreterFrame,
    sp: Sp,
    oparg: u32,
    site: *const Site,
) -> Sp {
    // SAFETY: GIL held, live frame, name index validated; `site` is this instruction's own.
    unsafe {
        let cache = &(*site).cache;
        let (globals, builtins) = ((*frame).f_globals, (*frame).f_builtins);
        let name = name_at(frame, oparg >> 1);
        cache.miss(globals, std::ptr::null_mut());
        let v = semantics::names::load_global(globals, builtins, name);
        if !v.is_null() && ffi::PyDict_CheckExact(globals) != 0 && ffi::PyDict_CheckExact(builtins) != 0 {
            let keys = (*(globals as *mut DictObject)).ma_keys;
            // Where the name sits among the globals' entries, if there (the dict has str keys
            // only and is not split: its entries hold the values).
            let index = if (*(globals as *mut DictObject)).ma_values.is_null() {
                semantics::attrs::shared_key_index(keys, name)
            } else {
                None
            };
            match index {
                Some(index) => cache.arm((kind::GLOBAL_MODULE, 0, 0, 0, index as u64), name),
                // A lookup in a dict of str keys runs no Python code: repeating it is unobservable.
                None if (*keys).dk_kind != DICT_KEYS_GENERAL
                    && ffi::PyDict_GetItemWithError(globals, name).is_null()
                    && ffi::PyErr_Occurred().is_null() =>
                {
                    cache.arm((kind::GLOBAL_BUILTIN, dict_version(globals), dict_version(builtins), 0, v as u64), name)
                }
                None => {
                    ffi::PyErr_Clear();
                    cache.disarm();
                }
            }
            cache.name.set(name as u64);
        }
        push_global(sp, oparg, v)
    }
}

/// An armed cache's kind, keys and value.
type Arming = (u32, u64, u64, u64, u64);

/// Why no cache was armed: `Retry` when the answer may change without the type's version
/// changing (a module's dict), `Never` for the life of the version.
enum Unarmed {
    Retry,
    Never,
}

/// What the attribute `name` of `owner` is, for a cache: the kind to arm and its keys.
unsafe fn analyze(owner: *mut PyObject, name: *mut PyObject, store: bool, method: bool) -> Result<Arming, Unarmed> {
    // SAFETY: GIL held; live objects; fields read after the type checks.
    unsafe {
        let tp = ffi::Py_TYPE(owner);
        if tp == std::ptr::addr_of_mut!(ffi::PyModule_Type) {
            // The module type is static (never modified): nothing on it under the name now
            // means nothing ever, and the module's dict decides.
            if store || !crate::cpython::_PyType_Lookup(tp, name).is_null() {
                return Err(Unarmed::Retry);
            }
            let version = semantics::attrs::valid_version(tp).ok_or(Unarmed::Retry)? as u64;
            let dict = (*(owner as *mut ModuleObject)).md_dict;
            // Only a dict of str keys is looked up without running Python code (a key's
            // `__eq__`), so looking again here is unobservable.
            if dict.is_null()
                || ffi::PyDict_CheckExact(dict) == 0
                || (*(*(dict as *mut DictObject)).ma_keys).dk_kind == DICT_KEYS_GENERAL
            {
                return Err(Unarmed::Retry);
            }
            let v = ffi::PyDict_GetItemWithError(dict, name);
            if v.is_null() {
                ffi::PyErr_Clear();
                return Err(Unarmed::Retry);
            }
            // (`key3`, the dict's address, tells the slow path whose way this is.)
            return Ok((kind::MODULE, version, dict_version(dict), dict as u64, v as u64));
        }
        if tp == std::ptr::addr_of_mut!(ffi::PyType_Type) && !store && !method {
            return class_attr(owner as *mut ffi::PyTypeObject, name);
        }
        let (on_type, version) = semantics::attrs::on_type(tp, name, store).ok_or(Unarmed::Retry)?;
        let version = version as u64;
        let flags = (*tp).tp_flags;
        let managed = flags & ffi::Py_TPFLAGS_MANAGED_DICT != 0;
        let keys = if managed {
            (*(tp as *mut ffi::PyHeapTypeObject)).ht_cached_keys as *mut crate::cpython::layout::DictKeysObject
        } else {
            std::ptr::null_mut()
        };
        // Where the instance's own attribute lives when the type leaves the name to it.
        let instance_decides = matches!(on_type, OnType::Absent | OnType::Shadowable) && !method;
        match on_type {
            _ if instance_decides && managed => {
                Ok(match semantics::attrs::shared_key_index(keys, name) {
                    Some(index) => (kind::INSTANCE_VALUE, version, dict_entry_hint(owner, name), 0, index as u64),
                    None => (kind::INSTANCE_DICT, version, dict_entry_hint(owner, name), 0, 0),
                })
            }
            // A dict at a fixed (positive: not after variable-sized items) offset; loads only.
            _ if instance_decides && !store && (*tp).tp_dictoffset > 0 => {
                Ok((kind::INSTANCE_DICT_AT, version, 0, 0, (*tp).tp_dictoffset as u64))
            }
            OnType::Slot { offset, writable } if !method && (writable || !store) => {
                Ok((kind::SLOT, version, 0, 0, offset as u64))
            }
            OnType::Method(m) if method && !managed && (*tp).tp_dictoffset == 0 => {
                Ok((kind::METHOD_NO_DICT, version, 0, 0, m as u64))
            }
            OnType::Method(m) if method && managed && !keys.is_null() => {
                if semantics::attrs::shared_key_index(keys, name).is_some() {
                    return Err(Unarmed::Never); // an instance may shadow the method
                }
                Ok((kind::METHOD_WITH_VALUES, version, keys as u64, (*keys).dk_nentries as u64, m as u64))
            }
            _ => Err(Unarmed::Never),
        }
    }
}

/// Where `name` sits among the entries of `owner`'s managed dict (made, with a combined table of
/// str keys), for [`kind::INSTANCE_DICT`]'s hint; [`NO_KEY`] where it is not there.
///
/// # Safety
/// GIL held; `owner` a live instance of a type with a managed dict.
unsafe fn dict_entry_hint(owner: *mut PyObject, name: *mut PyObject) -> u64 {
    // SAFETY: per the contract; the managed dict pointer sits at its fixed offset before the
    // object, and is null or an exact dict.
    unsafe {
        let dict = *(owner as *mut u8).offset(MANAGED_DICT_OFFSET).cast::<*mut DictObject>();
        if dict.is_null() || !(*dict).ma_values.is_null() || (*(*dict).ma_keys).dk_kind != DICT_KEYS_UNICODE {
            return NO_KEY;
        }
        semantics::attrs::shared_key_index((*dict).ma_keys, name).map_or(NO_KEY, |i| i as u64)
    }
}

/// The longest wait between re-armings of a cache for another type is `2^6 - 1` misses.
const MAX_REARM_SHIFT: u16 = 6;

/// Arms a way of `cache` for `owner.name` if it can be, else disarms it. The answer for a type
/// depends on the type alone (module attributes aside), so a miss whose type still has the
/// version a way holds (the instance's state failed the guard) or the version the analysis last
/// failed for skips the analysis; except where the type's shared keys changed without a new
/// version: under [`kind::INSTANCE_DICT`] the name may have joined them (now
/// [`kind::INSTANCE_VALUE`]), under [`kind::METHOD_WITH_VALUES`] other names did (the entry
/// count the guard compares).
///
/// Which way: the one armed for the type (or for the module), re-analysed; else an unarmed one;
/// else a new way while the cache has fewer than [`MAX_WAYS`] (the shared lookups and
/// STORE_ATTR's inline guard try every way); else, after the wait, the last way (a way whose
/// type changed since keeps its place until then: its guard never passes again).

unsafe fn refill(cache: &InlineCache, owner: *mut PyObject, name: *mut PyObject, store: bool, method: bool) {
    // SAFETY: per the caller's contract.
    unsafe {
        let tp = ffi::Py_TYPE(owner);
        // Armed for other types: re-arm at once the first two times (the site's type changed),
        // then after 1, 3, 7, ... 63 such misses (it sees more types than it has ways). The
        // same wait follows an analysis that found nothing to arm for now (`Unarmed::Retry`: an
        // owner whose type has its own `__getattribute__`, such as a class object, would
        // otherwise be analysed at every execution), and comes before a module's way is armed
        // anew (its dict changed: it may change at every execution).
        let wait_over = || {
            let wait = cache.rearm_wait.get();
            if wait > 0 {
                cache.rearm_wait.set(wait - 1);
                return false;
            }
            back_off(cache);
            true
        };
        let mut stale: Option<&Way> = None;
        if tp == std::ptr::addr_of_mut!(ffi::PyModule_Type) {
            let dict = (*(owner as *mut ModuleObject)).md_dict as u64;
            if let Some(way) = cache.ways().find(|w| w.kind.get() == kind::MODULE && w.key3.get() == dict) {
                if !wait_over() {
                    return;
                }
                stale = Some(way);
            }
        } else if let Some(version) = semantics::attrs::valid_version(tp) {
            if cache.failed_version.get() == version {
                return;
            }
            // (Every class shares `type`'s version: a class attribute way is armed anew for
            // another class, or a changed one, as for another type.)
            let armed_for_it = |w: &&Way| w.key.get() == version as u64 && w.kind.get() != kind::CLASS_ATTR;
            if let Some(way) = cache.ways().find(armed_for_it) {
                let refresh = match way.kind.get() {
                    kind::INSTANCE_DICT => true,
                    kind::METHOD_WITH_VALUES => shared_keys_changed(way, tp),
                    _ => false,
                };
                if !refresh {
                    return;
                }
                stale = Some(way);
            }
        }
        let ways = cache.ways().count();
        // An unarmed way (one whose analysis failed, or the first before any).
        let unarmed = cache.ways().find(|w| w.kind.get() == kind::NONE);
        enum Target<'a> {
            Way(&'a Way),
            New,
        }
        let target = match (stale, unarmed) {
            (Some(way), _) | (None, Some(way)) => Target::Way(way),
            (None, None) if ways < MAX_WAYS => Target::New,
            (None, None) => {
                if !wait_over() {
                    return;
                }
                Target::Way(cache.ways().last().unwrap_or(&cache.way))
            }
        };
        match analyze(owner, name, store, method) {
            Ok(arming) => match target {
                Target::Way(way) => way.arm(arming, name),
                Target::New => {
                    let way = Box::new(Way::default());
                    way.arm(arming, name);
                    let last = cache.ways().last().unwrap_or(&cache.way);
                    last.next.set(Box::into_raw(way));
                }
            },
            Err(why) => {
                if let Target::Way(way) = target {
                    way.disarm();
                }
                match why {
                    Unarmed::Never => cache.failed_version.set(semantics::attrs::valid_version(tp).unwrap_or(0)),
                    Unarmed::Retry => back_off(cache),
                }
            }
        }
    }
}

/// [`kind::CLASS_ATTR`] for attribute `name` of `cls`, an instance of exactly `type`, as
/// `type_getattro` finds it: nothing on `type` under the name (else never: its dict does not
/// change), then the attribute in the class's MRO, returned as it is when its type is immutable
/// and has no `__get__`.
///
/// # Safety
/// GIL held; `cls` a live class whose type is `type`.
unsafe fn class_attr(cls: *mut ffi::PyTypeObject, name: *mut PyObject) -> Result<Arming, Unarmed> {
    // SAFETY: per the contract; `_PyType_Lookup` returns a borrowed reference or null, raises
    // nothing and runs no Python code.
    unsafe {
        let meta = std::ptr::addr_of_mut!(ffi::PyType_Type);
        if !crate::cpython::_PyType_Lookup(meta, name).is_null() {
            return Err(Unarmed::Never);
        }
        if (*cls).tp_flags & ffi::Py_TPFLAGS_READY == 0 {
            return Err(Unarmed::Retry);
        }
        let attr = crate::cpython::_PyType_Lookup(cls, name);
        if attr.is_null() {
            return Err(Unarmed::Retry);
        }
        let at = ffi::Py_TYPE(attr);
        if (*at).tp_flags & ffi::Py_TPFLAGS_IMMUTABLETYPE == 0 || (*at).tp_descr_get.is_some() {
            return Err(Unarmed::Retry);
        }
        let meta_version = semantics::attrs::valid_version(meta).ok_or(Unarmed::Retry)?;
        let version = semantics::attrs::valid_version(cls).ok_or(Unarmed::Retry)?;
        Ok((kind::CLASS_ATTR, meta_version as u64, version as u64, 0, attr as u64))
    }
}

/// The next re-arming of `cache` waits twice as many misses as the last (at most 63).
fn back_off(cache: &InlineCache) {
    let shift = cache.rearm_shift.get();
    cache.rearm_wait.set((1u16 << shift) - 1);
    cache.rearm_shift.set((shift + 1).min(MAX_REARM_SHIFT));
}

/// Whether the shared keys of `tp` (a type way `cache` is armed for as [`kind::METHOD_WITH_VALUES`])
/// are no longer the object and entry count the cache holds.
///
/// # Safety
/// GIL held; `tp` a live heap type.
unsafe fn shared_keys_changed(cache: &Way, tp: *mut ffi::PyTypeObject) -> bool {
    // SAFETY: per the contract; the kind is only armed for types with shared keys.
    unsafe {
        let keys = (*(tp as *mut ffi::PyHeapTypeObject)).ht_cached_keys as *mut crate::cpython::layout::DictKeysObject;
        keys as u64 != cache.key2.get() || keys.is_null() || (*keys).dk_nentries as u64 != cache.key3.get()
    }
}

/// LOAD_ATTR's slow path: the generic lookup, then (re)arms the cache for the owner's type.
/// The analysis runs before the lookup, which may run Python code that changes the type (the
/// version then no longer matches) but cannot make a stale answer match.
pub unsafe extern "C" fn pg_load_attr_cached(
    t: *mut ThreadState,
    frame: *mut InterpreterFrame,
    sp: Sp,
    oparg: u32,
    site: *const Site,
) -> Sp {
    // SAFETY: one value on the stack; name index validated; `site` is this instruction's own.
    unsafe {
        let cache = &(*site).cache;
        let owner = peek(sp, 1);
        cache.miss(owner, std::ptr::null_mut());
        refill(cache, owner, name_at(frame, oparg), false, false);
        super::ops::pg_load_attr(t, frame, sp, oparg)
    }
}

/// STORE_ATTR's slow path (stack: value, owner).
pub unsafe extern "C" fn pg_store_attr_cached(
    t: *mut ThreadState,
    frame: *mut InterpreterFrame,
    sp: Sp,
    oparg: u32,
    site: *const Site,
) -> Sp {
    // SAFETY: two values on the stack; name index validated; `site` is this instruction's own.
    unsafe {
        let cache = &(*site).cache;
        let owner = peek(sp, 1);
        cache.miss(owner, std::ptr::null_mut());
        refill(cache, owner, name_at(frame, oparg), true, false);
        super::ops::pg_store_attr(t, frame, sp, oparg)
    }
}

/// LOAD_METHOD's slow path: leaves (method, self) or (NULL, attribute).
pub unsafe extern "C" fn pg_load_method_cached(
    t: *mut ThreadState,
    frame: *mut InterpreterFrame,
    sp: Sp,
    oparg: u32,
    site: *const Site,
) -> Sp {
    // SAFETY: one value on the stack; name index validated; `site` is this instruction's own.
    unsafe {
        let cache = &(*site).cache;
        let obj = peek(sp, 1);
        cache.miss(obj, std::ptr::null_mut());
        refill(cache, obj, name_at(frame, oparg), false, true);
        super::ops::pg_load_method(t, frame, sp, oparg)
    }
}

/// BINARY_OP's slow path: operands the inline paths do not handle.
pub unsafe extern "C" fn pg_binary_op_cached(
    t: *mut ThreadState,
    frame: *mut InterpreterFrame,
    sp: Sp,
    oparg: u32,
    site: *const Site,
) -> Sp {
    // SAFETY: two values on the stack; `site` is this instruction's own.
    unsafe {
        (*site).cache.miss(peek(sp, 2), peek(sp, 1));
        super::ops::pg_binary_op(t, frame, sp, oparg)
    }
}

/// BINARY_OP `+` or `+=` followed by STORE_FAST: `packed` is the operator (low byte) and the
/// STORE_FAST's local (the rest). In warm code two exact strs, the left one also in that local,
/// are joined in place as BINARY_OP_INPLACE_ADD_UNICODE does: the stack's reference to the left
/// operand dropped first, so that `PyUnicode_Append` may resize a string only the local holds
/// (`s += piece` in a loop is then linear, not quadratic). The local then holds the result,
/// which is also left on the stack (one more reference) for the STORE_FAST, which stores it
/// over itself (ceval skips that STORE_FAST; a string has no destructor nor weak references, so
/// only `id()` tells). Everything else is [`pg_binary_op_cached`].
///
/// # Safety
/// As for [`pg_binary_op_cached`]; the local index is the STORE_FAST's, checked by the compiler.
pub unsafe extern "C" fn pg_binary_op_add_to_local(
    t: *mut ThreadState,
    frame: *mut InterpreterFrame,
    sp: Sp,
    packed: u32,
    site: *const Site,
) -> Sp {
    // SAFETY: per the contract.
    unsafe {
        let (left, right) = (peek(sp, 2), peek(sp, 1));
        let slot = super::support::local_slot(frame, packed >> 8);
        if ffi::PyUnicode_CheckExact(left) != 0 && ffi::Py_TYPE(right) == ffi::Py_TYPE(left) && *slot == left && (*site).is_warm() {
            (*site).cache.miss(left, right);
            // The local keeps it alive: no destructor can run here.
            ffi::Py_DECREF(left);
            ffi::PyUnicode_Append(slot, right);
            ffi::Py_DECREF(right);
            let result = *slot;
            let base = sp.sub(2);
            if result.is_null() {
                return super::error_at(base);
            }
            ffi::Py_INCREF(result);
            *base = result;
            return base.add(1);
        }
        pg_binary_op_cached(t, frame, sp, packed & 0xff, site)
    }
}

/// The managed-dict offsets as displacements for machine code.
pub const VALUES_DISP: i32 = MANAGED_VALUES_OFFSET as i32;
pub const DICT_DISP: i32 = MANAGED_DICT_OFFSET as i32;
