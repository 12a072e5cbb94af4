#!/usr/bin/env bash
# OCR load benchmark, outside the default tests. Runs the same load twice and prints one line each:
#   1. all-in-one: the API with in-process OCR workers (one per CPU) on the embedded store;
#   2. platform: the API on Redis and the MongoDB-wire server, with two separate ocr-worker
#      processes (one OCR thread each).
# Each line gives upload-to-result p50/p95, receipts per minute, and the latency of
# GET /api/ocr/result/{id} on the finished receipts.
#
# Usage: scripts/bench-ocr.sh [--clients 4] [--receipts 40]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

install_debian_packages tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd tesseract-ocr-deu tesseract-ocr-fra tesseract-ocr-spa tesseract-ocr-ita tesseract-ocr-nld tesseract-ocr-por poppler-utils libtesseract-dev libleptonica-dev libclang-dev clang \
  pkg-config redis-server python3 python3-venv
ensure_test_venv
cargo build --release --locked -p finagent-api-server -p finagent-ocr-worker

run_dir="$(mktemp -d "${TMPDIR:-/tmp}/finagent-bench-ocr.XXXXXX")"
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$run_dir"
  exit "$status"
}
trap cleanup EXIT INT TERM

export OMP_THREAD_LIMIT=1 RUST_LOG=warn
# The load comes from one user; the benchmark measures the pipeline, not the rate limiter.
export RATE_LIMIT_API_PER_SECOND=100000 RATE_LIMIT_API_BURST=100000
export RATE_LIMIT_UPLOAD_PER_SECOND=100000 RATE_LIMIT_UPLOAD_BURST=100000
bin="$root/target/release"

step "all-in-one: API with in-process OCR workers, embedded store"
port="$(free_port)"
DATA_DIR="$run_dir/aio" "$bin/api-server" serve --listen "127.0.0.1:$port" >"$run_dir/aio.log" 2>&1 &
aio=$!
pids+=("$aio")
wait_for_port "$port" api-server "$run_dir/aio.log"
"$bin/api-bench" load --url "http://127.0.0.1:$port" --label "all-in-one ($(getconf _NPROCESSORS_ONLN) in-process threads)" "$@"
kill "$aio"
wait "$aio" 2>/dev/null || true

step "platform: API on Redis and MongoDB, 2 ocr-worker processes"
start_servers "$run_dir" "$run_dir/mongo"
port="$(free_port)"
REDIS_URL="$STARTED_REDIS_URL" MONGODB_URL="$STARTED_MONGODB_URL" MONGODB_DB_NAME=bench OCR_WORKERS=0 \
  "$bin/api-server" serve --listen "127.0.0.1:$port" >"$run_dir/api.log" 2>&1 &
pids+=("$!")
wait_for_port "$port" api-server "$run_dir/api.log"
for worker in 1 2; do
  "$bin/ocr-worker" run --redis-url "$STARTED_REDIS_URL" --mongodb-url "$STARTED_MONGODB_URL" --database bench \
    --admin-listen "127.0.0.1:$(free_port)" --threads 1 >"$run_dir/worker-$worker.log" 2>&1 &
  pids+=("$!")
done
"$bin/api-bench" load --url "http://127.0.0.1:$port" --label "platform (2 worker processes)" "$@"
