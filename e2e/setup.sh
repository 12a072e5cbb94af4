#!/usr/bin/env bash
# Prepares a kind cluster (created from e2e/kind.yaml) for e2e/run.sh: installs ingress-nginx and
# loads the images built from this commit, tagged `e2e`.
#
# Usage: e2e/setup.sh [kind cluster name, default finagent-e2e]
set -euo pipefail

cluster="${1:-finagent-e2e}"
ingress_nginx_version="controller-v1.12.1"

echo "==> ingress-nginx ($ingress_nginx_version)"
kubectl apply -f "https://raw.githubusercontent.com/kubernetes/ingress-nginx/$ingress_nginx_version/deploy/static/provider/kind/deploy.yaml"
kubectl -n ingress-nginx rollout status deployment/ingress-nginx-controller --timeout=300s

echo "==> loading images into kind"
for image in operator:e2e api-server:e2e api-server:e2e-unready ocr-worker:e2e; do
  kind load docker-image --name "$cluster" "ghcr.io/finagent/$image"
done
# The datastores and Prometheus the operator runs, pulled once here so that the first rollout is
# not judged on Docker Hub's speed.
for image in redis:7.2 mongo:7.0 prom/prometheus:v2.55.1; do
  docker pull --quiet "$image"
  kind load docker-image --name "$cluster" "$image"
done
