#!/usr/bin/env bash
# Set up everything the tests need, then run the whole suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/ruff format --check . || { echo "ruff format: run '.venv/bin/ruff format .' and commit"; exit 1; }
.venv/bin/ruff check .
# Type check: packages and strictness are in pyproject.toml [tool.mypy]; any error fails the run.
t0=$SECONDS
if ! mypy_out=$(.venv/bin/mypy 2>&1); then
  printf '%s\n' "$mypy_out"
  echo "mypy: FAILED ($((SECONDS - t0)) s): fix the errors above (config: pyproject.toml [tool.mypy])"
  exit 1
fi
echo "mypy: ${mypy_out##*$'\n'} ($((SECONDS - t0)) s)"
set +e
# Most tests wait on real processes, brokers and lines rather than compute: three workers (one
# test file each at a time, so a file's fixtures and order hold) finish the suite in well under
# 15 minutes on 2 cores. HEADFRAME_TEST_WORKERS=0 runs it serially.
workers="${HEADFRAME_TEST_WORKERS:-3}"
xdist=()
if [[ "$workers" != "0" ]]; then xdist=(-n "$workers" --dist loadfile); fi
.venv/bin/python -m pytest "${xdist[@]}" "$@"
rc=$?
set -e
# pytest exit 5 means "no tests collected": that is a failure for us, never a pass.
exit $rc
