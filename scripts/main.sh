#!/usr/bin/env bash
# The main job: a real program we did not write, pyflakes checking fifteen packages of CPython's
# standard library, run on stock CPython and under Peregrine side by side. Checks that both give
# the same output and exit code, and prints the tier statistics of the JIT run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PIP_ROOT_USER_ACTION=ignore
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "main.sh: Peregrine needs CPython 3.11 as $PY" >&2; exit 1; }

echo "== installing peregrine and the program (pyflakes 4.1.0)"
"$PY" -m pip install -q --disable-pip-version-check "maturin>=1.5,<2" "pyflakes==4.1.0"
"$PY" -m pip install -q --disable-pip-version-check --no-build-isolation .

STDLIB=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
TARGETS=()
for pkg in email json asyncio unittest xml http urllib logging multiprocessing concurrent \
           importlib idlelib tkinter lib2to3 distutils; do
  TARGETS+=("$STDLIB/$pkg")
done
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

run() { # name, command...
  local name=$1; shift
  local start end rc=0
  start=$(date +%s.%N)
  env -u PEREGRINE "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" || rc=$?
  end=$(date +%s.%N)
  echo "$rc" >"$OUT/$name.rc"
  printf '  %-8s %6.2f s  exit %s  %s lines of findings\n' "$name" "$(awk "BEGIN{print $end - $start}")" "$rc" \
    "$(wc -l <"$OUT/$name.out")"
}

echo "== pyflakes over ${#TARGETS[@]} standard-library packages"
run stock "$PY" -m pyflakes "${TARGETS[@]}"
run jit "$PY" -m peregrine --stats -m pyflakes "${TARGETS[@]}"

# The JIT run's stderr ends with the tier table; everything before it must equal stock's stderr.
sed '/^Peregrine tier statistics/,$d' "$OUT/jit.err" >"$OUT/jit.err.program"
if cmp -s "$OUT/stock.out" "$OUT/jit.out" && cmp -s "$OUT/stock.err" "$OUT/jit.err.program" \
   && cmp -s "$OUT/stock.rc" "$OUT/jit.rc"; then
  echo "== same findings, messages and exit code with and without the JIT"
else
  echo "== OUTPUT DIFFERS between stock CPython and Peregrine:" >&2
  diff "$OUT/stock.out" "$OUT/jit.out" | head -20 >&2
  exit 1
fi
echo
sed -n '/^Peregrine tier statistics/,$p' "$OUT/jit.err"
