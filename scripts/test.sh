#!/usr/bin/env bash
# Set up everything the tests need, then run the whole suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/ruff check .
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest exit 5 means "no tests collected": that is a failure for us, never a pass.
exit $rc
