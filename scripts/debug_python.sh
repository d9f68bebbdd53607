#!/usr/bin/env bash
# Sets up the debug-CPython test platform: Debian's python3.11-dbg (a Py_DEBUG build of 3.11 with
# CPython's assertions and `sys.gettotalrefcount`) and its regression suite, installed with apt when
# missing, and Peregrine built for it (an extension built for the debug ABI, `cp311d`) in the
# virtual environment build/debug-venv. Prints that environment's python on its last line.
#
#   bash scripts/debug_python.sh            # then: build/debug-venv/bin/python -m test -R 3:3 ...
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DBG=python3.11d
export PIP_ROOT_USER_ACTION=ignore

if ! command -v "$DBG" >/dev/null || ! "$DBG" -c 'import test.libregrtest' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "debug_python.sh: installing python3.11-dbg and libpython3.11-testsuite with apt" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11-dbg libpython3.11-testsuite >&2
  else
    echo "debug_python.sh: needs $DBG and its test suite: apt-get install python3.11-dbg libpython3.11-testsuite" >&2
    exit 1
  fi
fi

# The layout checks, against the debug headers: a Py_DEBUG build may lay structs out differently.
PYTHON=$DBG PYO3_PYTHON=$(command -v $DBG) CARGO_TARGET_DIR=target/debug-python \
  cargo test -p peregrine-runtime --release --quiet --test layout >&2

rm -rf build/debug-wheel
CARGO_TARGET_DIR=target/debug-python "$PY" -m maturin build --release --quiet -i "$(command -v $DBG)" \
  -o build/debug-wheel >&2
[ -x build/debug-venv/bin/python ] || "$DBG" -m venv --without-pip build/debug-venv
# The debug interpreter has no pip of its own: install the wheel by unpacking it (its .data/purelib
# part, peregrine.pth, goes to site-packages as well).
build/debug-venv/bin/python - build/debug-wheel/*.whl <<'PYEOF'
import pathlib, shutil, site, sys, zipfile
site_dir = pathlib.Path(site.getsitepackages()[0])
for old in site_dir.glob("peregrine*"):
    shutil.rmtree(old) if old.is_dir() else old.unlink()
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for name in wheel.namelist():
        parts = name.split("/")
        if parts[0].endswith(".data"):
            if parts[1] not in ("purelib", "platlib"):
                continue
            parts = parts[2:]
        target = site_dir.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(wheel.read(name))
PYEOF
build/debug-venv/bin/python -c 'import sys, peregrine; assert hasattr(sys, "gettotalrefcount"); peregrine.enable()' >&2
echo "$PWD/build/debug-venv/bin/python"
