"""Imported by peregrine.pth at interpreter start when PEREGRINE is set to something other than 0.

It must never stop the interpreter from starting: every problem becomes one line on stderr and the
JIT stays off.
"""

import os
import sys


def _enable_from_environment() -> None:
    value = os.environ.get("PEREGRINE")
    if value is None or value == "0":
        return
    if value != "1":
        sys.stderr.write(
            f"peregrine: ignoring PEREGRINE={value!r}: use PEREGRINE=1 to enable the JIT "
            "or PEREGRINE=0 (or unset) to leave it off; the JIT stays off\n"
        )
        return
    try:
        import peregrine

        peregrine.enable()
    except Exception as exc:  # noqa: BLE001 - start-up must survive anything
        sys.stderr.write(f"peregrine: could not enable the JIT at start-up ({exc}); running without it\n")


_enable_from_environment()
