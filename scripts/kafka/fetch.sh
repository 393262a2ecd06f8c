#!/usr/bin/env bash
# Download the jars of an Apache Kafka broker (and its tools) from Maven Central into
# .cache/kafka/<version>/libs (relative to the repository root), using
# scripts/kafka/<version>/pom.xml.
#
#   bash scripts/kafka/fetch.sh             # the version in KAFKA_VERSION, else the default (4.4.0)
#   bash scripts/kafka/fetch.sh 3.9.2       # these versions
#   bash scripts/kafka/fetch.sh --all       # every version with a pom (4.4.0 and 3.9.2)
#
# Idempotent: does nothing when the jars for the current pom are already there. The jars
# are copied into a temporary directory that is renamed into place at the end, so an
# interrupted download never looks complete. A marker file (.complete) records the hash
# of the pom the jars came from; editing the pom triggers a new download.
set -euo pipefail

# Keep in step with DEFAULT_KAFKA_VERSION in test/harness/kafka.ts.
default_version="4.4.0"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

die() {
  echo "kafka/fetch.sh: $*" >&2
  exit 1
}

known_versions() {
  for pom in scripts/kafka/*/pom.xml; do
    basename "$(dirname "$pom")"
  done
}

hash_file() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

fetch_version() {
  local version="$1"
  local pom="scripts/kafka/$version/pom.xml"
  local libs=".cache/kafka/$version/libs"
  local marker="$libs/.complete"
  [[ -f "$pom" ]] ||
    die "no pom for Kafka $version (scripts/kafka/$version/pom.xml); known: $(known_versions | tr '\n' ' ')"

  local want
  want="$(hash_file "$pom")"
  if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
    return 0
  fi

  command -v java >/dev/null 2>&1 ||
    die "java not found on PATH: install a Java runtime (17 or newer) to run the Kafka broker"
  command -v mvn >/dev/null 2>&1 ||
    die "mvn not found on PATH: install Apache Maven to download the Kafka jars from Maven Central"

  mkdir -p ".cache/kafka/$version"
  # Absolute on purpose: Maven resolves a relative output directory against the pom's folder.
  tmp="$(mktemp -d "$root/.cache/kafka/$version/libs.tmp.XXXXXX")"
  chmod 755 "$tmp"
  out="$tmp.mvn.log"
  trap 'rm -rf "$tmp" "$out"' EXIT

  echo "kafka/fetch.sh: downloading the Kafka $version jars into $libs ..." >&2
  if ! mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
    -DoutputDirectory="$tmp" >"$out" 2>&1; then
    tail -n 40 "$out" >&2
    die "mvn dependency:copy-dependencies failed for Kafka $version (is Maven Central reachable?)"
  fi

  ls "$tmp/kafka_2.13-$version.jar" >/dev/null 2>&1 || die "the download has no kafka_2.13-$version.jar"
  ls "$tmp/kafka-tools-$version.jar" >/dev/null 2>&1 || die "the download has no kafka-tools-$version.jar"
  echo "$want" >"$tmp/.complete"

  # Another process may have finished the same download meanwhile: keep its copy.
  if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
    rm -rf "$tmp" "$out"
  else
    rm -rf "$libs"
    mv "$tmp" "$libs"
    rm -f "$out"
  fi
  trap - EXIT
  echo "kafka/fetch.sh: Kafka $version done ($(ls "$libs" | wc -l | tr -d ' ') jars)" >&2
}

versions=()
if [[ $# -eq 0 ]]; then
  versions=("${KAFKA_VERSION:-$default_version}")
elif [[ "$1" == "--all" ]]; then
  mapfile -t versions < <(known_versions)
else
  versions=("$@")
fi
for v in "${versions[@]}"; do
  fetch_version "$v"
done
