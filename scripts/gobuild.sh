# shellcheck shell=bash
# Helpers of the scripts that build tools from Go modules (controlplane-build.sh, node-build.sh).
# Sourced, not run. The caller sets `work` (a folder for the throwaway modules).
# shellcheck disable=SC2154  # work is the caller's

# A fresh module per tool under $work, so that the tools' dependency versions need not agree.
# Prints its folder.
new_module() {
  local dir="$work/$1"
  rm -rf "$dir"
  mkdir -p "$dir"
  printf 'module finagent.test/%s\n\ngo 1.26\n' "$1" >"$dir/go.mod"
  echo "$dir"
}

# k8s.io/kubernetes is not meant to be a dependency: its go.mod points its k8s.io/* staging modules
# at folders of its own tree (v0.0.0), so a module that requires it pins each of them with a
# `replace` to the matching published v0.x release. The list is read from that go.mod.
# Usage: require_kubernetes MODULE_DIR VERSION
require_kubernetes() {
  local dir="$1" version="$2" staging_version mod
  staging_version="v0.${version#v1.}"
  mod="$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  {
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$staging_version"'#p' "$mod"
    echo ")"
  } >>"$dir/go.mod"
}

# The -ldflags that stamp a Kubernetes binary with its version, as the release build does.
kubernetes_version_flags() {
  local version="$1" flags
  flags="-X k8s.io/component-base/version.gitVersion=$version"
  flags+=" -X k8s.io/component-base/version.gitMajor=1"
  flags+=" -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2)"
  flags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  flags+=" -X k8s.io/client-go/pkg/version.gitVersion=$version"
  echo "$flags"
}
