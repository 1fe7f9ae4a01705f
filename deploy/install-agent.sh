#!/usr/bin/env bash
# Installs grove-agent from the packed release this script belongs to
# (grove-VERSION/deploy/install-agent.sh; docs/install.md walks through it).
#
#   install-agent.sh install --server https://HOST:7480 --join TOKEN --ca-hash sha256:HEX
#                            [--node-name NAME] [--label KEY=VALUE]... [--address IP]
#                            [--rootfs-dir DIR] [--busybox-rootfs] [--root DIR] [--no-start]
#                            [-- GROVE-AGENT FLAGS...]
#       copy the release to /opt/grove/VERSION, point /opt/grove/current at it, write
#       /etc/grove/grove-agent.env (flags; the join token until it is spent) and
#       grove-agent.service, enable and start it: the agent joins with the token (the
#       server's CA checked against --ca-hash) and keeps its node certificate in
#       /var/lib/grove/agent/pki. Root filesystems: --rootfs-dir (default /var/lib/grove/rootfs,
#       made mode 0700); --busybox-rootfs builds ROOTFS-DIR/busybox (needs busybox-static).
#   install-agent.sh upgrade [--root DIR] [--no-start]
#       this release becomes current; the agent restarts and adopts its running containers
#   install-agent.sh rollback [VERSION] [--root DIR] [--no-start]
#   install-agent.sh uninstall [--purge] [--root DIR]
#       stop the agent, stop its containers and remove their cgroups, mounts and networks,
#       remove the unit, its flags and (when no server is installed) /opt/grove;
#       --purge also removes /var/lib/grove/agent and /var/lib/grove/rootfs
#
# The agent runs as root (it makes cgroups, namespaces, mounts and iptables
# rules). --root DIR puts every file under DIR and the unit names those paths
# (tests); cgroups, /run/grove and the network are this machine's either way.
PROG=install-agent.sh
# shellcheck source=deploy/install-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/install-lib.sh"

NAME=grove-agent
STATE=/var/lib/grove/agent
ROOTFS=/var/lib/grove/rootfs
SERVER=""
JOIN=""
CA_HASH=""
NODE_NAME="$(hostname | tr 'A-Z_' 'a-z-' | cut -c1-63)"
LABELS=()
ADDRESSES=()
BUSYBOX=0
ROOTFS_DIR=""

script_flag() { # FLAG [VALUE...]: this script's own flags (parse_command_line)
  case "$1" in
    --server) take SERVER https://HOST:PORT "$@" ;;
    --join) take JOIN "a token (grove token create)" "$@" ;;
    --ca-hash) take CA_HASH sha256:HEX "$@" ;;
    --node-name) take NODE_NAME "a name" "$@" ;;
    --label) take_more LABELS KEY=VALUE "$@" ;;
    --address) take_more ADDRESSES "an IP" "$@" ;;
    --busybox-rootfs) BUSYBOX=1; FLAG_WORDS=1 ;;
    --rootfs-dir) take ROOTFS_DIR "a directory" "$@" ;;
    *) return 1 ;;
  esac
}
parse_command_line "$@"
[ "$(id -u)" = 0 ] || die "run as root: the agent makes cgroups and namespaces"

write_agent_unit() {
  write_unit "$NAME" <<EOF
# Written by install-agent.sh (Grove $(release_version)). Flags: $(at /etc/grove)/$NAME.env.
[Unit]
Description=Grove node agent (grove-agent)
Documentation=https://github.com/grove/grove/blob/main/docs/install.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
EnvironmentFile=$(at /etc/grove)/$NAME.env
ExecStart=$(at /opt/grove/current)/bin/grove-agent \$GROVE_AGENT_FLAGS
Restart=always
RestartSec=2
# Containers outlive the agent (each grove-shim is their parent): stopping or
# restarting the unit signals the agent alone, which adopts them when it starts.
KillMode=process
Delegate=yes
TimeoutStopSec=30
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
OOMScoreAdjust=-999
# Deliberately not set (containerd's unit does the same): a capability bounding
# set or a seccomp filter (SystemCallFilter, RestrictSUIDSGID, LockPersonality,
# ...) would be inherited by every container, and Apps may add capabilities;
# ProtectSystem, PrivateTmp, ReadWritePaths and the like give the agent a private
# mount namespace that a restart replaces, stranding the overlay roots and
# network namespace mounts the previous agent made for running containers.

[Install]
WantedBy=multi-user.target
EOF
}

# The value of one flag in the installed flags (for uninstall).
installed_flag() { # FLAG DEFAULT
  local env line
  env="$(at /etc/grove)/$NAME.env"
  line="$(sed -n 's/^GROVE_AGENT_FLAGS=//p' "$env" 2>/dev/null || true)"
  # shellcheck disable=SC2086 # the flags are words, as systemd splits them
  set -- $line
  while [ $# -gt 0 ]; do
    if [ "$1" = "$FLAG" ]; then echo "$2"; return; fi
    shift
  done
  echo "$DEFAULT"
}

# Kills the containers under the cgroup parent (their shims then exit), removes
# their cgroups, mounts under the state directory, network and runtime state.
stop_containers() {
  local parent state procs pid base dir m
  parent="$(FLAG=--cgroup-parent DEFAULT=grove installed_flag)"
  state="$(FLAG=--state-dir DEFAULT="$(at "$STATE")" installed_flag)"
  for procs in /sys/fs/cgroup/pids/"$parent"/*/cgroup.procs /sys/fs/cgroup/"$parent"/*/cgroup.procs; do
    [ -f "$procs" ] || continue
    for _ in $(seq 1 50); do
      [ -n "$(cat "$procs" 2>/dev/null)" ] || break
      while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$procs"
      sleep 0.1
    done
  done
  for base in /sys/fs/cgroup/*/ /sys/fs/cgroup; do
    base="${base%/}"
    dir="$base/$parent"
    [ -f "$base/cgroup.procs" ] && [ -d "$dir" ] || continue
    find "$dir" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
    rmdir "$dir" 2>/dev/null || true
  done
  # Overlay roots and instance network namespaces are mounted under the state directory.
  awk -v s="$state/" 'index($5, s) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  if [ -d "$state/network" ] && [ -f "$(at /opt/grove/current)/agent/dist/network/node-cleanup.js" ]; then
    "${GROVE_NODE:-node}" "$(at /opt/grove/current)/agent/dist/network/node-cleanup.js" "$state/network" || true
  fi
  rm -rf "/run/grove/$parent"
  say "stopped the containers of cgroup parent $parent"
}

case "$cmd" in
  install)
    version="$(release_version)"
    [ -n "$SERVER" ] || die "--server https://HOST:PORT (grove-server's API) is required"
    [[ "$SERVER" == https://* ]] || die "--server: joining needs https://HOST:PORT, got \"$SERVER\""
    [[ "$CA_HASH" =~ ^sha256:[0-9a-f]{64}$ ]] || die "--ca-hash: expected sha256:<64 hex digits> (grove token create prints it), got \"$CA_HASH\""
    [ -n "$JOIN" ] || die "--join TOKEN is required (grove token create --node $NODE_NAME)"
    check_flag_words "$SERVER" "$NODE_NAME" ${ROOTFS_DIR:+"$ROOTFS_DIR"} "${LABELS[@]}" "${ADDRESSES[@]}" "${EXTRA[@]}" "$JOIN"
    need_node
    need_commands iproute2:ip iptables:iptables util-linux:nsenter
    [ -x /usr/lib/cni/bridge ] || [[ " ${EXTRA[*]} " == *" --network none "* ]] ||
      printf '%s: warning: no CNI plugins in /usr/lib/cni (apt-get install containernetworking-plugins)\n' "$PROG" >&2
    verify_release
    install_release "$version"
    # Templates are root's alone: nobody else may enter the directory that holds them.
    [ -n "$ROOTFS_DIR" ] || ROOTFS_DIR="$(at "$ROOTFS")"
    install -d -m 0700 "$(at "$STATE")" "$ROOTFS_DIR"
    if [ "$BUSYBOX" = 1 ]; then
      need_commands busybox-static:busybox
      "$RELEASE/deploy/make-rootfs.sh" "$ROOTFS_DIR/busybox" >/dev/null
      say "root filesystem busybox in $ROOTFS_DIR"
    fi
    flags=(--server "$SERVER" --ca-hash "$CA_HASH" --node-name "$NODE_NAME"
      --state-dir "$(at "$STATE")" --rootfs-dir "$ROOTFS_DIR")
    for l in "${LABELS[@]}"; do flags+=(--label "$l"); done
    for a in "${ADDRESSES[@]}"; do flags+=(--address "$a"); done
    flags+=("${EXTRA[@]}")
    write_env "/etc/grove/$NAME.env" <<EOF
# grove-agent's flags (grove-agent --help); edit, then systemctl restart grove-agent.
GROVE_AGENT_FLAGS=${flags[*]}
# Single-use: spent at the first start (the node certificate in $(at "$STATE")/pki replaces it).
GROVE_AGENT_JOIN=$JOIN
EOF
    write_agent_unit
    say "installed Grove $version: $(at /opt/grove/current) -> $version"
    start_unit "$NAME"
    ;;
  upgrade)
    version="$(release_version)"
    [ -f "$(at /etc/systemd/system)/$NAME.service" ] || die "$NAME is not installed here; use install"
    need_node
    verify_release
    install_release "$version"
    # The token was spent at the join; drop it from the flags file.
    state="$(FLAG=--state-dir DEFAULT="$(at "$STATE")" installed_flag)"
    if [ -f "$state/pki/node.crt" ]; then sed -i '/^GROVE_AGENT_JOIN=/d;/^# Single-use:/d' "$(at /etc/grove)/$NAME.env"; fi
    write_agent_unit
    say "upgraded to Grove $version (state and flags kept; rollback: $0 rollback)"
    restart_unit "$NAME"
    ;;
  rollback)
    [ -f "$(at /etc/systemd/system)/$NAME.service" ] || die "$NAME is not installed here"
    rollback_release "$ROLLBACK_TO"
    restart_unit "$NAME"
    ;;
  uninstall)
    state="$(FLAG=--state-dir DEFAULT="$(at "$STATE")" installed_flag)"
    rootfs="$(FLAG=--rootfs-dir DEFAULT="$(at "$ROOTFS")" installed_flag)"
    stop_unit "$NAME"
    stop_containers
    remove_install "$NAME"
    if [ "$PURGE" = 1 ]; then
      rm -rf "$state" "$rootfs"
      rmdir "$(at /var/lib/grove)" 2>/dev/null || true
      say "removed grove-agent and its state ($state, $rootfs)"
    else
      say "removed grove-agent; state kept in $state (--purge removes it; the node certificate in it rejoins)"
    fi
    ;;
  *) die "usage: $PROG install|upgrade|rollback|uninstall [flags] (see the top of $0)" ;;
esac
