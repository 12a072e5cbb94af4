#!/usr/bin/env bash
# Resilience soak, outside the default tests: starts Redis and the MongoDB-wire server on free
# loopback ports (as scripts/test.sh does), then pushes jobs through worker processes while a chaos
# loop kills workers with SIGKILL. Prints accepted, done, dead-lettered, duplicates and lost.
#
# Usage: scripts/soak.sh [--jobs 500] [--workers 2] [--kills 10] [--images DIR]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

install_debian_packages tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd tesseract-ocr-deu tesseract-ocr-fra tesseract-ocr-spa tesseract-ocr-ita tesseract-ocr-nld tesseract-ocr-por poppler-utils libtesseract-dev libleptonica-dev libclang-dev clang \
  pkg-config redis-server python3 python3-venv
ensure_test_venv
cargo build --release --locked -p finagent-ocr-worker

run_dir="$(mktemp -d "${TMPDIR:-/tmp}/finagent-soak.XXXXXX")"
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$run_dir"
  exit "$status"
}
trap cleanup EXIT INT TERM

start_servers "$run_dir" "$run_dir/mongo"

OMP_THREAD_LIMIT=1 "$root/target/release/ocr-worker" soak \
  --redis-url "$STARTED_REDIS_URL" --mongodb-url "$STARTED_MONGODB_URL" \
  --images "$root/ocr-worker/tests/fixtures/receipts" "$@"
