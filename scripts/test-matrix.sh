#!/usr/bin/env bash
# `make test-matrix`: the oldest and the newest Airflow 3 on the oldest and the newest Python Airflow supports.
# Each combination gets its own venv under .matrix/ and runs the hook, operator and unit tests.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
$PYTHON -m uv --version >/dev/null 2>&1 || $PYTHON -m pip install --quiet uv
# python:airflow[:date] triples; override with MATRIX="3.10:3.0.6:2025-09-15 3.13:3.3.2".
# Airflow pins its dependencies with constraint files that this machine cannot download; resolving
# as of the Airflow release's date (uv --exclude-newer) gives the dependency versions it was tested
# with. Our own common-compat bridge is exempt: its releases after that date still support 3.0.
MATRIX=${MATRIX:-"3.10:3.0.6:2025-09-15 3.13:3.3.2"}
results=()
status=0
for combo in $MATRIX; do
  IFS=: read -r py airflow as_of <<<"$combo"
  pin=()
  if [ -n "${as_of:-}" ]; then
    pin=(--exclude-newer "$as_of" --exclude-newer-package "apache-airflow-providers-common-compat=2100-01-01"
         --exclude-newer-package "airflow-workflow-provider=2100-01-01")
  fi
  venv=".matrix/py${py}-airflow${airflow}"
  echo "=== Python $py, Airflow $airflow ==="
  if ! $PYTHON -m uv venv --quiet --allow-existing --python "$py" "$venv"; then
    results+=("| $py | $airflow | no Python $py on this machine |"); status=1; continue
  fi
  if ! $PYTHON -m uv pip install --quiet --python "$venv/bin/python" "${pin[@]}" "apache-airflow==$airflow" -e . --group test; then
    results+=("| $py | $airflow | install failed |"); status=1; continue
  fi
  log="$venv/pytest.log"
  if "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit tests/hooks tests/operators tests/testing >"$log" 2>&1; then
    outcome="passed: $(tail -n 1 "$log")"
  else
    outcome="FAILED: $(tail -n 1 "$log")"; status=1
  fi
  results+=("| $py | $airflow | $outcome |")
  echo "$outcome"
done
mkdir -p reports
{
  echo "# Airflow version matrix"
  echo
  echo "| Python | Airflow | unit, hook, operator and emulator tests |"
  echo "| --- | --- | --- |"
  printf '%s\n' "${results[@]}"
} > reports/version-matrix.md
cat reports/version-matrix.md
exit $status
