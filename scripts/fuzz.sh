#!/usr/bin/env bash
# Fuzzes the targets of fuzz/ under AFL++ (Debian's afl++), with coverage feedback: the target
# binary is built with SanitizerCoverage (trace-pc-guard) and linked with AFL++'s runtime, which
# runs it as a fork server. The long mode, for nightly runs; the test suite fuzzes the same targets
# in process for a few seconds each (cargo test -p finagent-fuzz).
#
# For each target it prints executions per second, the edges covered and the crashes found; a
# crash is copied to fuzz/regressions/<target>/ (replayed by the test suite from then on) and
# makes the script fail.
#
# Usage: scripts/fuzz.sh [seconds per target, default 300] [target ...; default: image parsers extraction job multipart]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

seconds="${1:-300}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(image parsers extraction job multipart)

step "fuzz: AFL++ (Debian)"
install_debian_packages afl++ tesseract-ocr libtesseract-dev libleptonica-dev libclang-dev clang pkg-config
runtime="$( (find /usr/lib/afl /usr/lib/x86_64-linux-gnu/afl -name 'afl-compiler-rt.o' 2>/dev/null || true) | head -1)"
[ -n "$runtime" ] || { echo "afl++ has no afl-compiler-rt.o on this machine" >&2; exit 1; }
echo "AFL++ $(dpkg-query -W -f='${Version}' afl++), runtime $runtime"

step "fuzz: the instrumented build"
host="$(rustc -vV | sed -n 's/^host: //p')"
build_dir="$root/target/fuzz-afl"
features=(--features afl)
case " ${targets[*]} " in *" multipart "*) ;; *) features+=(--no-default-features) ;; esac
# --target keeps the instrumentation off build scripts and procedural macros.
RUSTFLAGS="-C passes=sancov-module -C llvm-args=-sanitizer-coverage-level=3 \
  -C llvm-args=-sanitizer-coverage-trace-pc-guard -C llvm-args=-sanitizer-coverage-prune-blocks=0 \
  -C debug-assertions -C overflow-checks -C link-arg=$runtime" \
  cargo build --release --locked -p finagent-fuzz --bin fuzz-target "${features[@]}" --target "$host" --target-dir "$build_dir"
binary="$build_dir/$host/release/fuzz-target"

work="$(mktemp -d "${TMPDIR:-/tmp}/finagent-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# The fork server starts once the target is warm (fuzz/src/bin/fuzz_target.rs).
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_DEFER_FORKSRV=1
crashed=0
summary=()
for target in "${targets[@]}"; do
  step "fuzz: $target for ${seconds} s"
  "$binary" seeds "$target" "$work/$target-in"
  afl-fuzz -i "$work/$target-in" -o "$work/$target-out" -V "$seconds" -t 2000 -m none -- "$binary" "$target" \
    >"$work/$target.log" 2>&1 || { tail -30 "$work/$target.log" >&2; exit 1; }
  stats="$work/$target-out/default/fuzzer_stats"
  stat() { sed -n "s/^$1 *: *//p" "$stats"; }
  crashes="$(find "$work/$target-out/default/crashes" -type f -name 'id:*' | wc -l)"
  summary+=("$(printf '%-9s %10s execs %9s/s  edges %6s (%s of the map)  corpus %5s  crashes %s' \
    "$target" "$(stat execs_done)" "$(stat execs_per_sec)" "$(stat edges_found)" "$(stat bitmap_cvg)" \
    "$(stat corpus_count)" "$crashes")")
  if [ "$crashes" -gt 0 ]; then
    crashed=1
    mkdir -p "fuzz/regressions/$target"
    for crash in "$work/$target-out/default/crashes"/id:*; do
      cp "$crash" "fuzz/regressions/$target/crash-$(sha256sum "$crash" | cut -c1-16)"
    done
  fi
done

step "fuzz: summary (${seconds} s per target)"
printf '%s\n' "${summary[@]}"
if [ "$crashed" -ne 0 ]; then
  echo "crashes were copied to fuzz/regressions/; the test suite replays them" >&2
  exit 1
fi
