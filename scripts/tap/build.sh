#!/usr/bin/env bash
# Builds Tap (bluesky-social/indigo cmd/tap) from the Go module proxy into .cache/tap/bin/tap.
# Idempotent: does nothing when .cache/tap/bin/tap was already built for TAP_VERSION.
#
# TAP_VERSION is the module proxy's pseudo-version of indigo commit af2fec94f34c (2026-06-05),
# which contains the tap-v0.1.10 tag (4f47add43060, 2026-03-11). The proxy does not resolve the
# tag name itself ("tap-v0.1.10": 403 "This module version is not available").
#
# The pinned indigo needs Go >= 1.26; an older local Go fetches that toolchain through the module
# proxy (GOTOOLCHAIN=auto, the default) unless GOTOOLCHAIN=local is set.
#
# Go state lives under .cache/tap (module cache made writable with -modcacherw, so
# `rm -rf .cache` removes it); this script never needs to clean it.
set -euo pipefail

TAP_VERSION='v0.0.0-20260605210604-af2fec94f34c'
TAP_PKG='github.com/bluesky-social/indigo/cmd/tap'

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache_dir="${repo_root}/.cache/tap"
bin_dir="${cache_dir}/bin"
stamp_file="${bin_dir}/tap.version"

is_built() {
  [[ -x "${bin_dir}/tap" && -f "${stamp_file}" && "$(cat "${stamp_file}")" == "${TAP_VERSION}" ]]
}

if is_built; then
  echo "tap ${TAP_VERSION} already built: ${bin_dir}/tap"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "error: 'go' was not found on PATH; Go >= 1.26 (the pinned indigo's go.mod says 'go 1.26') is needed to build Tap (${TAP_PKG}@${TAP_VERSION})" >&2
  exit 1
fi
if ! command -v "${CC:-gcc}" >/dev/null 2>&1 && ! command -v cc >/dev/null 2>&1; then
  echo "error: no C compiler found; Tap's SQLite driver needs cgo (install gcc)" >&2
  exit 1
fi

mkdir -p "${bin_dir}" "${cache_dir}/gopath" "${cache_dir}/gocache"

# one build at a time (test files may start Tap concurrently)
if command -v flock >/dev/null 2>&1; then
  exec 9>"${cache_dir}/build.lock"
  flock 9
  if is_built; then
    echo "tap ${TAP_VERSION} already built: ${bin_dir}/tap"
    exit 0
  fi
fi
rm -f "${stamp_file}"

echo "building tap ${TAP_VERSION} with $(go version) ..."
start=$(date +%s)
env \
  GOBIN="${bin_dir}" \
  GOPATH="${cache_dir}/gopath" \
  GOMODCACHE="${cache_dir}/gopath/pkg/mod" \
  GOCACHE="${cache_dir}/gocache" \
  GOFLAGS='-mod=mod -modcacherw' \
  CGO_ENABLED=1 \
  go install "${TAP_PKG}@${TAP_VERSION}"

echo "${TAP_VERSION}" >"${stamp_file}"
echo "built ${bin_dir}/tap in $(($(date +%s) - start))s"
