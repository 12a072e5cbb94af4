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

install_debian_packages tesseract-ocr tesseract-ocr-eng libtesseract-dev libleptonica-dev libclang-dev clang \
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

redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$run_dir" \
  --logfile "$run_dir/redis.log" --daemonize no &
pids+=("$!")
wait_for_port "$redis_port" redis "$run_dir/redis.log"
mongo_port="$(free_port)"
"$VENV/bin/secantusd-py" --host 127.0.0.1 --port "$mongo_port" --storage-path "$run_dir/mongo" \
  --log-level WARNING >"$run_dir/mongo.log" 2>&1 &
pids+=("$!")
wait_for_port "$mongo_port" mongodb "$run_dir/mongo.log"

OMP_THREAD_LIMIT=1 "$root/target/release/ocr-worker" soak \
  --redis-url "redis://127.0.0.1:$redis_port/" \
  --mongodb-url "mongodb://127.0.0.1:$mongo_port/?directConnection=true" \
  --images "$root/ocr-worker/tests/fixtures/receipts" "$@"
