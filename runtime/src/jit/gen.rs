//! Opcode semantics of generators and coroutines (yield from, await, async for/with), written
//! from `Python/ceval.c` and `Objects/genobject.c` (3.11) against the exported C API, with the
//! helper conventions of `super::ops`. YIELD_VALUE itself is inline in the baseline (it returns
//! from the frame); RETURN_GENERATOR is [`pg_return_generator`], `_Py_MakeCoro` (not exported)
//! written against the generator layout, except for a coroutine made while its origin is
//! tracked, which the interpreter creates.

use super::support::{enter_context, peek, put, type_name, Interned};
use super::{error_at, Sp};
use crate::cpython::{self, co_flags, ffi, AsyncGenWrappedValue, CFrame, CodeObject, FunctionObject, GenObject};
use crate::cpython::{frame_owner, InterpreterFrame, ThreadState};
use crate::cpython::{frame_state, specialized};
use crate::bytecode::op;
use ffi::PyObject;
use std::os::raw::c_char;

/// `gen_is_coroutine`: a generator made from a function decorated with @types.coroutine.
unsafe fn gen_is_coroutine(o: *mut PyObject) -> bool {
    // SAFETY: live object; a generator's gi_code is a code object.
    unsafe {
        ffi::Py_TYPE(o) == std::ptr::addr_of_mut!(cpython::PyGen_Type)
            && (*(*(o as *mut GenObject)).gi_code).co_flags & co_flags::CO_ITERABLE_COROUTINE != 0
    }
}

unsafe fn is_coro_exact(o: *mut PyObject) -> bool {
    // SAFETY: live object.
    unsafe { ffi::Py_TYPE(o) == std::ptr::addr_of_mut!(cpython::PyCoro_Type) }
}

/// `_PyCoro_GetAwaitableIter` (not exported): the iterator an `await` drives.
unsafe fn awaitable_iter(o: *mut PyObject) -> *mut PyObject {
    // SAFETY: GIL held, live object.
    unsafe {
        if is_coro_exact(o) || gen_is_coroutine(o) {
            ffi::Py_INCREF(o);
            return o;
        }
        let tp = ffi::Py_TYPE(o);
        let getter = if (*tp).tp_as_async.is_null() { None } else { (*(*tp).tp_as_async).am_await };
        let Some(getter) = getter else {
            ffi::PyErr_Format(
                ffi::PyExc_TypeError,
                b"object %.100s can't be used in 'await' expression\0".as_ptr() as *const c_char,
                (*tp).tp_name,
            );
            return std::ptr::null_mut();
        };
        let res = getter(o);
        if res.is_null() {
            return res;
        }
        if is_coro_exact(res) || gen_is_coroutine(res) {
            ffi::PyErr_SetString(ffi::PyExc_TypeError, b"__await__() returned a coroutine\0".as_ptr() as *const c_char);
            ffi::Py_DECREF(res);
            return std::ptr::null_mut();
        }
        if ffi::PyIter_Check(res) == 0 {
            ffi::PyErr_Format(
                ffi::PyExc_TypeError,
                b"__await__() returned non-iterator of type '%.100s'\0".as_ptr() as *const c_char,
                type_name(res),
            );
            ffi::Py_DECREF(res);
            return std::ptr::null_mut();
        }
        res
    }
}

/// `_PyGen_yf` (not exported): whether a coroutine is suspended inside an `await`/`yield from`.
unsafe fn is_delegating(gen: *mut GenObject) -> bool {
    // SAFETY: live generator object; its frame lives inside it.
    unsafe {
        let state = (*gen).gi_frame_state;
        if state >= frame_state::CLEARED || state == frame_state::CREATED {
            return false;
        }
        let frame = std::ptr::addr_of_mut!((*gen).gi_iframe) as *mut InterpreterFrame;
        let next = *(*frame).prev_instr.add(1);
        let (opcode, oparg) = ((next & 0xff) as u8, next >> 8);
        (opcode == op::RESUME || opcode == specialized::RESUME_QUICK) && oparg >= 2
    }
}

/// GET_AWAITABLE: replaces the top with the iterator its `await` drives; oparg says where the
/// awaitable came from (1: __aenter__, 2: __aexit__) for the error message.
pub unsafe extern "C" fn pg_get_awaitable(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, oparg: u32) -> Sp {
    // SAFETY: one value on the stack.
    unsafe {
        let iterable = peek(sp, 1);
        let mut iter = awaitable_iter(iterable);
        if iter.is_null() {
            let tp = ffi::Py_TYPE(iterable);
            if (*tp).tp_as_async.is_null() || (*(*tp).tp_as_async).am_await.is_none() {
                let msg: Option<&[u8]> = match oparg {
                    1 => Some(b"'async with' received an object from __aenter__ that does not implement __await__: %.100s\0"),
                    2 => Some(b"'async with' received an object from __aexit__ that does not implement __await__: %.100s\0"),
                    _ => None,
                };
                if let Some(msg) = msg {
                    ffi::PyErr_Format(ffi::PyExc_TypeError, msg.as_ptr() as *const c_char, (*tp).tp_name);
                }
            }
        }
        ffi::Py_DECREF(iterable);
        if !iter.is_null() && is_coro_exact(iter) && is_delegating(iter as *mut GenObject) {
            ffi::Py_DECREF(iter);
            iter = std::ptr::null_mut();
            ffi::PyErr_SetString(ffi::PyExc_RuntimeError, b"coroutine is being awaited already\0".as_ptr() as *const c_char);
        }
        put(sp, 1, iter);
        if iter.is_null() { error_at(sp) } else { sp }
    }
}

/// GET_AITER
pub unsafe extern "C" fn pg_get_aiter(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: one value on the stack.
    unsafe {
        let obj = peek(sp, 1);
        let tp = ffi::Py_TYPE(obj);
        let getter = if (*tp).tp_as_async.is_null() { None } else { (*(*tp).tp_as_async).am_aiter };
        let Some(getter) = getter else {
            put(sp, 1, std::ptr::null_mut());
            ffi::PyErr_Format(
                ffi::PyExc_TypeError,
                b"'async for' requires an object with __aiter__ method, got %.100s\0".as_ptr() as *const c_char,
                (*tp).tp_name,
            );
            ffi::Py_DECREF(obj);
            return error_at(sp);
        };
        let iter = getter(obj);
        ffi::Py_DECREF(obj);
        if iter.is_null() {
            put(sp, 1, std::ptr::null_mut());
            return error_at(sp);
        }
        let itp = ffi::Py_TYPE(iter);
        if (*itp).tp_as_async.is_null() || (*(*itp).tp_as_async).am_anext.is_none() {
            put(sp, 1, std::ptr::null_mut());
            ffi::PyErr_Format(
                ffi::PyExc_TypeError,
                b"'async for' received an object from __aiter__ that does not implement __anext__: %.100s\0".as_ptr()
                    as *const c_char,
                (*itp).tp_name,
            );
            ffi::Py_DECREF(iter);
            return error_at(sp);
        }
        put(sp, 1, iter);
        sp
    }
}

/// GET_ANEXT: pushes the awaitable of the next `async for` step, keeping the async iterator.
pub unsafe extern "C" fn pg_get_anext(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: one value on the stack and room for one more.
    unsafe {
        let aiter = peek(sp, 1);
        let tp = ffi::Py_TYPE(aiter);
        let awaitable;
        let async_gen_anext = if tp == std::ptr::addr_of_mut!(cpython::PyAsyncGen_Type) {
            (*(*tp).tp_as_async).am_anext
        } else {
            None
        };
        if let Some(anext) = async_gen_anext {
            awaitable = anext(aiter);
            if awaitable.is_null() {
                return error_at(sp);
            }
        } else {
            let getter = if (*tp).tp_as_async.is_null() { None } else { (*(*tp).tp_as_async).am_anext };
            let Some(getter) = getter else {
                ffi::PyErr_Format(
                    ffi::PyExc_TypeError,
                    b"'async for' requires an iterator with __anext__ method, got %.100s\0".as_ptr() as *const c_char,
                    (*tp).tp_name,
                );
                return error_at(sp);
            };
            let next_iter = getter(aiter);
            if next_iter.is_null() {
                return error_at(sp);
            }
            awaitable = awaitable_iter(next_iter);
            if awaitable.is_null() {
                cpython::_PyErr_FormatFromCause(
                    ffi::PyExc_TypeError,
                    b"'async for' received an invalid object from __anext__: %.100s\0".as_ptr() as *const c_char,
                    type_name(next_iter),
                );
                ffi::Py_DECREF(next_iter);
                return error_at(sp);
            }
            ffi::Py_DECREF(next_iter);
        }
        put(sp, 0, awaitable);
        sp.add(1)
    }
}

/// GET_YIELD_FROM_ITER
pub unsafe extern "C" fn pg_get_yield_from_iter(_t: *mut ThreadState, frame: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: one value on the stack; live frame.
    unsafe {
        let iterable = peek(sp, 1);
        if is_coro_exact(iterable) {
            let flags = (*(*frame).f_code).co_flags;
            if flags & (co_flags::CO_COROUTINE | co_flags::CO_ITERABLE_COROUTINE) == 0 {
                ffi::Py_DECREF(iterable);
                put(sp, 1, std::ptr::null_mut());
                ffi::PyErr_SetString(
                    ffi::PyExc_TypeError,
                    b"cannot 'yield from' a coroutine object in a non-coroutine generator\0".as_ptr() as *const c_char,
                );
                return error_at(sp);
            }
        } else if ffi::Py_TYPE(iterable) != std::ptr::addr_of_mut!(cpython::PyGen_Type) {
            let iter = ffi::PyObject_GetIter(iterable);
            ffi::Py_DECREF(iterable);
            put(sp, 1, iter);
            if iter.is_null() {
                return error_at(sp);
            }
        }
        sp
    }
}

/// SEND: (receiver, value) -> (receiver, yielded) and returns sp; or, when the receiver
/// returned, (result) and returns sp - 1 (the caller jumps); or raises with (receiver) left.
pub unsafe extern "C" fn pg_send(t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: two values on the stack. Compiled code runs with tracing off, so this is ceval's
    // `c_tracefunc == NULL` path.
    unsafe {
        let v = peek(sp, 1);
        let receiver = peek(sp, 2);
        let mut retval = std::ptr::null_mut();
        // A generator or coroutine is resumed directly, as `PyIter_Send` would through its
        // `am_send`; the stack holds both values meanwhile.
        let status = match super::direct_resume::try_resume(t, receiver, v) {
            Some(resumed) => {
                retval = resumed.value;
                resumed.status
            }
            None => ffi::PyIter_Send(receiver, v, &mut retval),
        };
        send_outcome(sp, status, retval)
    }
}

/// SEND after machine code resumed the generator or coroutine under the sent value
/// (`baseline::direct_entry`) and its frame returned `result` other than by a yield.
///
/// # Safety
/// GIL held; the receiver and the sent value are on the stack below `sp`; the receiver is an
/// exact generator or coroutine resumed as `direct_resume::resume` does.
pub unsafe extern "C" fn pg_send_resumed(t: *mut ThreadState, sp: Sp, result: *mut PyObject) -> Sp {
    // SAFETY: per the contract.
    unsafe {
        let g = peek(sp, 2);
        let is_gen = ffi::Py_TYPE(g) == std::ptr::addr_of_mut!(crate::cpython::PyGen_Type);
        let r = super::direct_resume::finish_resume(t, g as *mut crate::cpython::GenObject, is_gen, peek(sp, 1), result);
        send_outcome(sp, r.status, r.value)
    }
}

/// SEND's stack once the receiver answered: the sent value released, then the result in place.
///
/// # Safety
/// GIL held; receiver and value on the stack below `sp`; `retval` per `status`.
#[inline(always)]
unsafe fn send_outcome(sp: Sp, status: ffi::PySendResult, retval: *mut PyObject) -> Sp {
    // SAFETY: per the contract.
    unsafe {
        let (v, receiver) = (peek(sp, 1), peek(sp, 2));
        ffi::Py_DECREF(v);
        match status {
            ffi::PySendResult::PYGEN_RETURN => {
                ffi::Py_DECREF(receiver);
                put(sp, 2, retval);
                sp.sub(1)
            }
            ffi::PySendResult::PYGEN_NEXT => {
                put(sp, 1, retval);
                sp
            }
            _ => error_at(sp.sub(1)),
        }
    }
}

/// ASYNC_GEN_WRAP: wraps the value an async generator yields (`_PyAsyncGenValueWrapperNew`, not
/// exported: the same allocation through the exported type and GC API).
pub unsafe extern "C" fn pg_async_gen_wrap(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: one value on the stack; the wrapper type is exported and its layout is the header
    // plus the value (Objects/genobject.c).
    unsafe {
        let v = peek(sp, 1);
        let w = cpython::_PyObject_GC_New(std::ptr::addr_of_mut!(cpython::_PyAsyncGenWrappedValue_Type))
            as *mut AsyncGenWrappedValue;
        if w.is_null() {
            return error_at(sp);
        }
        // The wrapper takes the stack's reference to the value.
        (*w).agw_val = v;
        ffi::PyObject_GC_Track(w as *mut std::ffi::c_void);
        put(sp, 1, w as *mut PyObject);
        sp
    }
}

/// BEFORE_ASYNC_WITH: (mgr) -> (bound __aexit__, result of __aenter__()).
pub unsafe extern "C" fn pg_before_async_with(_t: *mut ThreadState, _f: *mut InterpreterFrame, sp: Sp, _o: u32) -> Sp {
    // SAFETY: one value on the stack and room for one more.
    unsafe {
        enter_context(
            sp,
            &STR_AENTER,
            &STR_AEXIT,
            b"'%.200s' object does not support the asynchronous context manager protocol\0",
            b"'%.200s' object does not support the asynchronous context manager protocol (missed __aexit__ method)\0",
        )
    }
}

static STR_AENTER: Interned = Interned::new(b"__aenter__\0");
static STR_AEXIT: Interned = Interned::new(b"__aexit__\0");

/// What [`pg_return_generator`] returns when the interpreter must run RETURN_GENERATOR itself
/// (nothing was done): a coroutine created while `sys.set_coroutine_origin_tracking_depth` is on,
/// whose origin only the unexported `compute_cr_origin` records.
pub const RETURN_GENERATOR_IN_INTERPRETER: usize = 1;

/// RETURN_GENERATOR in a frame of compiled code: `_Py_MakeCoro` (a generator, coroutine or
/// async generator for the frame's function, made as `make_gen` makes it), the frame copied into
/// it, then what ceval does for an entry frame: leave the frame (the recursion level and cframe
/// that [`super::frame::pg_frame_enter`] took, as `pg_frame_return`) with it emptied (its
/// references now belong to the generator's copy; the function and code get one more each for
/// the clear that follows). Returns the new object, null with an exception set (the frame is
/// still running: the caller raises at RETURN_GENERATOR), or [`RETURN_GENERATOR_IN_INTERPRETER`].
///
/// # Safety
/// GIL held; `frame` is the running frame of compiled code, at RETURN_GENERATOR (its
/// `prev_instr` on it) with an empty value stack at `sp`; `cframe` is the frame's own cframe.
pub unsafe extern "C" fn pg_return_generator(
    tstate: *mut ThreadState,
    frame: *mut InterpreterFrame,
    sp: Sp,
    cframe: *mut CFrame,
) -> *mut PyObject {
    // SAFETY: per the contract; the function is the frame's (a strong reference it holds).
    unsafe {
        let func = (*frame).f_func as *mut FunctionObject;
        let code = (*func).func_code as *mut CodeObject;
        let kind = (*code).co_flags & (co_flags::CO_GENERATOR | co_flags::CO_COROUTINE | co_flags::CO_ASYNC_GENERATOR);
        let tp = match kind {
            co_flags::CO_GENERATOR => std::ptr::addr_of_mut!(cpython::PyGen_Type),
            co_flags::CO_ASYNC_GENERATOR => std::ptr::addr_of_mut!(cpython::PyAsyncGen_Type),
            _ if (*tstate).coroutine_origin_tracking_depth != 0 => {
                return RETURN_GENERATOR_IN_INTERPRETER as *mut PyObject;
            }
            _ => std::ptr::addr_of_mut!(cpython::PyCoro_Type),
        };
        // make_gen
        let slots = (*code).co_nlocalsplus as ffi::Py_ssize_t + (*code).co_stacksize as ffi::Py_ssize_t;
        let gen = cpython::_PyObject_GC_NewVar(tp, slots) as *mut GenObject;
        if gen.is_null() {
            return std::ptr::null_mut();
        }
        (*gen).gi_frame_state = frame_state::CLEARED;
        (*gen).gi_code = code;
        ffi::Py_INCREF(code as *mut PyObject);
        (*gen).gi_weakreflist = std::ptr::null_mut();
        (*gen).gi_exc_state.exc_value = std::ptr::null_mut();
        (*gen).gi_exc_state.previous_item = std::ptr::null_mut();
        (*gen).gi_name = (*func).func_name;
        ffi::Py_INCREF((*func).func_name);
        (*gen).gi_qualname = (*func).func_qualname;
        ffi::Py_INCREF((*func).func_qualname);
        // Only async generators and coroutines use these; make_gen leaves a generator's unset,
        // zeroed here.
        (*gen).gi_origin_or_finalizer = std::ptr::null_mut();
        (*gen).gi_hooks_inited = 0;
        (*gen).gi_closed = 0;
        (*gen).gi_running_async = 0;
        ffi::PyObject_GC_Track(gen as *mut std::ffi::c_void);
        // RETURN_GENERATOR: the frame, locals and all, moves into the generator (`_PyFrame_Copy`).
        let locals = std::ptr::addr_of_mut!((*frame).localsplus) as Sp;
        (*frame).stacktop = sp.offset_from(locals) as i32;
        let size = (sp as *mut u8).offset_from(frame as *mut u8) as usize;
        let gen_frame = std::ptr::addr_of_mut!((*gen).gi_iframe) as *mut InterpreterFrame;
        std::ptr::copy_nonoverlapping(frame as *const u8, gen_frame as *mut u8, size);
        (*gen).gi_frame_state = frame_state::CREATED;
        (*gen_frame).owner = frame_owner::OWNED_BY_GENERATOR as std::os::raw::c_char;
        // Unlinked until it first runs: a new generator's frame has no `f_back` (3.11.7 clears
        // the copied link, test_generators checks it; 3.11.2 left it dangling).
        (*gen_frame).previous = std::ptr::null_mut();
        // The entry frame's exit, emptied.
        super::frame::pg_frame_return(tstate, frame, locals, cframe);
        (*frame).f_locals = std::ptr::null_mut();
        ffi::Py_INCREF((*frame).f_func);
        ffi::Py_INCREF((*frame).f_code as *mut PyObject);
        gen as *mut PyObject
    }
}
