# Shared by deploy/install-server.sh and deploy/install-agent.sh (sourced, not run).
#
# Layout on a machine (every path under --root DIR when given, and the unit
# files then name those paths, so an install under a root runs as it is):
#   /opt/grove/VERSION/          one unpacked release each (this script's release is copied there)
#   /opt/grove/current           symlink to the running release; /opt/grove/previous to the one before
#   /usr/local/bin/grove*        symlinks into /opt/grove/current/bin
#   /etc/grove/NAME.env          the daemon's flags (EnvironmentFile of its unit), mode 0600
#   /etc/systemd/system/NAME.service
#   /var/lib/grove/...           data, kept by upgrade and by uninstall unless --purge
set -euo pipefail

RELEASE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT=/
START=1
PURGE=0
EXTRA=()

ROLLBACK_TO=""
FLAG_WORDS=0

say() { printf '==> %s\n' "$*"; }
die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }

# The command line, COMMAND [FLAGS...] [-- DAEMON FLAGS...]: sets cmd and the
# flags both scripts take (--root, --no-start, --purge, rollback's VERSION,
# EXTRA after --); every other flag goes to the script's own
# script_flag FLAG [VALUE...], which sets FLAG_WORDS to the words it used and
# returns 1 for a flag it does not know.
parse_command_line() {
  cmd="${1:-}"
  [ $# -gt 0 ] && shift
  while [ $# -gt 0 ]; do
    case "$1" in
      --root) set_root "${2:-}"; shift 2 ;;
      --no-start) START=0; shift ;;
      --purge) PURGE=1; shift ;;
      --) shift; EXTRA=("$@"); break ;;
      -*) script_flag "$@" || die "unknown flag \"$1\" (see the top of $0)"; shift "$FLAG_WORDS" ;;
      *) [ "$cmd" = rollback ] && [ -z "$ROLLBACK_TO" ] || die "unexpected argument \"$1\""; ROLLBACK_TO="$1"; shift ;;
    esac
  done
}

# For script_flag: VAR=VALUE of "FLAG VALUE", or the flag named when the value is missing.
take() { # VAR WHAT FLAG [VALUE]
  [ -n "${4:-}" ] || die "$3 needs $2"
  printf -v "$1" '%s' "$4"
  FLAG_WORDS=2
}

# For script_flag: VALUE appended to the array VAR (a flag given more than once).
take_more() { # VAR WHAT FLAG [VALUE]
  local -n list="$1"
  local value
  take value "$2" "$3" "${4:-}"
  list+=("$value")
}

# The path $1 on the target machine (under --root).
at() { if [ "$ROOT" = / ]; then printf '%s' "$1"; else printf '%s%s' "$ROOT" "$1"; fi; }

set_root() { # DIR
  [ -n "$1" ] || die "--root needs a directory"
  mkdir -p "$1"
  ROOT="$(cd "$1" && pwd)"
}

release_version() {
  [ -f "$RELEASE/VERSION" ] || die "$RELEASE is not a packed release (no VERSION): run this script from an unpacked grove-VERSION directory (deploy/pack.sh)"
  cat "$RELEASE/VERSION"
}

# Every file of the release against SHA256SUMS: a truncated copy or an edited
# file stops the install before anything changes.
verify_release() {
  [ -f "$RELEASE/SHA256SUMS" ] || die "$RELEASE/SHA256SUMS is missing"
  (cd "$RELEASE" && sha256sum --quiet --strict -c SHA256SUMS >"$TMPDIR_CHECK/sums.out" 2>&1) ||
    die "$RELEASE does not match its SHA256SUMS: $(grep -v '^sha256sum: WARNING' "$TMPDIR_CHECK/sums.out" | head -n 3 | tr '\n' ' ')"
}
TMPDIR_CHECK="$(mktemp -d "${TMPDIR:-/tmp}/grove-install-XXXXXX")"
trap 'rm -rf "$TMPDIR_CHECK"' EXIT

need_node() {
  local node="${GROVE_NODE:-node}" major
  command -v "$node" >/dev/null || die "Node.js >= 20 is needed on this machine (Debian 12: apt-get install nodejs from NodeSource, or set GROVE_NODE)"
  major="$("$node" -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || die "Node.js >= 20 is needed, $("$node" --version) is installed"
}

need_commands() { # package:command ...
  local missing=() pc
  for pc in "$@"; do command -v "${pc#*:}" >/dev/null || missing+=("${pc%%:*}"); done
  [ "${#missing[@]}" -eq 0 ] || die "missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})"
}

# True when DIR already holds this release, intact: the same SHA256SUMS and
# every file matching it.
holds_release() { # DIR
  [ -f "$1/SHA256SUMS" ] && cmp -s "$RELEASE/SHA256SUMS" "$1/SHA256SUMS" &&
    (cd "$1" && sha256sum --quiet --strict -c SHA256SUMS >/dev/null 2>&1)
}

# Copies this release to /opt/grove/VERSION (unless it is already there) and
# points current at it, keeping the release it replaces as previous. An intact
# copy of the same release is kept as it is: the other service on the machine
# (the server beside an agent) may be running from it.
install_release() {
  local version="$1" opt dest
  opt="$(at /opt/grove)"
  dest="$opt/$version"
  mkdir -p "$opt"
  if [ "$(readlink -f "$RELEASE")" != "$(readlink -f "$dest" 2>/dev/null || true)" ] && ! holds_release "$dest"; then
    rm -rf "$dest.tmp"
    cp -a "$RELEASE" "$dest.tmp"
    rm -rf "$dest"
    mv "$dest.tmp" "$dest"
  fi
  chown -R root:root "$dest"
  chmod -R go-w "$dest"
  switch_current "$version"
  mkdir -p "$(at /usr/local/bin)"
  local b
  for b in grove grove-server grove-agent; do ln -sfn "$(at /opt/grove/current)/bin/$b" "$(at /usr/local/bin)/$b"; done
}

# current -> VERSION atomically (rename of a fresh symlink); the old target becomes previous.
switch_current() {
  local version="$1" opt old
  opt="$(at /opt/grove)"
  [ -d "$opt/$version" ] || die "no release $version in $opt"
  old="$(readlink "$opt/current" 2>/dev/null || true)"
  if [ -n "$old" ] && [ "$old" != "$version" ]; then ln -sfn "$old" "$opt/previous.tmp" && mv -T "$opt/previous.tmp" "$opt/previous"; fi
  ln -sfn "$version" "$opt/current.tmp"
  mv -T "$opt/current.tmp" "$opt/current"
}

# Writes the unit file from stdin and checks it with systemd-analyze verify when that exists.
write_unit() { # NAME
  local unit
  unit="$(at /etc/systemd/system)/$1.service"
  mkdir -p "$(dirname "$unit")"
  cat >"$unit.tmp"
  chmod 0644 "$unit.tmp"
  mv "$unit.tmp" "$unit"
  if command -v systemd-analyze >/dev/null; then
    # --man=no: the units name no man pages; a warning is an error here.
    local out
    out="$(systemd-analyze verify --man=no "$unit" 2>&1)" || die "systemd-analyze verify $unit failed: $out"
    [ -z "$out" ] || die "systemd-analyze verify $unit: $out"
  fi
}

# KEY=VALUE lines for an EnvironmentFile, mode 0600 (flags may hold a join token).
write_env() { # FILE (content on stdin)
  local file
  file="$(at "$1")"
  mkdir -p "$(dirname "$file")"
  chmod 0755 "$(dirname "$file")"
  (umask 077 && cat >"$file.tmp")
  mv "$file.tmp" "$file"
}

# Flags go into an EnvironmentFile as one $VAR that systemd splits on
# whitespace: refuse a value it would split or that would need quoting.
check_flag_words() {
  local w
  for w in "$@"; do
    [[ "$w" =~ ^[A-Za-z0-9_.,:=/@+%-]+$ ]] || die "flag value \"$w\" holds a character the unit cannot pass (whitespace, quotes, \$, \\)"
  done
}

# Real systemd on the target: enable and (re)start the unit; under --root or
# with --no-start, say what to run instead.
systemd_here() { [ "$ROOT" = / ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

start_unit() { # NAME
  if [ "$START" = 1 ] && systemd_here; then
    systemctl daemon-reload
    systemctl enable "$1.service" >/dev/null 2>&1
    systemctl restart "$1.service"
    say "$1 started (journalctl -u $1 -f)"
  else
    say "not started (--root, --no-start or no systemd): systemctl daemon-reload && systemctl enable --now $1"
  fi
}

restart_unit() { # NAME
  if [ "$START" = 1 ] && systemd_here; then
    systemctl daemon-reload
    systemctl restart "$1.service"
    say "$1 restarted"
  else
    say "restart $1 now: systemctl daemon-reload && systemctl restart $1"
  fi
}

stop_unit() { # NAME
  if systemd_here; then
    systemctl disable --now "$1.service" >/dev/null 2>&1 || true
  fi
}

# Removes NAME's unit and env file; the releases only when no other Grove unit is left.
remove_install() { # NAME
  local name="$1" other
  rm -f "$(at /etc/systemd/system)/$name.service" "$(at /etc/grove)/$name.env"
  systemd_here && systemctl daemon-reload || true
  for other in grove-server grove-agent; do
    [ "$other" != "$name" ] && [ -f "$(at /etc/systemd/system)/$other.service" ] && {
      say "kept /opt/grove: $other is still installed"
      return 0
    }
  done
  rm -rf "$(at /opt/grove)"
  rm -f "$(at /usr/local/bin)/grove" "$(at /usr/local/bin)/grove-server" "$(at /usr/local/bin)/grove-agent"
  rmdir "$(at /etc/grove)" 2>/dev/null || true
}

# rollback [VERSION]: current back to VERSION (default: previous).
rollback_release() {
  local target="${1:-}" opt
  opt="$(at /opt/grove)"
  [ -n "$target" ] || target="$(readlink "$opt/previous" 2>/dev/null || true)"
  [ -n "$target" ] || die "no previous release to roll back to (ls $opt)"
  [ -d "$opt/$target" ] || die "no release $target in $opt"
  switch_current "$target"
  say "current -> $target"
}
