"""Start-up: PEREGRINE=1 through the .pth file, environment options, warnings that never stop the
interpreter, PEREGRINE_STATS and PEREGRINE_LOG. Each case runs in a fresh interpreter."""

import pytest

from conftest import run_python

PROBE = "import sys, peregrine; print(peregrine.is_enabled(), peregrine.get_thresholds())"


def test_peregrine_1_enables_the_jit_at_start():
    r = run_python("-c", PROBE, env={"PEREGRINE": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("True")
    assert r.stderr == ""


@pytest.mark.parametrize("env", [{}, {"PEREGRINE": "0"}])
def test_unset_or_0_leaves_it_off_and_imports_nothing(env):
    r = run_python("-c", "import sys; print('peregrine' in sys.modules)", env=env)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "False", "")


@pytest.mark.parametrize("value", ["yes", "2", "true", "", " 1"])
def test_other_values_warn_once_and_leave_it_off(value):
    r = run_python("-c", "import peregrine; print(peregrine.is_enabled())", env={"PEREGRINE": value})
    assert r.returncode == 0
    assert r.stdout.strip() == "False"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "PEREGRINE=" in lines[0] and "stays off" in lines[0], r.stderr


def test_threshold_variables_are_read_at_start():
    r = run_python(
        "-c", PROBE,
        env={"PEREGRINE": "1", "PEREGRINE_BASELINE_THRESHOLD": "0", "PEREGRINE_OPTIMIZE_THRESHOLD": "off"},
    )
    assert r.stdout.strip() == "True {'baseline': 0, 'optimize': 'off'}", r.stderr
    assert r.stderr == ""


def test_bad_threshold_variables_warn_and_keep_the_defaults():
    default = run_python("-c", PROBE, env={"PEREGRINE": "1"}).stdout
    r = run_python(
        "-c", PROBE,
        env={"PEREGRINE": "1", "PEREGRINE_BASELINE_THRESHOLD": "fast", "PEREGRINE_OPTIMIZE_THRESHOLD": "-4"},
    )
    assert r.returncode == 0
    assert r.stdout == default
    assert "PEREGRINE_BASELINE_THRESHOLD" in r.stderr and "PEREGRINE_OPTIMIZE_THRESHOLD" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 2


def test_stats_at_exit():
    r = run_python("-c", "def f(): pass\nfor _ in range(10): f()", env={"PEREGRINE": "1", "PEREGRINE_STATS": "1"})
    assert r.returncode == 0
    assert "Peregrine tier statistics" in r.stderr
    assert "interpreter" in r.stderr and "baseline" in r.stderr and "optimized" in r.stderr


def test_log_reports_compile_events():
    r = run_python(
        "-c", "def f(): pass\nfor _ in range(3): f()",
        env={"PEREGRINE": "1", "PEREGRINE_LOG": "info", "PEREGRINE_BASELINE_THRESHOLD": "1"},
    )
    assert r.returncode == 0
    assert "peregrine[info] frame hook installed" in r.stderr
    assert "baseline compiled f (<string>:1)" in r.stderr


def test_bad_log_level_warns():
    r = run_python("-c", "import peregrine", env={"PEREGRINE_LOG": "loud"})
    assert r.returncode == 0
    assert "PEREGRINE_LOG" in r.stderr and "loud" in r.stderr
