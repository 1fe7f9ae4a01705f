#!/usr/bin/env bash
# Grove quickstart: a one-node cluster on this machine.
#
#   deploy/quickstart.sh              install what is missing, start grove-server
#                                     (embedded etcd) and one grove-agent in the
#                                     background, apply examples/hello.yaml and
#                                     show its instances
#   deploy/quickstart.sh --nodes 3    the same with three agent "hosts", each in its
#                                     own network namespace on a bridge (grove-qs),
#                                     and examples/web.yaml (httpd on published ports)
#   deploy/quickstart.sh --servers 3  a highly available control plane instead: a
#                                     three-member etcd, three grove-server replicas
#                                     and one agent that knows them all
#                                     (deploy/ha-cluster.sh; its own ports and
#                                     .grove-ha, stopped with deploy/ha-cluster.sh down)
#   deploy/quickstart.sh down [--keep-data]
#                                     stop all of it and remove what it created
#   deploy/quickstart.sh status       show what is running
#
# Everything lives under $GROVE_HOME (default: .grove in the repository):
# server/ (tokens, etcd data), agent/ (state, container logs), rootfs/, logs/,
# run/ (pid files). The CLI's config goes to ~/.grove/config.json.
# Running it again is harmless: what already runs is left running.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GROVE_HOME="${GROVE_HOME:-$REPO/.grove}"
HTTP_ADDR="${GROVE_HTTP_ADDR:-127.0.0.1:7480}"
GRPC_ADDR="${GROVE_GRPC_ADDR:-127.0.0.1:7481}"
ETCD_PORT="${GROVE_ETCD_PORT:-2479}"
NODE_NAME="${GROVE_NODE_NAME:-$(hostname | tr 'A-Z_' 'a-z-' | cut -c1-63)}"
CGROUP_PARENT="${GROVE_CGROUP_PARENT:-grove}"
CLI_CONFIG="${GROVE_CONFIG:-$HOME/.grove/config.json}"
RUN="$GROVE_HOME/run"
# --nodes N: hosts in network namespaces on a bridge (the test harness's mechanism).
QS_BRIDGE=grove-qs
QS_NET="${GROVE_QS_NET:-172.31.251}"
LOGS="$GROVE_HOME/logs"
# A local OCI registry (one-node mode), seeded with grove/busybox:1 for examples/image.yaml.
REGISTRY_ADDR="${GROVE_REGISTRY_ADDR:-127.0.0.1:7482}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pidfile() { # pidfile name
  local pf="$1" name="$2"
  if alive "$pf"; then
    local pid; pid="$(cat "$pf")"
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pf"
}

kill_containers() {
  # Containers outlive the agent (each has its grove-shim): kill what runs in
  # the agent's cgroups; their shims then record the exit and go.
  local procs pid
  for procs in /sys/fs/cgroup/pids/"$CGROUP_PARENT"/*/cgroup.procs /sys/fs/cgroup/"$CGROUP_PARENT"/*/cgroup.procs; do
    [ -f "$procs" ] || continue
    for _ in $(seq 1 50); do
      [ -n "$(cat "$procs" 2>/dev/null)" ] || break # cgroupfs files have size 0: -s cannot tell
      while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$procs"
      sleep 0.1
    done
  done
  sleep 0.3
  rm -rf "/run/grove/$CGROUP_PARENT"
}

remove_cgroups() {
  # Leftovers of containers (the agent removes them itself on a clean stop).
  local base dir
  # Every hierarchy: each v1 controller (memory, cpu, pids, cpuacct, devices,
  # freezer, …) and the v2 root or unified mount.
  for base in /sys/fs/cgroup/*/ /sys/fs/cgroup; do
    base="${base%/}"
    [ -f "$base/cgroup.procs" ] || continue
    dir="$base/$CGROUP_PARENT"
    [ -d "$dir" ] || continue
    find "$dir" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
    rmdir "$dir" 2>/dev/null || true
  done
}

# Multi-node mode: host i is netns grove-qs-h<i> with address $QS_NET.(10+i),
# linked to bridge grove-qs ($QS_NET.1) by veth gqs-h<i>.
make_hosts() { # count
  local n="$1" i
  if ! ip link show "$QS_BRIDGE" >/dev/null 2>&1; then
    ip route | grep -q "^$QS_NET\." && die "$QS_NET.0/24 is routed here already; set GROVE_QS_NET to a free /24 prefix"
    ip link add "$QS_BRIDGE" type bridge
    ip addr add "$QS_NET.1/24" dev "$QS_BRIDGE"
    ip link set "$QS_BRIDGE" up
  fi
  for i in $(seq 1 "$n"); do
    [ -e "/run/netns/grove-qs-h$i" ] && continue
    ip netns add "grove-qs-h$i"
    ip link add "gqs-h$i" type veth peer name "gqs-p$i"
    ip link set "gqs-p$i" netns "grove-qs-h$i"
    ip -n "grove-qs-h$i" link set "gqs-p$i" name eth0
    ip -n "grove-qs-h$i" addr add "$QS_NET.$((10 + i))/24" dev eth0
    ip -n "grove-qs-h$i" link set eth0 up
    ip -n "grove-qs-h$i" link set lo up
    ip link set "gqs-h$i" master "$QS_BRIDGE" up
  done
}

remove_hosts() {
  local ns i m
  # Instance network namespaces are bind mounts under the agents' state.
  awk -v home="$GROVE_HOME/" 'index($5, home) == 1 && $5 ~ /\/network\/netns\// { print $5 }' /proc/self/mountinfo |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  for ns in /run/netns/grove-qs-h*; do
    [ -e "$ns" ] || continue
    i="${ns##*-h}"
    ip netns del "grove-qs-h$i" 2>/dev/null || true
    ip link del "gqs-h$i" 2>/dev/null || true
  done
  ip link del "$QS_BRIDGE" 2>/dev/null || true
}

# Overlay roots of containers (of images, and the private roots over rootfs
# directories) are mounted in the agent's (the host's) mount namespace and
# outlive the agent with their containers.
unmount_image_roots() {
  awk -v home="$GROVE_HOME/" 'index($5, home) == 1 && $5 ~ /\/(images\/containers|roots)\/[^/]+\/rootfs$/ { print $5 }' /proc/self/mountinfo |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}

start_registry() {
  local dir="$GROVE_HOME/registry" build
  mkdir -p "$dir/storage"
  if alive "$RUN/registry.pid"; then
    say "image registry already running (pid $(cat "$RUN/registry.pid"))"
  else
    say "starting a local image registry (docker-registry) on $REGISTRY_ADDR"
    printf 'version: 0.1\nlog: { level: warn, accesslog: { disabled: true } }\nstorage:\n  filesystem: { rootdirectory: %s }\n  delete: { enabled: true }\nhttp:\n  addr: %s\n' \
      "$dir/storage" "$REGISTRY_ADDR" >"$dir/config.yml"
    setsid docker-registry serve "$dir/config.yml" >>"$LOGS/registry.log" 2>&1 </dev/null &
    echo $! >"$RUN/registry.pid"
    for _ in $(seq 1 100); do
      node -e "fetch('http://$REGISTRY_ADDR/v2/').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" && break
      alive "$RUN/registry.pid" || die "docker-registry exited; see $LOGS/registry.log"
      sleep 0.1
    done
  fi
  if ! skopeo inspect --raw --tls-verify=false "docker://$REGISTRY_ADDR/grove/busybox:1" >/dev/null 2>&1; then
    say "building the busybox image with umoci; pushing it as $REGISTRY_ADDR/grove/busybox:1"
    build="$dir/build"
    rm -rf "$build"
    umoci init --layout "$build/layout"
    umoci new --image "$build/layout:busybox"
    umoci unpack --image "$build/layout:busybox" "$build/bundle" >/dev/null
    "$REPO/deploy/make-rootfs.sh" "$build/bundle/rootfs" >/dev/null
    umoci repack --image "$build/layout:busybox" "$build/bundle"
    umoci config --image "$build/layout:busybox" --config.cmd /bin/sh
    skopeo copy -q --dest-tls-verify=false "oci:$build/layout:busybox" "docker://$REGISTRY_ADDR/grove/busybox:1"
    rm -rf "$build"
  fi
}

down() {
  local keep=0 pf i
  [ "${1:-}" = "--keep-data" ] && keep=1
  for pf in "$RUN"/agent-h*.pid; do
    [ -f "$pf" ] || continue
    i="$(basename "$pf" .pid)"
    i="${i#agent-h}"
    stop_pidfile "$pf" "grove-agent h$i"
    CGROUP_PARENT="grove-qs-h$i" kill_containers
    CGROUP_PARENT="grove-qs-h$i" remove_cgroups
  done
  stop_pidfile "$RUN/agent.pid" grove-agent
  stop_pidfile "$RUN/server.pid" grove-server
  kill_containers
  # The one-node agent runs in this machine's namespace: undo its instance networks, chains, bridge.
  if [ -d "$GROVE_HOME/agent/network" ] && [ -f "$REPO/agent/dist/network/node-cleanup.js" ]; then
    node "$REPO/agent/dist/network/node-cleanup.js" "$GROVE_HOME/agent/network" || true
  fi
  remove_hosts
  remove_cgroups
  unmount_image_roots
  stop_pidfile "$RUN/registry.pid" docker-registry
  # Mounts of containers live in their own mount namespaces; nothing of
  # theirs is left on the host once their processes are gone.
  if [ -f "$CLI_CONFIG" ] && grep -q "\"https://$HTTP_ADDR\"" "$CLI_CONFIG"; then rm -f "$CLI_CONFIG"; fi
  if [ "$keep" = 1 ]; then
    say "stopped; data kept in $GROVE_HOME"
  else
    rm -rf "$GROVE_HOME"
    say "stopped and removed $GROVE_HOME"
  fi
}

status() {
  alive "$RUN/server.pid" && echo "grove-server: running (pid $(cat "$RUN/server.pid"))" || echo "grove-server: stopped"
  alive "$RUN/agent.pid" && echo "grove-agent:  running (pid $(cat "$RUN/agent.pid"))" || echo "grove-agent:  stopped"
  alive "$RUN/registry.pid" && echo "registry:     running on $REGISTRY_ADDR (pid $(cat "$RUN/registry.pid"))" || true
  local pf
  for pf in "$RUN"/agent-h*.pid; do
    [ -f "$pf" ] || continue
    alive "$pf" && echo "grove-agent $(basename "$pf" .pid): running (pid $(cat "$pf"))" || echo "grove-agent $(basename "$pf" .pid): stopped"
  done
}

install_deps() {
  "$REPO/deploy/setup.sh"
  cd "$REPO"
  say "building (TypeScript and the native runtime addon)"
  npm run --silent build
}

# The cluster CA grove-server made at its first start: the CLI and the health check trust it.
CA_FILE="$GROVE_HOME/server/pki/ca.crt"

wait_http() {
  for _ in $(seq 1 150); do
    if [ -f "$CA_FILE" ] && NODE_EXTRA_CA_CERTS="$CA_FILE" \
      node -e "fetch('https://$HTTP_ADDR/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; then
      return 0
    fi
    alive "$RUN/server.pid" || { tail -n 30 "$LOGS/server.log" >&2; die "grove-server exited; see $LOGS/server.log"; }
    sleep 0.2
  done
  die "grove-server did not answer on https://$HTTP_ADDR; see $LOGS/server.log"
}

# grove-agent's arguments for node $1 with state in $2: a single-use join token
# and the CA pin the first time; afterwards the node certificate in its state.
agent_credentials() { # node state-dir
  if [ -f "$2/pki/node.crt" ]; then
    echo "--server https://$HTTP_ADDR"
    return
  fi
  node "$REPO/api/bin/grove.js" token create --node "$1" --ttl 10m -o json | node -e '
    let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const t=JSON.parse(s);
    process.stdout.write(`--server https://'"$HTTP_ADDR"' --join ${t.token} --ca-hash ${t.caHash}`)})'
}

up() {
  local nodes=0
  if [ "${1:-}" = "--nodes" ]; then
    nodes="${2:-}"
    [[ "$nodes" =~ ^[1-9][0-9]?$ ]] || die "--nodes takes a number of nodes (1-99), got \"$nodes\""
    GRPC_ADDR="$QS_NET.1:${GRPC_ADDR##*:}"
    # Agents in the hosts join through the API: it listens on the bridge too.
    HTTP_ADDR="$QS_NET.1:${HTTP_ADDR##*:}"
  fi
  [ "$(id -u)" = 0 ] || die "run as root: the agent creates cgroups and namespaces"
  install_deps
  mkdir -p "$RUN" "$LOGS" "$GROVE_HOME/server" "$GROVE_HOME/agent" "$GROVE_HOME/rootfs"
  # Templates are root's: nobody else may enter the directory that holds them.
  chown root:root "$GROVE_HOME/rootfs"
  chmod 0700 "$GROVE_HOME/rootfs"
  say "root filesystem: busybox"
  "$REPO/deploy/make-rootfs.sh" "$GROVE_HOME/rootfs/busybox" >/dev/null

  if [ "$nodes" -gt 0 ]; then make_hosts "$nodes"; fi
  if alive "$RUN/server.pid"; then
    say "grove-server already running (pid $(cat "$RUN/server.pid"))"
  else
    say "starting grove-server (embedded etcd on 127.0.0.1:$ETCD_PORT, API on https://$HTTP_ADDR)"
    setsid node "$REPO/control-plane/bin/grove-server.js" --data-dir "$GROVE_HOME/server" \
      --listen "$HTTP_ADDR" --grpc-listen "$GRPC_ADDR" --etcd-port "$ETCD_PORT" \
      >>"$LOGS/server.log" 2>&1 </dev/null &
    echo $! >"$RUN/server.pid"
  fi
  wait_http

  mkdir -p "$(dirname "$CLI_CONFIG")"
  umask 077
  printf '{\n  "server": "https://%s",\n  "token": "%s",\n  "ca": "%s"\n}\n' "$HTTP_ADDR" \
    "$(cat "$GROVE_HOME/server/admin-token")" "$CA_FILE" >"$CLI_CONFIG"
  umask 022
  say "CLI config written to $CLI_CONFIG"

  if [ "$nodes" -gt 0 ]; then
    up_nodes "$nodes"
    return
  fi
  start_registry
  if alive "$RUN/agent.pid"; then
    say "grove-agent already running (pid $(cat "$RUN/agent.pid"))"
  else
    say "starting grove-agent (node $NODE_NAME)"
    # shellcheck disable=SC2046 # the credentials are separate words
    setsid node "$REPO/agent/bin/grove-agent.js" $(agent_credentials "$NODE_NAME" "$GROVE_HOME/agent") \
      --node-name "$NODE_NAME" \
      --state-dir "$GROVE_HOME/agent" --rootfs-dir "$GROVE_HOME/rootfs" --cgroup-parent "$CGROUP_PARENT" \
      >>"$LOGS/agent.log" 2>&1 </dev/null &
    echo $! >"$RUN/agent.pid"
  fi

  cd "$REPO"
  say "waiting for node $NODE_NAME to be Ready"
  for _ in $(seq 1 150); do
    node api/bin/grove.js get nodes -o json 2>/dev/null | node -e '
      let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const j=JSON.parse(s);
      process.exit(j.items.some(n=>(n.status.conditions||[]).some(c=>c.type==="Ready"&&c.status==="True"))?0:1)}catch{process.exit(1)}})' && break
    alive "$RUN/agent.pid" || { tail -n 30 "$LOGS/agent.log" >&2; die "grove-agent exited; see $LOGS/agent.log"; }
    sleep 0.2
  done

  say "grove apply -f examples/hello.yaml --wait"
  node api/bin/grove.js apply -f examples/hello.yaml --wait --timeout 120s
  say "grove get instances"
  node api/bin/grove.js get instances
  cat <<EOF

Grove is running. From $REPO try:
  npx grove get apps
  npx grove get instances
  npx grove describe app hello
  npx grove delete -f examples/hello.yaml
  npx grove apply -f examples/image.yaml --wait   # an App from the OCI image in $REGISTRY_ADDR
Logs: $LOGS   Stop everything: deploy/quickstart.sh down
EOF
}

up_nodes() { # count
  local n="$1" i
  for i in $(seq 1 "$n"); do
    if alive "$RUN/agent-h$i.pid"; then
      say "grove-agent h$i already running (pid $(cat "$RUN/agent-h$i.pid"))"
      continue
    fi
    say "starting grove-agent h$i in network namespace grove-qs-h$i ($QS_NET.$((10 + i)))"
    mkdir -p "$GROVE_HOME/agent-h$i"
    # shellcheck disable=SC2046 # the credentials are separate words
    setsid nsenter --net="/run/netns/grove-qs-h$i" node "$REPO/agent/bin/grove-agent.js" \
      $(agent_credentials "qs-h$i" "$GROVE_HOME/agent-h$i") --node-name "qs-h$i" --address "$QS_NET.$((10 + i))" \
      --state-dir "$GROVE_HOME/agent-h$i" --rootfs-dir "$GROVE_HOME/rootfs" --cgroup-parent "grove-qs-h$i" \
      >>"$LOGS/agent-h$i.log" 2>&1 </dev/null &
    echo $! >"$RUN/agent-h$i.pid"
  done

  cd "$REPO"
  say "waiting for $n Ready nodes"
  for _ in $(seq 1 300); do
    node api/bin/grove.js get nodes -o json 2>/dev/null | N="$n" node -e '
      let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const j=JSON.parse(s);
      process.exit(j.items.filter(n=>(n.status.conditions||[]).some(c=>c.type==="Ready"&&c.status==="True")).length>=Number(process.env.N)?0:1)}catch{process.exit(1)}})' && break
    sleep 0.2
  done

  say "grove apply -f examples/web.yaml --wait"
  node api/bin/grove.js apply -f examples/web.yaml --wait --timeout 120s
  say "grove get endpoints web -o json"
  node api/bin/grove.js get endpoints web -o json
  say "GET every published address from this machine"
  node api/bin/grove.js get endpoints web -o json | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", async () => {
      for (const e of JSON.parse(s).endpoints) for (const p of e.ports) {
        const r = await fetch(`http://${p.address}/`).then((r) => r.text(), (err) => `error: ${err.message}`);
        console.log(`${p.address} -> ${r.trim()}`);
      }
    });'
  cat <<EOF

Grove is running with $n nodes. From $REPO try:
  npx grove get nodes -o wide
  npx grove get instances -o wide
  npx grove get endpoints web -o json
  npx grove delete -f examples/web.yaml
Logs: $LOGS   Stop everything: deploy/quickstart.sh down
EOF
}

case "${1:-up}" in
  up)
    shift || true
    up "$@"
    ;;
  --nodes) up "$@" ;;
  --servers)
    [ "$(id -u)" = 0 ] || die "run as root: the agent creates cgroups and namespaces"
    install_deps
    exec "$REPO/deploy/ha-cluster.sh" up "$@"
    ;;
  down) shift; down "$@" ;;
  status) status ;;
  *) die "usage: deploy/quickstart.sh [up [--nodes N]|--nodes N|--servers N|down [--keep-data]|status]" ;;
esac
