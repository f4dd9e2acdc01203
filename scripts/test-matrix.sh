#!/usr/bin/env bash
# `make test-matrix`: every Airflow 3 minor (newest patch) on the oldest and the newest Python it supports.
# `make test-matrix-ui`: the connection forms and their Test button in headless Chromium, once per minor.
#
# Each cell gets its own venv under .matrix/ and runs one cell at a time (the machine is shared).
# Usage: bash scripts/test-matrix.sh [unit|ui]; MATRIX="3.10:3.1.8:2026-03-25" picks cells, MATRIX_TESTS tests.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
MODE=${1:-unit}
$PYTHON -m uv --version >/dev/null 2>&1 || $PYTHON -m pip install --quiet uv
# Never download an interpreter: a cell whose Python is missing says so instead.
export UV_PYTHON_DOWNLOADS=never

# Cells are python:airflow[:date]. The python field may list fallbacks, newest first ("3.14/3.13"): the
# first one installed here is used and the table names both. Airflow pins its dependencies with
# constraint files that this machine cannot download; resolving as of a date just after the release
# (uv --exclude-newer) gives the dependency versions it was tested with. Our common-compat bridge is
# exempt: its later releases still support every Airflow 3 minor.
# Supported Pythons (apache-airflow-core's Requires-Python; ours starts at 3.10):
#   3.0: 3.9-3.12   3.1: 3.10-3.13   3.2: 3.10-3.14   3.3: 3.10-3.14
UNIT_CELLS="3.10:3.0.6:2025-09-15 3.12:3.0.6:2025-09-15
3.10:3.1.8:2026-03-25 3.13:3.1.8:2026-03-25
3.10:3.2.2:2026-06-10 3.14/3.13:3.2.2:2026-06-10
3.10:3.3.2 3.14/3.13:3.3.2"
# The browser check boots a whole Airflow per cell (about four minutes): the oldest Python per minor, whose
# venv the unit cells already made.
UI_CELLS="3.10:3.0.6:2025-09-15 3.10:3.1.8:2026-03-25 3.10:3.2.2:2026-06-10 3.10:3.3.2"
case $MODE in
  unit)
    MATRIX=${MATRIX:-$UNIT_CELLS}
    DEP_GROUPS=(--group test)
    # MATRIX_TESTS narrows it (e.g. "tests/unit tests/hooks") for a quicker first pass.
    read -r -a TESTS <<<"${MATRIX_TESTS:-tests --ignore=tests/e2e}"
    REPORT=reports/version-matrix.md
    TITLE="unit, hook, operator, sensor, trigger, reliability and emulator tests"
    ;;
  ui)
    MATRIX=${MATRIX:-$UI_CELLS}
    DEP_GROUPS=(--group test --group e2e)
    TESTS=(tests/e2e/test_connection_ui.py)
    REPORT=reports/version-matrix-ui.md
    TITLE="connection forms and Test button in Chromium (tests/e2e/test_connection_ui.py)"
    ;;
  *) echo "usage: $0 [unit|ui]" >&2; exit 2 ;;
esac

# The interpreter for a Python version: on PATH, or one of pyenv's builds; nothing downloaded.
# (pyenv's shims are on PATH for every version but run only the active one: each candidate must answer.)
find_python() {
  local version=$1 candidate
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python"$version" \
      "$(command -v "python$version" 2>/dev/null)" "$($PYTHON -m uv python find "$version" 2>/dev/null)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c 'import venv' >/dev/null 2>&1; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

results=()
status=0
for combo in $MATRIX; do
  IFS=: read -r pythons airflow as_of <<<"$combo"
  wanted=${pythons%%/*}
  interpreter=""
  py=""
  IFS=/ read -r -a choices <<<"$pythons"
  for choice in "${choices[@]}"; do
    if interpreter=$(find_python "$choice"); then py=$choice; break; fi
  done
  label=$wanted
  if [ -z "$py" ]; then
    results+=("| $wanted | $airflow | not run: no Python $wanted on this machine (uv downloads nothing here) |")
    continue
  fi
  [ "$py" != "$wanted" ] && label="$py (no $wanted here)"
  pin=()
  if [ -n "${as_of:-}" ]; then
    pin=(--exclude-newer "$as_of" --exclude-newer-package "apache-airflow-providers-common-compat=2100-01-01"
         --exclude-newer-package "airflow-workflow-provider=2100-01-01")
  fi
  venv=".matrix/py${py}-airflow${airflow}"
  echo "=== Python $py ($interpreter), Airflow $airflow: $MODE ==="
  if ! $PYTHON -m uv venv --quiet --allow-existing --python "$interpreter" "$venv"; then
    results+=("| $label | $airflow | venv failed |"); status=1; continue
  fi
  if ! $PYTHON -m uv pip install --quiet --python "$venv/bin/python" "${pin[@]}" \
      "apache-airflow==$airflow" -e . "${DEP_GROUPS[@]}"; then
    results+=("| $label | $airflow | install failed |"); status=1; continue
  fi
  log="$venv/pytest-$MODE.log"
  # AWP_E2E opts the browser module in; -rxs lists what was skipped or expected to fail, and why.
  if AWP_E2E=1 "$venv/bin/python" -m pytest -q -rxs -p no:cacheprovider "${TESTS[@]}" >"$log" 2>&1; then
    outcome="passed: $(tail -n 1 "$log" | tr -d '=' | sed 's/^ *//')"
  else
    outcome="FAILED: $(tail -n 1 "$log" | tr -d '=' | sed 's/^ *//') (log: $log)"; status=1
  fi
  results+=("| $label | $airflow | $outcome |")
  echo "$outcome"
done
mkdir -p reports
{
  echo "# Airflow version matrix: $MODE"
  echo
  echo "Written by \`bash scripts/test-matrix.sh $MODE\` on $(date -u +%Y-%m-%d)."
  echo
  echo "| Python | Airflow | $TITLE |"
  echo "| --- | --- | --- |"
  printf '%s\n' "${results[@]}"
} > "$REPORT"
cat "$REPORT"
exit $status
