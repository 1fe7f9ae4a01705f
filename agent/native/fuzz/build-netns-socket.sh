#!/bin/sh
# Builds grove-netns-socket-check (netns.c under AddressSanitizer, LeakSanitizer
# and UBSan; every finding aborts) into OUT (default: build/ next to this script).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/build/grove-netns-socket-check}"
src="$here/../src"
mkdir -p "$(dirname "$out")"
exec "${CC:-cc}" -std=gnu11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer -pthread \
  -fsanitize=address,undefined -fno-sanitize-recover=all \
  -Wall -Wextra -I "$src" \
  -o "$out" \
  "$here/netns-socket.c" "$src/netns.c" "$src/error.c" "$src/util.c"
