#!/bin/sh
# Builds grove-parsers-fuzz (the C parsers under AddressSanitizer and UBSan)
# into OUT (default: build/grove-parsers-fuzz next to this script).
# Every UBSan finding aborts (-fno-sanitize-recover) so it cannot scroll by.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/build/grove-parsers-fuzz}"
src="$here/../src"
mkdir -p "$(dirname "$out")"
exec "${CC:-cc}" -std=gnu11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer \
  -fsanitize=address,undefined -fno-sanitize-recover=all \
  -Wall -Wextra -Wno-format-truncation -Wno-unused-function \
  -o "$out" \
  "$here/parsers.c" "$here/oci-config.c" "$here/shim-config.c" "$here/exec-config.c" \
  "$src/error.c" "$src/util.c" "$src/json.c" "$src/cgroup.c" "$src/container.c" "$src/seccomp.c" "$src/shim_spawn.c"
