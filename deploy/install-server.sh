#!/usr/bin/env bash
# Installs grove-server from the packed release this script belongs to
# (grove-VERSION/deploy/install-server.sh; docs/install.md walks through it).
#
#   install-server.sh install [--listen HOST:PORT] [--grpc-listen HOST:PORT] [--tls-san NAME]...
#                             [--user NAME] [--root DIR] [--no-start] [-- GROVE-SERVER FLAGS...]
#       copy the release to /opt/grove/VERSION, point /opt/grove/current at it, create the
#       system user (default grove), write /etc/grove/grove-server.env (the flags) and
#       grove-server.service, enable and start it. Data: /var/lib/grove/server (owned by the user).
#   install-server.sh upgrade [--root DIR] [--no-start]
#       this release becomes current (data, flags and unit settings kept); the unit restarts
#   install-server.sh rollback [VERSION] [--root DIR] [--no-start]
#       current back to the previous release (or VERSION); the unit restarts
#   install-server.sh uninstall [--purge] [--root DIR]
#       stop and remove the unit, its flags and (when no agent is installed) /opt/grove;
#       --purge also removes /var/lib/grove/server (the CA, the etcd data!) and the user
#
# --root DIR puts every path under DIR and the unit names those paths (tests);
# systemctl is then not run.
PROG=install-server.sh
# shellcheck source=deploy/install-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/install-lib.sh"

NAME=grove-server
DATA=/var/lib/grove/server
LISTEN=0.0.0.0:7480
GRPC_LISTEN=0.0.0.0:7481
SANS=()
USER_NAME=grove

script_flag() { # FLAG [VALUE...]: this script's own flags (parse_command_line)
  case "$1" in
    --listen) take LISTEN HOST:PORT "$@" ;;
    --grpc-listen) take GRPC_LISTEN HOST:PORT "$@" ;;
    --tls-san) take_more SANS "a name" "$@" ;;
    --user) take USER_NAME "a name" "$@" ;;
    *) return 1 ;;
  esac
}
parse_command_line "$@"
[ "$(id -u)" = 0 ] || die "run as root"

write_server_unit() {
  local data
  data="$(at "$DATA")"
  write_unit "$NAME" <<EOF
# Written by install-server.sh (Grove $(release_version)). Flags: $(at /etc/grove)/$NAME.env.
[Unit]
Description=Grove control plane (grove-server, embedded etcd)
Documentation=https://github.com/grove/grove/blob/main/docs/install.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=$USER_NAME
Group=$USER_NAME
EnvironmentFile=$(at /etc/grove)/$NAME.env
ExecStart=$(at /opt/grove/current)/bin/grove-server \$GROVE_SERVER_FLAGS
Restart=always
RestartSec=2
# grove-server stops its embedded etcd on SIGTERM; give etcd time to sync.
TimeoutStopSec=30
LimitNOFILE=65536
UMask=0077
# An unprivileged service: no capabilities, read-only system, its data dir writable.
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ReadWritePaths=$data
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
# No MemoryDenyWriteExecute: V8's JIT writes code.

[Install]
WantedBy=multi-user.target
EOF
}

ensure_user() {
  id -u "$USER_NAME" >/dev/null 2>&1 && return 0
  useradd --system --user-group --no-create-home --home-dir "$DATA" --shell /usr/sbin/nologin "$USER_NAME"
  say "created system user $USER_NAME"
}

case "$cmd" in
  install)
    version="$(release_version)"
    check_flag_words "$LISTEN" "$GRPC_LISTEN" "${SANS[@]}" "${EXTRA[@]}"
    [[ "$USER_NAME" =~ ^[a-z_][a-z0-9_-]{0,30}$ ]] || die "--user: \"$USER_NAME\" is not a user name"
    need_node
    # The embedded etcd (unless the flags name an external one); etcdctl for backups.
    [[ " ${EXTRA[*]} " == *" --etcd-endpoints "* ]] || need_commands etcd-server:etcd
    verify_release
    install_release "$version"
    ensure_user
    mkdir -p "$(at "$DATA")"
    chown "$USER_NAME:$USER_NAME" "$(at "$DATA")"
    chmod 0700 "$(at "$DATA")"
    flags=(--data-dir "$(at "$DATA")" --listen "$LISTEN" --grpc-listen "$GRPC_LISTEN")
    for s in "${SANS[@]}"; do flags+=(--tls-san "$s"); done
    flags+=("${EXTRA[@]}")
    write_env "/etc/grove/$NAME.env" <<EOF
# grove-server's flags (grove-server --help); edit, then systemctl restart grove-server.
GROVE_SERVER_FLAGS=${flags[*]}
EOF
    write_server_unit
    # The CLI on this machine: the server and its CA (the admin token is in the data dir).
    host="${LISTEN%:*}"
    [ "$host" != 0.0.0.0 ] || host=127.0.0.1
    printf '{ "server": "https://%s:%s", "ca": "%s" }\n' "$host" "${LISTEN##*:}" "$(at "$DATA")/pki/ca.crt" >"$(at /etc/grove)/cli.json"
    say "installed Grove $version: $(at /opt/grove/current) -> $version"
    start_unit "$NAME"
    say "CLI: GROVE_CONFIG=$(at /etc/grove)/cli.json GROVE_TOKEN=\$(cat $(at "$DATA")/admin-token) grove get nodes"
    ;;
  upgrade)
    version="$(release_version)"
    [ -f "$(at /etc/systemd/system)/$NAME.service" ] || die "$NAME is not installed here; use install"
    USER_NAME="$(sed -n 's/^User=//p' "$(at /etc/systemd/system)/$NAME.service")"
    need_node
    verify_release
    install_release "$version"
    write_server_unit
    say "upgraded to Grove $version (data and flags kept; rollback: $0 rollback)"
    restart_unit "$NAME"
    ;;
  rollback)
    [ -f "$(at /etc/systemd/system)/$NAME.service" ] || die "$NAME is not installed here"
    rollback_release "$ROLLBACK_TO"
    restart_unit "$NAME"
    ;;
  uninstall)
    unit="$(at /etc/systemd/system)/$NAME.service"
    [ -f "$unit" ] && USER_NAME="$(sed -n 's/^User=//p' "$unit")"
    stop_unit "$NAME"
    rm -f "$(at /etc/grove)/cli.json"
    remove_install "$NAME"
    if [ "$PURGE" = 1 ]; then
      rm -rf "$(at "$DATA")"
      rmdir "$(at /var/lib/grove)" 2>/dev/null || true
      if id -u "$USER_NAME" >/dev/null 2>&1; then userdel "$USER_NAME" 2>/dev/null || true; fi
      say "removed grove-server, its data ($(at "$DATA")) and user $USER_NAME"
    else
      say "removed grove-server; data kept in $(at "$DATA") (--purge removes it)"
    fi
    ;;
  *) die "usage: $PROG install|upgrade|rollback|uninstall [flags] (see the top of $0)" ;;
esac
