#!/bin/bash
# rootfs.sh: the Debian 12 root filesystem (with systemd 252) that the systemd e2e boots, built
# once per machine and cached.
#
#   rootfs.sh --tools   install the host tools (debootstrap, systemd-nspawn) with apt-get if missing
#   rootfs.sh           print the path of a ready rootfs, building it first when the cache has none
#
# The cache is $CRONPLUS_E2E_CACHE (default /var/cache/cronplus-e2e), one directory per recipe:
# rootfs-<key>, where key hashes the suite, the architecture and the package list below, so a
# changed list builds a new rootfs (and the old one is removed). A build goes to
# rootfs-<key>.partial and is renamed only when complete; a lock lets .ci/run start the build in
# the background while the e2e, started later, waits for it. The cached tree is never booted:
# run.sh boots a copy.
#
# Exit status: 0 ready (path on stdout); 3 this machine cannot build it (the reason on stderr,
# e.g. not root, no apt-get, the mirror unreachable); 1 the build failed (log in the cache dir).
set -u

SUITE=bookworm                  # Debian 12: systemd 252, python3.11
# What the e2e needs beyond minbase: systemd as PID 1 with logind and the user manager (lingering),
# machinectl (a real login session for the user unit), python3 with venv/ensurepip (the offline
# install), procps (pgrep).
INCLUDE=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,systemd-container,python3,python3-venv,procps
RECIPE=2                        # bump when the steps after debootstrap change
CACHE=${CRONPLUS_E2E_CACHE:-/var/cache/cronplus-e2e}
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit} /^deb /{print $2; exit}' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
BUILD_TIMEOUT_S=${BUILD_TIMEOUT_S:-1200}

cannot() { echo "$*" >&2; exit 3; }

install_tools() {
  command -v debootstrap >/dev/null && command -v systemd-nspawn >/dev/null && return 0
  [ "$(id -u)" = 0 ] || cannot "not root: cannot install debootstrap and systemd-container"
  command -v apt-get >/dev/null || cannot "no apt-get: install debootstrap and systemd-nspawn by hand"
  local log=$CACHE/apt-host.log
  mkdir -p "$CACHE"
  # DPkg::Lock::Timeout: CI may run another apt-get at the same time; wait for it.
  if ! { apt-get -o DPkg::Lock::Timeout=600 update -qq &&
         DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq debootstrap systemd-container; } >"$log" 2>&1; then
    cannot "apt-get could not install debootstrap systemd-container: $(tail -1 "$log")"
  fi
}

key() { printf '%s\n' "$SUITE" "$(uname -m)" "$INCLUDE" "$RECIPE" | sha256sum | cut -c1-12; }

# Unmount whatever debootstrap left mounted under $1 (it mounts /proc and /sys inside the
# target), deepest first, then remove the tree without crossing into any other file system.
remove_tree() {
  local m
  awk -v p="$1/" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf --one-file-system "$1"
}

build() {
  local final=$1 partial=$1.partial log=$CACHE/debootstrap.log
  # Reached in the ordinary way (the mirror apt uses), checked first so that a machine without
  # network says so instead of failing after a timeout.
  local why
  why=$(python3 - "$MIRROR/dists/$SUITE/InRelease" 2>&1 <<'EOF'
import sys, urllib.request
try:
    urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="HEAD"), timeout=20)
except Exception as exc:  # whatever the reason, one line
    sys.exit(str(getattr(exc, "reason", exc)))
EOF
) || cannot "Debian mirror $MIRROR unreachable ($why)"
  remove_tree "$partial"
  trap 'remove_tree "$partial"; exit 143' TERM INT
  echo "building $final (debootstrap $SUITE from $MIRROR; log $log)" >&2
  local t0=$SECONDS
  if ! timeout "$BUILD_TIMEOUT_S" debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$partial" "$MIRROR" >"$log" 2>&1; then
    remove_tree "$partial"
    echo "debootstrap failed: $(grep -E '^(E|W):' "$log" | tail -2 | tr '\n' ' ') (see $log)" >&2
    return 1
  fi
  echo cronplus-e2e >"$partial/etc/hostname"
  mkdir -p "$partial/var/log/journal"          # persistent journal: the previous boot stays readable
  systemd-machine-id-setup --root="$partial" >/dev/null 2>&1 || true
  rm -f "$partial"/var/cache/apt/archives/*.deb
  echo "debootstrap_s=$((SECONDS - t0))" >"$partial/.cronplus-e2e-built"
  mv "$partial" "$final"
  trap - TERM INT
  local old
  for old in "$CACHE"/rootfs-*; do
    [ "$old" = "$final" ] || [ "$old" = "$final.partial" ] || remove_tree "$old"
  done
}

case "${1:-}" in
  --tools) mkdir -p "$CACHE" 2>/dev/null; install_tools; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--tools]" >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || cannot "not root: debootstrap and systemd-nspawn need root"
mkdir -p "$CACHE"
install_tools
final=$CACHE/rootfs-$(key)
exec 9>"$CACHE/rootfs.lock"
flock -w "$BUILD_TIMEOUT_S" 9 || { echo "timed out waiting for another build of $final" >&2; exit 1; }
if [ ! -e "$final/.cronplus-e2e-built" ]; then
  build "$final" || exit 1
fi
echo "$final"
