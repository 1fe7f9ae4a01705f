#!/bin/sh
# make-rootfs.sh DIR: a minimal busybox-static root filesystem for Grove
# containers (tests, the quickstart), owned by root and writable by root only.
#
# Rerunning it replaces DIR with a fresh tree; it never edits the old one.
# The new tree is built in a new temporary directory beside DIR and renamed
# into place; the old tree is renamed aside and removed with rm -rf, which
# does not follow symlinks. So a symlink that something planted in an old
# tree (tmp -> /etc) is never written through.
#
# A tree that running instances use as the lower layer of their private
# roots (an overlay mount naming DIR) is kept aside as .NAME.old.XXXXXX
# until a later run finds no such mount: removing it would pull the files
# out from under them.
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
case $1 in
  /*) dir=$1 ;;
  *) dir=$(pwd)/$1 ;;
esac
dir=${dir%/}
parent=$(dirname -- "$dir")
name=$(basename -- "$dir")
case $dir in
  *[,:\\\ \	]*)
    echo "make-rootfs.sh: $dir holds a character overlayfs options cannot carry (\",\", \":\", \"\\\" or white space)" >&2
    exit 2
    ;;
esac
case $name in
  . | .. | "")
    echo "make-rootfs.sh: $1 names no directory" >&2
    exit 2
    ;;
esac

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

# An overlay mount (an instance's private root) names DIR as its lower layer.
in_use() {
  grep -F -- ' - overlay ' /proc/self/mountinfo | grep -q -F -e "lowerdir=$dir," -e "lowerdir=$dir:"
}

mkdir -p -- "$parent"
# Old trees kept aside by earlier runs go once nothing mounts DIR.
if ! in_use; then
  for old in "$parent/.$name.old."*; do
    if [ -d "$old" ] && [ ! -L "$old" ]; then rm -rf -- "$old"; fi
  done
fi

umask 022
tmp=$(mktemp -d "$parent/.$name.new.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
cd "$tmp"
mkdir bin sbin usr usr/bin usr/sbin proc dev sys tmp etc root
chmod 1777 tmp
chmod 0700 root
cp "$busybox" bin/busybox
chmod 0755 bin/busybox

# One relative symlink per applet, into the directory busybox says it belongs in.
# The target comes from the applet's depth by pattern matching alone: one ln per
# applet and no other process (a few hundred subshells took half a minute on a
# busy machine).
"$busybox" --list-full | while read -r applet; do
  case "$applet" in
    bin/busybox | "") continue ;;
    */*/*) target=../../bin/busybox ;;
    bin/*) target=busybox ;;
    */*) target=../bin/busybox ;;
    *) target=bin/busybox ;;
  esac
  ln -s "$target" "$applet"
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
cd /
# mktemp made it 0700: the root of a container must be searchable by every user.
chmod 0755 "$tmp"
chown -R 0:0 "$tmp" 2>/dev/null || true

if [ -e "$dir" ] || [ -L "$dir" ]; then
  aside=$(mktemp -d "$parent/.$name.old.XXXXXX")
  # rename(2) of DIR itself: a symlink is moved, not followed.
  mv -T -- "$dir" "$aside/tree"
  mv -T -- "$tmp" "$dir"
  trap - EXIT
  if in_use; then
    echo "make-rootfs.sh: running instances use the old $dir; kept it as $aside until they are gone" >&2
  else
    rm -rf -- "$aside"
  fi
else
  mv -T -- "$tmp" "$dir"
  trap - EXIT
fi
