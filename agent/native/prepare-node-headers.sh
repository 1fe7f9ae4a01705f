#!/bin/sh
# node-gyp downloads Node's headers on first use; machines without access to
# nodejs.org (CI here) fail there. Distro Node ships the same headers under
# <prefix>/include/node, so seed node-gyp's cache from them. Idempotent.
set -eu
version=$(node -p 'process.versions.node')
prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
src="$prefix/include/node"
dev="${XDG_CACHE_HOME:-$HOME/.cache}/node-gyp/$version"
if [ -f "$dev/installVersion" ] && [ -f "$dev/include/node/node_api.h" ]; then exit 0; fi
if [ ! -f "$src/node_api.h" ]; then
  echo "prepare-node-headers: $src/node_api.h missing; install Node's headers (Debian: apt-get install libnode-dev) or let node-gyp download them" >&2
  exit 1
fi
mkdir -p "$dev/include"
rm -rf "$dev/include/node"
cp -r "$src" "$dev/include/node"
echo 11 > "$dev/installVersion"
echo "prepare-node-headers: seeded $dev from $src"
