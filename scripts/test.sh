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
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest exit 5 means "no tests collected": that is a failure for us, never a pass.
exit $rc
