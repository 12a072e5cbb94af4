#!/usr/bin/env bash
# Runs FinancialAgent all-in-one on this machine: installs the runtime packages that are missing,
# builds the release binary, and starts the API with in-process OCR workers on the embedded store
# at http://127.0.0.1:8000 (override with LISTEN_ADDR or --listen). Stop it with Ctrl-C.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

step "installing runtime packages"
install_debian_packages tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd tesseract-ocr-deu tesseract-ocr-fra tesseract-ocr-spa tesseract-ocr-ita tesseract-ocr-nld tesseract-ocr-por poppler-utils libtesseract-dev libleptonica-dev libclang-dev clang pkg-config \
  curl jq ca-certificates python3 python3-venv
ensure_ppocr

step "building (release)"
cargo build --release --locked -p finagent-api-server

step "starting FinancialAgent on http://${LISTEN_ADDR:-127.0.0.1:8000} (API and OCR workers, data in ${DATA_DIR:-data}/)"
echo "open http://${LISTEN_ADDR:-127.0.0.1:8000} in a browser for the web app (the API is under /api, its docs at /docs)"
echo "first time? create an account there, or an administrator:  target/release/api-server create-admin --username admin --email you@example.com"
export OMP_THREAD_LIMIT=1
exec "$root/target/release/api-server" serve "$@"
