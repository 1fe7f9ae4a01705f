#!/usr/bin/env bash
# A highly available Grove control plane on this machine: a three-member etcd
# cluster, three grove-server replicas on it (one leader, all serving the API
# and the agents) and one grove-agent that knows every replica.
#
#   deploy/ha-cluster.sh up [--servers N] [--no-agent]
#                              start N (default 3, at most 5) etcd members and
#                              grove-server replicas, then the agent
#   deploy/ha-cluster.sh down [--keep-data]
#                              stop everything it started, remove its state
#   deploy/ha-cluster.sh status
#   deploy/ha-cluster.sh kill-server I
#                              kill -9 replica I (1..N) to watch the agent move
#   deploy/ha-cluster.sh start-server I
#                              start replica I again
# (`deploy/quickstart.sh --servers 3` installs what is missing and runs `up`.)
#
# The repository must be built (npm ci && npm run build). Everything lives
# under $GROVE_HA_HOME (default .grove-ha in the repository). Ports come from
# $GROVE_HA_PORT_BASE (default 7500): replica I serves the API on BASE+10*I
# and agents on BASE+10*I+1, etcd member I takes clients on BASE+100+10*I and
# peers on the port after. The CLI's config is written to
# $GROVE_HA_HOME/cli-config.json (use it with GROVE_CONFIG=...), not
# ~/.grove/config.json, so a one-node quickstart cluster is left alone.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HA_HOME="${GROVE_HA_HOME:-$REPO/.grove-ha}"
BASE="${GROVE_HA_PORT_BASE:-7500}"
NODE_NAME="${GROVE_HA_NODE_NAME:-$(hostname | tr 'A-Z_' 'a-z-' | cut -c1-60)-ha}"
CGROUP_PARENT="${GROVE_HA_CGROUP_PARENT:-grove-ha}"
AGENT_NETWORK="${GROVE_HA_AGENT_NETWORK:-cni}"
RUN="$HA_HOME/run"
LOGS="$HA_HOME/logs"
CA_FILE="$HA_HOME/server1/pki/ca.crt"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'ha-cluster: %s\n' "$*" >&2; exit 1; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

http_port() { echo $((BASE + 10 * $1)); }
grpc_port() { echo $((BASE + 10 * $1 + 1)); }
etcd_client() { echo $((BASE + 100 + 10 * $1)); }
etcd_peer() { echo $((BASE + 101 + 10 * $1)); }

servers_count() { cat "$HA_HOME/servers" 2>/dev/null || echo 3; }

stop_pidfile() { # pidfile name [signal]
  local pf="$1" name="$2" sig="${3:-TERM}"
  if alive "$pf"; then
    local pid; pid="$(cat "$pf")"
    say "stopping $name (pid $pid)"
    kill -"$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pf"
}

endpoints() {
  local n i out=""
  n="$(servers_count)"
  for i in $(seq 1 "$n"); do out="$out${out:+,}http://127.0.0.1:$(etcd_client "$i")"; done
  echo "$out"
}

start_etcd() { # i n
  local i="$1" n="$2" j cluster=""
  for j in $(seq 1 "$n"); do cluster="$cluster${cluster:+,}m$j=http://127.0.0.1:$(etcd_peer "$j")"; done
  alive "$RUN/etcd$i.pid" && return
  local state=new
  [ -d "$HA_HOME/etcd$i/member" ] && state=existing
  setsid etcd --name "m$i" --data-dir "$HA_HOME/etcd$i" \
    --listen-client-urls "http://127.0.0.1:$(etcd_client "$i")" \
    --advertise-client-urls "http://127.0.0.1:$(etcd_client "$i")" \
    --listen-peer-urls "http://127.0.0.1:$(etcd_peer "$i")" \
    --initial-advertise-peer-urls "http://127.0.0.1:$(etcd_peer "$i")" \
    --initial-cluster "$cluster" --initial-cluster-state "$state" \
    --initial-cluster-token "grove-ha-$BASE" \
    --auto-compaction-mode=periodic --auto-compaction-retention=1h \
    >>"$LOGS/etcd$i.log" 2>&1 </dev/null &
  echo $! >"$RUN/etcd$i.pid"
}

start_server() { # i
  local i="$1"
  local dir="$HA_HOME/server$i"
  alive "$RUN/server$i.pid" && return
  mkdir -p -m 0700 "$dir"
  # Every replica of a cluster shares its admin token and its CA (the first one made them).
  local ca=()
  if [ "$i" != 1 ]; then
    cp "$HA_HOME/server1/admin-token" "$dir/"
    ca=(--ca-cert "$HA_HOME/server1/pki/ca.crt" --ca-key "$HA_HOME/server1/pki/ca.key")
  fi
  setsid node "$REPO/control-plane/bin/grove-server.js" --data-dir "$dir" "${ca[@]}" \
    --listen "127.0.0.1:$(http_port "$i")" --grpc-listen "127.0.0.1:$(grpc_port "$i")" \
    --advertise-url "https://127.0.0.1:$(http_port "$i")" --etcd-endpoints "$(endpoints)" \
    >>"$LOGS/server$i.log" 2>&1 </dev/null &
  echo $! >"$RUN/server$i.pid"
}

wait_http() { # i
  local i="$1"
  for _ in $(seq 1 300); do
    if [ -f "$CA_FILE" ] && NODE_EXTRA_CA_CERTS="$CA_FILE" \
      node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' \
      "https://127.0.0.1:$(http_port "$i")/healthz" 2>/dev/null; then return 0; fi
    alive "$RUN/server$i.pid" || { tail -n 30 "$LOGS/server$i.log" >&2; die "grove-server $i exited; see $LOGS/server$i.log"; }
    sleep 0.2
  done
  die "grove-server $i did not answer; see $LOGS/server$i.log"
}

up() {
  local n=3 agent=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --servers) n="${2:-}"; shift 2 || die "--servers takes a number"
        [[ "$n" =~ ^[1-5]$ ]] || die "--servers takes 1 to 5, got \"$n\"" ;;
      --no-agent) agent=0; shift ;;
      *) die "up: unknown argument \"$1\"" ;;
    esac
  done
  [ -f "$REPO/control-plane/dist/main.js" ] || die "build first: npm ci && npm run build"
  if [ -f "$HA_HOME/servers" ] && [ "$(servers_count)" != "$n" ]; then
    die "$HA_HOME holds a cluster of $(servers_count) members; run down first"
  fi
  mkdir -p "$RUN" "$LOGS"
  echo "$n" >"$HA_HOME/servers"
  say "etcd: $n members on 127.0.0.1:$(etcd_client 1)..$(etcd_client "$n")"
  for i in $(seq 1 "$n"); do start_etcd "$i" "$n"; done
  for _ in $(seq 1 150); do
    ETCDCTL_API=3 etcdctl --endpoints "$(endpoints)" endpoint health >/dev/null 2>&1 && break
    sleep 0.2
  done
  ETCDCTL_API=3 etcdctl --endpoints "$(endpoints)" endpoint health >/dev/null 2>&1 || die "etcd is not healthy; see $LOGS/etcd*.log"
  # The first replica makes the tokens; the others copy them.
  start_server 1; wait_http 1
  for i in $(seq 2 "$n"); do start_server "$i"; done
  for i in $(seq 2 "$n"); do wait_http "$i"; done
  say "grove-server: $n replicas, API on https://127.0.0.1:$(http_port 1)..$(http_port "$n")"
  umask 077
  printf '{\n  "server": "https://127.0.0.1:%s",\n  "token": "%s",\n  "ca": "%s"\n}\n' "$(http_port 1)" \
    "$(cat "$HA_HOME/server1/admin-token")" "$CA_FILE" >"$HA_HOME/cli-config.json"
  umask 022
  if [ "$agent" = 1 ] && ! alive "$RUN/agent.pid"; then
    [ "$(id -u)" = 0 ] || die "run as root for the agent (or pass --no-agent)"
    # The agent joins through replica 1's API once (a single-use token, the CA pinned by its hash),
    # then talks mutual TLS to replica 1's gRPC port and, when that goes away, to the others'.
    local servers="https://127.0.0.1:$(http_port 1)" join=()
    for i in $(seq 2 "$n"); do servers="$servers,127.0.0.1:$(grpc_port "$i")"; done
    if [ ! -f "$HA_HOME/agent/pki/node.crt" ]; then
      local t
      t=$(GROVE_CONFIG="$HA_HOME/cli-config.json" node "$REPO/api/bin/grove.js" token create --node "$NODE_NAME" --ttl 10m -o json)
      join=(--join "$(node -e 'process.stdout.write(JSON.parse(process.argv[1]).token)' "$t")"
        --ca-hash "$(node -e 'process.stdout.write(JSON.parse(process.argv[1]).caHash)' "$t")")
    fi
    mkdir -p "$HA_HOME/rootfs" && chmod 0700 "$HA_HOME/rootfs"
    [ -d "$HA_HOME/rootfs/busybox" ] || "$REPO/deploy/make-rootfs.sh" "$HA_HOME/rootfs/busybox" >/dev/null
    setsid node "$REPO/agent/bin/grove-agent.js" --server "$servers" "${join[@]}" --node-name "$NODE_NAME" \
      --state-dir "$HA_HOME/agent" --rootfs-dir "$HA_HOME/rootfs" \
      --cgroup-parent "$CGROUP_PARENT" --network "$AGENT_NETWORK" \
      >>"$LOGS/agent.log" 2>&1 </dev/null &
    echo $! >"$RUN/agent.pid"
    say "grove-agent $NODE_NAME: --server $servers"
  fi
  cat <<EOF

Grove runs with $n control-plane replicas. From $REPO try:
  export GROVE_CONFIG=$HA_HOME/cli-config.json
  npx grove get nodes
  deploy/ha-cluster.sh kill-server 1     # the agent moves to another replica; the node stays Ready
  GROVE_SERVER=https://127.0.0.1:$(http_port 2) npx grove get nodes
Logs: $LOGS
EOF
}

down() {
  local keep=0
  [ "${1:-}" = "--keep-data" ] && keep=1
  local n i
  n="$(servers_count)"
  stop_pidfile "$RUN/agent.pid" grove-agent
  # Its containers outlive it: kill them (their shims record the exit and go).
  for procs in /sys/fs/cgroup/pids/"$CGROUP_PARENT"/*/cgroup.procs /sys/fs/cgroup/"$CGROUP_PARENT"/*/cgroup.procs; do
    [ -f "$procs" ] || continue
    xargs -r kill -KILL <"$procs" 2>/dev/null || true
  done
  for i in $(seq 1 "$n"); do stop_pidfile "$RUN/server$i.pid" "grove-server $i"; done
  for i in $(seq 1 "$n"); do stop_pidfile "$RUN/etcd$i.pid" "etcd member $i"; done
  if [ "$keep" = 0 ]; then
    for procs in /sys/fs/cgroup/*/"$CGROUP_PARENT" /sys/fs/cgroup/"$CGROUP_PARENT"; do
      [ -d "$procs" ] && find "$procs" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
    rm -rf "$HA_HOME"
  fi
}

status() {
  local n i
  n="$(servers_count)"
  for i in $(seq 1 "$n"); do
    alive "$RUN/etcd$i.pid" && echo "etcd member $i: running (pid $(cat "$RUN/etcd$i.pid"))" || echo "etcd member $i: stopped"
  done
  for i in $(seq 1 "$n"); do
    alive "$RUN/server$i.pid" && echo "grove-server $i: running (pid $(cat "$RUN/server$i.pid")), https://127.0.0.1:$(http_port "$i")" ||
      echo "grove-server $i: stopped"
  done
  alive "$RUN/agent.pid" && echo "grove-agent: running (pid $(cat "$RUN/agent.pid"))" || echo "grove-agent: stopped"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) shift; down "$@" ;;
  status) status ;;
  kill-server)
    [[ "${2:-}" =~ ^[1-5]$ ]] || die "kill-server takes a replica number"
    stop_pidfile "$RUN/server$2.pid" "grove-server $2" KILL ;;
  start-server)
    [[ "${2:-}" =~ ^[1-5]$ ]] || die "start-server takes a replica number"
    start_server "$2"; wait_http "$2" ;;
  *) die "usage: deploy/ha-cluster.sh up [--servers N] [--no-agent] | down [--keep-data] | status | kill-server I | start-server I" ;;
esac
