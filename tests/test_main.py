"""`python -m peregrine script.py args` behaves like `python script.py args` with the JIT on."""

import textwrap

from conftest import run_python

SCRIPT = textwrap.dedent(
    """\
    import sys
    import peregrine

    def inner(n):
        if n == 0:
            raise ZeroDivisionError("deep")
        return inner(n - 1)

    print("argv", sys.argv)
    print("name", __name__)
    print("jit", peregrine.is_enabled())
    print("path0", sys.path[0])
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "exit":
        sys.exit(3)
    if mode == "raise":
        inner(2)
    """
)


def _write(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(SCRIPT)
    return script


def test_same_argv_name_and_path(tmp_path):
    script = _write(tmp_path)
    r = run_python("-m", "peregrine", str(script), "a", "--b", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"argv [{str(script)!r}, 'a', '--b']" in r.stdout
    assert "name __main__" in r.stdout
    assert "jit True" in r.stdout
    assert f"path0 {tmp_path}" in r.stdout


def test_exit_code_is_passed_through(tmp_path):
    script = _write(tmp_path)
    r = run_python("-m", "peregrine", str(script), "exit", cwd=tmp_path)
    assert r.returncode == 3


def test_traceback_matches_plain_python(tmp_path):
    script = _write(tmp_path)
    plain = run_python(str(script), "raise", cwd=tmp_path)
    jitted = run_python("-m", "peregrine", str(script), "raise", cwd=tmp_path)
    assert plain.returncode == jitted.returncode == 1
    assert "ZeroDivisionError: deep" in plain.stderr
    assert jitted.stderr == plain.stderr


def test_module_mode(tmp_path):
    (tmp_path / "mymod.py").write_text("import sys, peregrine\nprint(__name__, sys.argv[1:], peregrine.is_enabled())\n")
    r = run_python("-m", "peregrine", "-m", "mymod", "x", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "__main__ ['x'] True"


def test_missing_script_and_usage(tmp_path):
    r = run_python("-m", "peregrine", "nope.py", cwd=tmp_path)
    assert r.returncode == 2 and "can't open file" in r.stderr
    r = run_python("-m", "peregrine", cwd=tmp_path)
    assert r.returncode == 2 and "usage" in r.stderr


def test_stats_option_prints_the_tier_table_at_exit(tmp_path):
    script = _write(tmp_path)
    r = run_python("-m", "peregrine", "--stats", str(script), "x", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"argv [{str(script)!r}, 'x']" in r.stdout
    assert r.stderr.startswith("Peregrine tier statistics")
