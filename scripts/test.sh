#!/usr/bin/env bash
# Installs everything the test suite needs and runs it (the default suite; long soak
# and benchmark runs are `pytest -m slow` and bench/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test,openstack
echo "== ruff"; ruff check .
echo "== import-linter"; lint-imports
echo "== pytest"
set +e
python3 -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests" >&2; fi
exit "$rc"
