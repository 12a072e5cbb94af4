#!/usr/bin/env bash
# Builds Argo CD from Go modules at a pinned version and prints the folder that holds it: the
# multi-call `argocd` binary (CLI, application controller, repo server and API server, chosen by
# ARGOCD_BINARY_NAME) with the helper scripts its repo server runs from PATH, and the Argo CD CRDs
# of the same module (crds/).
#
# The files go to a cache outside the repository ($FINAGENT_ARGOCD_CACHE, by default
# ~/.cache/finagent/argocd/<version>), so fresh clones on the same machine reuse them; a second run
# with the same version only checks that they are there.
#
# Argo CD v3.6 needs Go 1.27: this script (and only the throwaway module it builds in) takes that
# toolchain from the Go module proxy (GOTOOLCHAIN). Its go.mod pins the Kubernetes modules and a
# few others with `replace` directives, which a module that requires it must repeat; they are
# copied from that go.mod. Its own `replace` of gitops-engine to a folder of its tree is dropped:
# gitops-engine is published as a module of the same version.
set -euo pipefail

ARGOCD_VERSION="${FINAGENT_ARGOCD_VERSION:-v3.6.2}"
export GOTOOLCHAIN="${FINAGENT_ARGOCD_GOTOOLCHAIN:-go1.27.3}"

cache="${FINAGENT_ARGOCD_CACHE:-$HOME/.cache/finagent/argocd}"
out="$cache/argocd-$ARGOCD_VERSION"
files=(bin/argocd bin/git-verify-wrapper.sh bin/gpg-wrapper.sh crds/application-crd.yaml crds/appproject-crd.yaml)

all_present() {
  local file
  for file in "${files[@]}"; do
    [ -s "$out/$file" ] || return 1
  done
  [ -x "$out/bin/argocd" ]
}

if all_present; then
  echo "argo cd: present ($out)" >&2
  echo "$out"
  exit 0
fi

if ! command -v go >/dev/null; then
  echo "argo cd: no Go toolchain on PATH; it is needed to build Argo CD" >&2
  exit 1
fi

export GOFLAGS="-mod=mod"
export CGO_ENABLED=0
work="$cache/src"
mkdir -p "$work" "$out/bin" "$out/crds"
started=$(date +%s)

# shellcheck source=scripts/gobuild.sh
source "$(dirname "${BASH_SOURCE[0]}")/gobuild.sh"

echo "argo cd: building $ARGOCD_VERSION with $GOTOOLCHAIN" >&2
dir="$(new_module argocd)"
module="github.com/argoproj/argo-cd/v3"
(
  cd "$dir"
  upstream="$(go mod download -json "$module@$ARGOCD_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  go_version="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$upstream")"
  {
    printf 'module finagent.test/argocd\n\ngo %s\n\n' "$go_version"
    # Every `replace` block and line of the upstream go.mod but those that point into its own tree.
    sed -n '/^replace (/,/^)/p; /^replace [^(]/p' "$upstream" | grep -v '=> \./'
  } >go.mod
  go get "$module/cmd@$ARGOCD_VERSION" >&2
  package="$module/common"
  go build -trimpath -o "$out/bin/argocd" \
    -ldflags "-X $package.version=${ARGOCD_VERSION#v} -X $package.gitTag=$ARGOCD_VERSION -X $package.gitTreeState=clean -X $package.buildDate=1970-01-01T00:00:00Z" \
    "$module/cmd"
  source_dir="$(go list -m -f '{{.Dir}}' "$module")"
  cp "$source_dir/manifests/crds/application-crd.yaml" "$source_dir/manifests/crds/appproject-crd.yaml" "$out/crds/"
  chmod u+w "$out/crds/"*
  # The helper scripts the repo server runs from its PATH, as Argo CD's image installs them.
  install -m 0755 "$source_dir/hack/git-verify-wrapper.sh" "$source_dir/hack/gpg-wrapper.sh" "$out/bin/"
)

all_present
echo "argo cd: built in $(($(date +%s) - started)) s ($out)" >&2
echo "$out"
