#!/usr/bin/env bash
# Runs FinancialAgent all-in-one on this machine: installs the runtime packages that are missing,
# builds the release binaries once, and starts the API at http://127.0.0.1:8000 (override with
# LISTEN_ADDR). Stop it with Ctrl-C.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

step "installing runtime packages"
install_debian_packages tesseract-ocr tesseract-ocr-eng libtesseract-dev libleptonica-dev libclang-dev clang pkg-config

step "building (release)"
cargo build --release --locked -p finagent-api-server

step "starting the API on http://${LISTEN_ADDR:-127.0.0.1:8000}"
export OMP_THREAD_LIMIT=1
exec "$root/target/release/api-server" serve "$@"
