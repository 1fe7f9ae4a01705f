#!/usr/bin/env bash
# Packs a built Grove tree into a release tarball that installs without the
# repository, a compiler, dev dependencies or the network:
#
#   deploy/pack.sh [--out DIR] [--version V]      (npm run pack -- [...])
#
# writes DIR/grove-V-linux-ARCH.tar.gz (default DIR: ./release, V: the
# version in package.json) and DIR/grove-V-linux-ARCH.tar.gz.sha256, and
# prints the tarball's path. The tarball holds one directory, grove-V/:
#
#   bin/grove, bin/grove-server, bin/grove-agent   wrappers that run node on the packed JS
#   common, proto, api, control-plane, agent       package.json, dist/ (no tests, maps or
#                                                  declarations), bin/
#   agent/native/build/Release                     the addon, grove-shim, grove-runtime
#   node_modules                                   production dependencies only (npm ls --omit=dev)
#   deploy/install-server.sh, install-agent.sh, install-lib.sh, make-rootfs.sh
#   VERSION, SHA256SUMS                            the version; a checksum of every file
#
# The layout is the workspace's, so the compiled code finds its addon, shim and
# proto file by the same relative paths as in the repository. The tree must be
# built first (npm run build); nodes need Node.js >= 20 (see docs/install.md).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$REPO/release"
VERSION=""
die() { printf 'pack: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="${2:?--out needs a directory}"; shift 2 ;;
    --version) VERSION="${2:?--version needs a version}"; shift 2 ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) die "unknown argument \"$1\" (usage: deploy/pack.sh [--out DIR] [--version V])" ;;
  esac
done
cd "$REPO"
[ -n "$VERSION" ] || VERSION="$(node -p 'require("./package.json").version')"
# The version names a directory under /opt/grove and goes into unit files.
[[ "$VERSION" =~ ^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$ ]] ||
  die "--version: \"$VERSION\" may hold only letters, digits and . + _ - (at most 64)"

WORKSPACES=(common proto api control-plane agent)
RELEASE_BINS=(grove_native.node grove-shim grove-runtime)
for ws in "${WORKSPACES[@]}"; do
  [ -d "$ws/dist" ] || die "$ws/dist is missing: run npm run build first"
done
for b in "${RELEASE_BINS[@]}"; do
  [ -f "agent/native/build/Release/$b" ] || die "agent/native/build/Release/$b is missing: run npm run build first"
done
# A build older than its sources would pack yesterday's code (the same check
# as the integration tests', for the packages that go into the release).
stale="$(node -e '
  const p = require("./test/src/build-fresh.js").staleBuilds().filter((l) => !/^(sim|test):/.test(l));
  process.stdout.write(p.join("; "))')"
[ -z "$stale" ] || die "the build is older than the sources ($stale): run npm run build first"

ARCH="$(uname -m)"
NAME="grove-$VERSION"
TARBALL="$OUT/$NAME-linux-$ARCH.tar.gz"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
TARBALL="$OUT/$NAME-linux-$ARCH.tar.gz"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/grove-pack-XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
STAGE="$TMP/$NAME"

# Generated files: wrappers, version-stamped package.json files, the install scripts.
mkdir -p "$STAGE/bin" "$STAGE/deploy"
echo "$VERSION" >"$STAGE/VERSION"
wrapper() { # name script
  cat >"$STAGE/bin/$1" <<EOF
#!/bin/sh
# $1 of Grove $VERSION: Node.js (GROVE_NODE, else node on PATH) on the packed code.
here="\$(dirname "\$(readlink -f "\$0")")"
exec "\${GROVE_NODE:-node}" "\$here/../$2" "\$@"
EOF
  chmod 0755 "$STAGE/bin/$1"
}
wrapper grove api/bin/grove.js
wrapper grove-server control-plane/bin/grove-server.js
wrapper grove-agent agent/bin/grove-agent.js
V="$VERSION" node -e '
  const fs = require("fs"), path = require("path");
  const [stage, ...files] = process.argv.slice(1);
  for (const f of files) {
    const pkg = JSON.parse(fs.readFileSync(f, "utf8"));
    pkg.version = process.env.V;
    delete pkg.devDependencies; delete pkg.scripts;
    if (f === "package.json") pkg.workspaces = ["common", "proto", "api", "control-plane", "agent"];
    fs.mkdirSync(path.join(stage, path.dirname(f)), { recursive: true });
    fs.writeFileSync(path.join(stage, f), JSON.stringify(pkg, null, 2) + "\n");
  }' "$STAGE" package.json "${WORKSPACES[@]/%//package.json}"
cp deploy/install-server.sh deploy/install-agent.sh deploy/install-lib.sh deploy/make-rootfs.sh "$STAGE/deploy/"

# Files taken from the tree as they are.
LIST="$TMP/files"
{
  for ws in "${WORKSPACES[@]}"; do
    echo "$ws/dist"
    [ -d "$ws/bin" ] && echo "$ws/bin"
  done
  echo proto/grove.proto
  for b in "${RELEASE_BINS[@]}"; do echo "agent/native/build/Release/$b"; done
  for ws in "${WORKSPACES[@]}"; do echo "node_modules/@grove/$ws"; done
  # Production dependencies only, each package directory once (its nested
  # node_modules come with it).
  npm ls --omit=dev --all --parseable 2>/dev/null | sed "s|^$REPO/||" |
    grep -E '^([a-z-]+/)?node_modules/(@[^/]+/)?[^/@]+$' | grep -v '^node_modules/@grove/' | sort -u
} >"$LIST"

# SHA256SUMS of everything but itself, checked by the install scripts.
(
  cd "$REPO"
  mapfile -t paths < <(grep -v '^node_modules/@grove/' "$LIST")
  find "${paths[@]}" -type f ! -name '*.map' ! -name '*.d.ts' ! -name '*.test.js' ! -name '*.tsbuildinfo' -print0 |
    sort -z | xargs -0 sha256sum
  cd "$STAGE" && find . -type f ! -name SHA256SUMS -printf '%P\0' | sort -z | xargs -0 sha256sum
) >"$TMP/SHA256SUMS"
mv "$TMP/SHA256SUMS" "$STAGE/SHA256SUMS"

# One archive: generated files, then the tree's, all under grove-V/ (symlink
# targets are relative and stay as they are). Owned by root, reproducible order.
rm -f "$TARBALL.tmp"
tar --create --gzip --file "$TARBALL.tmp" --owner=0 --group=0 --numeric-owner --sort=name \
  --exclude='*.map' --exclude='*.d.ts' --exclude='*.test.js' --exclude='*.tsbuildinfo' \
  --transform "s,^\\(common\\|proto\\|api\\|control-plane\\|agent\\|node_modules\\)/,$NAME/\\1/,S" \
  -C "$TMP" "$NAME" -C "$REPO" --files-from "$LIST"
mv "$TARBALL.tmp" "$TARBALL"
(cd "$OUT" && sha256sum "$(basename "$TARBALL")" >"$(basename "$TARBALL").sha256")
echo "$TARBALL"
