"""FORMAT_VALUE (all conversions, format specs incl. nested ones, __format__/__str__/__repr__
raising) and BUILD_STRING."""

import pytest

from difftest import Cases, run_both

case = Cases()


class Fmt:
    def __format__(self, spec):
        return f"<{spec}>"

    def __str__(self):
        return "STR"

    def __repr__(self):
        return "REPR\u00e9"


class BadFormat:
    def __format__(self, spec):
        raise ValueError(f"bad spec {spec!r}")

    def __str__(self):
        raise TypeError("bad str")

    def __repr__(self):
        raise KeyError("bad repr")


class FormatReturnsInt:
    def __format__(self, spec):
        return 5


@case(Fmt())
@case("caf\u00e9")
@case(3.14159)
@case(42)
@case(None)
def conversions(v):
    return f"{v}", f"{v!s}", f"{v!r}", f"{v!a}", f"{v:}", f"{v!s:>8}", f"{v!r:_^12}"


@case(3.14159, 10, 3)
@case(255, "", "")
def nested_specs(v, width, prec):
    try:
        return f"{v:{width}.{prec}}", f"{v:>{width}}", f"{v:x}" if isinstance(v, int) else f"{v:e}"
    except ValueError as e:
        return str(e)


@case(Fmt())
def custom_format_spec(v):
    return f"{v:abc}", f"{v}", format(v, "z")


@case(BadFormat())
def format_raises(v):
    return f"{v:spec}"


@case(BadFormat())
def format_raises_no_spec(v):
    return f"{v}"


@case(BadFormat())
def str_conversion_raises(v):
    return f"{v!s}"


@case(BadFormat())
def repr_conversion_raises(v):
    return f"{v!r:>10}"


@case(BadFormat())
def ascii_conversion_raises(v):
    return f"x{v!a}y"


@case(FormatReturnsInt())
def format_returns_non_str(v):
    return f"{v}"


@case(42)
def bad_spec_for_int(v):
    return f"{v:q}"


@case("s")
def bad_spec_for_str(v):
    return f"{v:d}"


@pytest.mark.parametrize("func,args,kwargs", case.params)
def test_format(func, args, kwargs):
    run_both(func, *args, **kwargs)
