#!/bin/sh
# make-rootfs.sh DIR: a minimal busybox-static root filesystem for Grove
# containers (tests, the quickstart). Idempotent: rerunning refreshes it.
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
dir=$1

busybox=""
for candidate in /bin/busybox /usr/bin/busybox; do
  if [ -x "$candidate" ] && ! ldd "$candidate" >/dev/null 2>&1; then
    busybox=$candidate
    break
  fi
done
if [ -z "$busybox" ]; then
  echo "make-rootfs.sh: no statically linked busybox found; apt-get install busybox-static" >&2
  exit 1
fi

mkdir -p "$dir"
cd "$dir"
mkdir -p bin sbin usr/bin usr/sbin proc dev sys tmp etc root
chmod 1777 tmp
chmod 0700 root
cp -f "$busybox" bin/busybox.new
chmod 0755 bin/busybox.new
mv -f bin/busybox.new bin/busybox

# One relative symlink per applet, into the directory busybox says it belongs in.
"$busybox" --list-full | while read -r applet; do
  case "$applet" in
    bin/busybox|"") continue ;;
  esac
  depth=$(printf '%s' "$applet" | tr -cd '/' | wc -c)
  case $depth in
    0) target=bin/busybox ;;
    1) target=../bin/busybox ;;
    2) target=../../bin/busybox ;;
  esac
  [ "$(dirname "$applet")" = bin ] && target=busybox
  ln -sfn "$target" "$applet"
done

cat > etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > etc/group <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
echo grove > etc/hostname
