#!/usr/bin/env bash
# Installs @confluentinc/kafka-javascript (librdkafka-based) into .cache/bench/confluent/ for the
# optional `producer-only-confluent` bench scenario. It is not a dependency of atkafka. Idempotent:
# does nothing when the package is already installed and loads. Usage: bash bench/confluent/setup.sh
#
# Without a prebuilt binary (e.g. offline) it compiles the bundled librdkafka and the binding
# (about a minute), which needs a C/C++ toolchain, Python 3 and the headers named below.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
version=1.10.1
dir="$root/.cache/bench/confluent"
pkg="$dir/node_modules/@confluentinc/kafka-javascript"
apt_packages="build-essential python3 librdkafka-dev libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev libcurl4-openssl-dev"

bin="$(bash "$root/scripts/node.sh")"
export PATH="$bin:$PATH"
export npm_config_nodedir="$(dirname "$bin")"
export CKJS_LINKING=dynamic

# Installed at $version and its native binding loads in this Node.
loadable() {
  PKG="$pkg" VERSION="$version" node -e '
    const { createRequire } = require("node:module")
    const req = createRequire(process.env.PKG + "/")
    if (req("./package.json").version !== process.env.VERSION) process.exit(1)
    const k = req(process.env.PKG)
    console.log(`@confluentinc/kafka-javascript ${process.env.VERSION} (librdkafka ${k.librdkafkaVersion}) in ${process.env.PKG}`)
  ' 2>/dev/null
}

if [ -d "$pkg" ] && loadable; then
  exit 0
fi

mkdir -p "$dir"
rm -rf "$dir/node_modules" "$dir/package-lock.json"
printf '{ "name": "atkafka-bench-confluent", "private": true }\n' >"$dir/package.json"
log="$dir/install.log"
echo "installing @confluentinc/kafka-javascript@$version into ${dir#"$root"/} with Node $(node -v)" \
  "(may compile librdkafka, about a minute; log: ${log#"$root"/})" >&2
if ! nice -n 10 npm install --prefix "$dir" --foreground-scripts --no-audit --no-fund \
  "@confluentinc/kafka-javascript@$version" >"$log" 2>&1; then
  tail -n 25 "$log" >&2
  cat >&2 <<MSG

bench/confluent/setup.sh: building @confluentinc/kafka-javascript@$version failed (full log: $log).
It needs a C/C++ toolchain, Python 3 and these Debian/Ubuntu packages:
  sudo apt-get install -y $apt_packages
then run bash bench/confluent/setup.sh again.
MSG
  exit 1
fi
if ! loadable; then
  echo "bench/confluent/setup.sh: installed, but the package does not load in Node $(node -v) (log: $log)." >&2
  echo "Its native libraries need: sudo apt-get install -y $apt_packages" >&2
  exit 1
fi
