#!/usr/bin/env bash
# Sets up everything on a fresh machine and runs every test: the Rust unit and layout tests
# (cargo test), the behaviour tests (pytest) against the installed package, CPython's own
# regression-test modules with the JIT on, compared with stock CPython, and the leak check:
# regression-test modules with `-R 3:3` on Debian's debug CPython (installed with apt when
# missing, see scripts/debug_python.sh) with every code object forced into the baseline.
# Prints each runner's summary line and exits non-zero if any runner failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PIP_ROOT_USER_ACTION=ignore

command -v cargo >/dev/null || { echo "test.sh: cargo (Rust 1.95) is required" >&2; exit 1; }
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "test.sh: Peregrine needs CPython 3.11 as $PY" >&2; exit 1; }

set -e
echo "== installing build and test tools"
"$PY" -m pip install -q --disable-pip-version-check "maturin>=1.5,<2" "pytest>=7"
echo "== building and installing peregrine (release build of the extension)"
"$PY" -m pip install -q --disable-pip-version-check --no-build-isolation .
set +e

# cargo test links libpython (no extension-module feature), so its directory must be findable.
LIBDIR=$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYO3_PYTHON=$(command -v "$PY")

status=0
echo "== cargo test"
cargo test --workspace --quiet || status=1
echo "== pytest"
"$PY" -m pytest tests -q -p no:cacheprovider || status=1
echo "== CPython regression-test modules with the JIT on (default thresholds; baseline forced), against stock"
"$PY" scripts/regrtest.py --config default --config baseline --modules-file tests/regrtest_modules.txt || status=1
echo "== leak check: CPython regression-test modules with -R 3:3 on a debug CPython (python3.11d), baseline forced"
if DEBUG_PY=$(bash scripts/debug_python.sh | tail -n 1); then
  "$PY" scripts/regrtest.py --python "$DEBUG_PY" --huntrleaks 3:3 --config baseline --no-stock \
    --timeout 1200 --modules-file tests/leakcheck_modules.txt || status=1
else
  echo "test.sh: could not set up the debug CPython (scripts/debug_python.sh)" >&2
  status=1
fi
exit $status
