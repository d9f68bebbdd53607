"""``python -m peregrine script.py [args...]``: run a script (or ``-m module``) with the JIT on,
exactly as ``python script.py`` would: same ``sys.argv``, ``__main__``, exit code and traceback."""

import os
import runpy
import sys

USAGE = """usage: python -m peregrine [--stats] [-m module | script.py] [args...]

Runs the program with the Peregrine JIT enabled.
  --stats   print the tier statistics to stderr when the program ends (this process only)
Environment:
  PEREGRINE_BASELINE_THRESHOLD  entries before baseline compilation (0: first call)
  PEREGRINE_OPTIMIZE_THRESHOLD  entries before optimization (a number or off)
  PEREGRINE_STATS=1             print tier statistics at exit
  PEREGRINE_LOG=info|debug      log compile and fallback events to stderr
"""


def _strip_our_frames(tb):
    """Drops the traceback entries of this launcher and runpy, as `python script.py` has none."""
    ours = (globals(), vars(runpy))  # runpy is frozen: its frames have no real file name
    while tb is not None and any(tb.tb_frame.f_globals is g for g in ours):
        tb = tb.tb_next
    return tb


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        sys.stderr.write(USAGE)
        return 0 if argv else 2
    import peregrine

    if argv[0] == "--stats":
        import atexit

        atexit.register(lambda: sys.stderr.write(peregrine.format_stats() + "\n"))
        return main(argv[1:])
    if argv[0] == "-m":
        if len(argv) < 2:
            sys.stderr.write("python -m peregrine: -m needs a module name\n" + USAGE)
            return 2
        module, args = argv[1], argv[2:]
        sys.argv = [module, *args]  # runpy replaces argv[0] with the module's path
        sys.path.insert(0, os.getcwd())
        run = lambda: runpy.run_module(module, run_name="__main__", alter_sys=True)  # noqa: E731
    else:
        script, args = argv[0], argv[1:]
        if not os.path.exists(script):
            sys.stderr.write(f"{sys.executable}: can't open file {os.path.abspath(script)!r}: "
                             "[Errno 2] No such file or directory\n")
            return 2
        sys.argv = [script, *args]
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        run = lambda: runpy.run_path(script, run_name="__main__")  # noqa: E731

    peregrine.enable()
    try:
        run()
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - report like the interpreter does
        # The printer reads the exception's own __traceback__, so strip it there.
        exc = exc.with_traceback(_strip_our_frames(exc.__traceback__))
        sys.excepthook(type(exc), exc, exc.__traceback__)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
