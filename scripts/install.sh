#!/usr/bin/env bash
# Installs what Shoal needs on a fresh Debian machine (run as root): Python packages in
# editable mode; system packages only for extras (apt is skipped when nothing is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Shoal needs Python 3.11 or newer" >&2; exit 1
fi
python3 -m pip install --quiet --disable-pip-version-check -e ".${extras:+[$extras]}"
