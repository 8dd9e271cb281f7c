#!/usr/bin/env bash
# The Debian packages the test suite needs (servers on loopback, a headless browser, promtool,
# systemd-analyze), installed when missing. Run as root (CI) it installs them with apt-get; run
# as another user it names what is missing and the command that installs it, and exits 1.
set -euo pipefail

# command to look for -> package that brings it
declare -A NEED=(
  [systemd-analyze]=systemd
  [pg_ctlcluster]=postgresql
  [redis-server]=redis-server
  [chromium]=chromium
  [chromedriver]=chromium-driver
  [promtool]=prometheus
)
missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "tests need these Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Packages' start-up scripts must not start their servers here: the tests start their own.
policy=/usr/sbin/policy-rc.d
had_policy=0; [ -e "$policy" ] && had_policy=1
[ $had_policy = 1 ] || { printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; }
trap '[ $had_policy = 1 ] || rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
