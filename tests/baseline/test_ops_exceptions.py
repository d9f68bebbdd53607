"""try/except/finally in compiled frames. Exceptions are unwound in compiled code to the
handler the exception table names, and handlers run compiled: check results, sys.exc_info(),
__context__/__cause__, tracebacks (lines and columns), and that the frame never leaves compiled
code (except at `except*`, which the interpreter runs)."""

import sys

import pytest

from difftest import Cases, assert_compiles_unless_except_star, run_both

case = Cases()


def boom(exc=ValueError("boom")):
    raise exc


@case()
def except_catches():
    try:
        1 / 0
    except ZeroDivisionError as e:
        return "caught", str(e), sys.exc_info()[0]


@case()
def exc_info_inside_and_after():
    inside = None
    try:
        boom()
    except ValueError:
        t, v, tb = sys.exc_info()
        inside = (t, str(v), tb.tb_lineno, tb.tb_next.tb_frame.f_code.co_name)
    return inside, sys.exc_info()


@case()
def except_wrong_type_propagates():
    try:
        boom(KeyError("k"))
    except ValueError:
        return "wrong"


@case()
def finally_runs_on_exception():
    log = []
    try:
        try:
            log.append(1)
            boom()
        finally:
            log.append("finally")
    except ValueError:
        log.append("outer")
    return log


@case()
def finally_runs_on_return():
    log = []

    def inner():
        try:
            return "ret"
        finally:
            log.append("fin")
    return inner(), log


@case()
def finally_overrides_return():
    try:
        return 1
    finally:
        return 2  # noqa: B012


@case()
def context_chain():
    try:
        try:
            boom(KeyError("first"))
        except KeyError:
            boom(ValueError("second"))
    except ValueError as e:
        return repr(e.__context__), e.__cause__, e.__suppress_context__


@case()
def context_chain_propagates():
    try:
        boom(KeyError("first"))
    except KeyError:
        x = [1, 2]
        return x[5]


@case()
def cause_chain_propagates():
    try:
        boom(KeyError("first"))
    except KeyError as e:
        raise RuntimeError("second") from e


@case()
def exception_in_loop_with_stack_values(n=6):
    # An exception while the for-iterator and a partially built tuple are on the stack.
    out = []
    for i in range(n):
        try:
            out.append((i, 10 // (i % 3), i))
        except ZeroDivisionError:
            out.append("zde")
    return out


@case()
def exception_then_compiled_code_resumes_in_interpreter():
    total = 0
    try:
        boom()
    except ValueError:
        pass
    for i in range(100):  # runs in the interpreter after the hand-off
        total += i
    return total


@case()
def except_star_free_group():
    try:
        raise ExceptionGroup("eg", [ValueError(1), KeyError(2)])
    except* ValueError as e:
        got = repr(e.exceptions)
    except* KeyError:
        pass
    return got


@case()
def exception_in_nested_call_keeps_locals():
    a = [1]
    b = "text"
    try:
        len(5)
    except TypeError as e:
        return a, b, str(e), sorted(sys._getframe().f_locals)


@case()
def unhandled_traceback_depth():
    def f1():
        return f2() + 1

    def f2():
        return {}["missing"]
    return f1()


@case()
def exception_variable_deleted():
    try:
        boom()
    except ValueError as e:
        pass
    return e  # noqa: F821 - unbound after the handler


@case()
def return_in_except_and_finally_order():
    log = []
    def g():
        try:
            boom()
        except ValueError:
            log.append("except")
            return "from except"
        finally:
            log.append("finally")
    return g(), log


@case()
def keyboard_interrupt_like_base_exception():
    try:
        boom(SystemExit(3))
    except BaseException as e:
        return type(e).__name__, e.code


@case()
def stopiteration_from_next():
    it = iter([])
    return next(it)


@case()
def exception_in_comprehension_traceback():
    return [1 // x for x in (1, 0)]


@pytest.mark.parametrize("func,args,kwargs", case.params)
def test_exceptions(func, args, kwargs):
    # Unwound and handled in compiled code: the frame never leaves it.
    assert_compiles_unless_except_star(func, *args, **kwargs)


def test_exc_info_restored_after_handled_exception_in_callee():
    def callee():
        try:
            boom()
        except ValueError:
            pass
        return sys.exc_info()

    def outer():
        try:
            raise KeyError("outer")
        except KeyError:
            inner = callee()  # the callee's handler must restore the caller's exc_info
            return inner[0], sys.exc_info()[0]

    run_both(outer)


def test_traceback_frames_and_columns_through_compiled_callers():
    def a():
        x = 1
        return b(x) + 1

    def b(x):
        return c(x) * 2

    def c(x):
        return x.missing_attribute

    out = run_both(a)
    assert out.kind == "raise"
    assert [f[-1] for f in out.value[-1]][-3:] == ["a", "b", "c"]
