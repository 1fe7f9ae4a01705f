#!/usr/bin/env bash
# Installs what Grove needs on a Debian 12 machine (as root) and what npm
# needs in the repository: Debian packages that are missing, then `npm ci`
# when node_modules is absent or older than package-lock.json. Idempotent;
# both README commands run it first.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# prometheus: its promtool checks both /metrics outputs in test/src/observability.test.ts;
# zsh: the completion test runs the zsh script in a real zsh; chromium: the dashboard's browser test.
PACKAGES=(etcd-server etcd-client busybox-static iproute2 iptables make g++ python3 docker-registry skopeo umoci apache2-utils attr zstd openssl containernetworking-plugins util-linux time runc crun libseccomp-dev prometheus zsh chromium fonts-dejavu-core)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or apt-get install them)" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's docker-registry package starts a registry on :5000 (all
  # interfaces) under systemd; Grove's tests and quickstart run their own.
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null &&
    systemctl is-active --quiet docker-registry 2>/dev/null; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
fi

cd "$REPO"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
fi
