#!/bin/sh
# Starts FerretDB with the interface of the official mongo image: the mongod flags --bind_ip_all,
# --bind_ip and --port; the root user from MONGO_INITDB_ROOT_USERNAME and MONGO_INITDB_ROOT_PASSWORD,
# created on the first start; the data in /data/db. Other mongod flags are refused, not ignored.
set -eu
bind=127.0.0.1
port=27017
while [ $# -gt 0 ]; do
  case "$1" in
    --bind_ip_all) bind= ;;
    --bind_ip) bind="$2"; shift ;;
    --port) port="$2"; shift ;;
    *) echo "mongod-compatible: unsupported mongod flag $1" >&2; exit 2 ;;
  esac
  shift
done
set -- --handler=sqlite --sqlite-url=file:/data/db/ --state-dir=/data/db \
  --listen-addr="$bind:$port" --debug-addr=:8088 --telemetry=disable --log-format=json
if [ -n "${MONGO_INITDB_ROOT_USERNAME:-}" ]; then
  # The password goes by the environment, never on the command line.
  FERRETDB_SETUP_PASSWORD="${MONGO_INITDB_ROOT_PASSWORD:?MONGO_INITDB_ROOT_PASSWORD is required with a user}"
  export FERRETDB_SETUP_PASSWORD
  set -- "$@" --test-enable-new-auth --setup-database=admin --setup-username="$MONGO_INITDB_ROOT_USERNAME"
fi
unset MONGO_INITDB_ROOT_PASSWORD
exec /usr/local/bin/ferretdb "$@"
