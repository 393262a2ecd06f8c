#!/usr/bin/env bash
# Download the jars of a single-node Apache Kafka broker from Maven Central into
# .cache/kafka/libs (relative to the repository root), using scripts/kafka/pom.xml.
#
# Idempotent: does nothing when the jars for the current pom are already there. The jars
# are copied into a temporary directory that is renamed into place at the end, so an
# interrupted download never looks complete. A marker file (.complete) records the hash
# of the pom the jars came from; editing the pom triggers a new download.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

pom="scripts/kafka/pom.xml"
libs=".cache/kafka/libs"
marker="$libs/.complete"

die() {
  echo "kafka/fetch.sh: $*" >&2
  exit 1
}

hash_pom() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$pom" | cut -d' ' -f1
  else
    shasum -a 256 "$pom" | cut -d' ' -f1
  fi
}

want="$(hash_pom)"
if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
  exit 0
fi

command -v java >/dev/null 2>&1 ||
  die "java not found on PATH: install a Java runtime (17 or newer) to run the Kafka broker"
command -v mvn >/dev/null 2>&1 ||
  die "mvn not found on PATH: install Apache Maven to download the Kafka jars from Maven Central"

mkdir -p .cache/kafka
# Absolute on purpose: Maven resolves a relative output directory against the pom's folder.
tmp="$(mktemp -d "$root/.cache/kafka/libs.tmp.XXXXXX")"
chmod 755 "$tmp"
out="$tmp.mvn.log"
trap 'rm -rf "$tmp" "$out"' EXIT

echo "kafka/fetch.sh: downloading the Kafka broker jars into $libs ..." >&2
if ! mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
  -DoutputDirectory="$tmp" >"$out" 2>&1; then
  tail -n 40 "$out" >&2
  die "mvn dependency:copy-dependencies failed (is Maven Central reachable?)"
fi

ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "the download has no kafka_2.13 jar"
echo "$want" >"$tmp/.complete"

# Another process may have finished the same download meanwhile: keep its copy.
if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
  exit 0
fi
rm -rf "$libs"
mv "$tmp" "$libs"
rm -f "$out"
trap - EXIT
echo "kafka/fetch.sh: done ($(ls "$libs" | wc -l | tr -d ' ') jars)" >&2
