# lib.sh: results and the container, sourced by run.sh (which sets WORK, OUT and ROOT).
#
# The container is a systemd-nspawn of $ROOT with a private network, booted with its own systemd
# as PID 1. The host has no systemd: nspawn runs with --register=no --keep-unit, and a small loop
# boots it again when it exits 133 (a reboot), as systemd-nspawn@.service would.
# Everything started here is tracked by PID ($WORK/loop.pid, $WORK/nspawn.pid) and only that is
# ever killed.

# ---------------------------------------------------------------------------- results
PASSED=0
FAILED=0
GAPS=0
pass() { PASSED=$((PASSED + 1)); echo "PASS  $*" | tee -a "$OUT/results.txt"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL  $*" | tee -a "$OUT/results.txt"; }
obs()  { echo "OBS   $*" | tee -a "$OUT/results.txt"; }
# A product behaviour known to be wrong and owned by another issue: reported, not counted as a
# failure of this test.
gap()  { GAPS=$((GAPS + 1)); obs "known product gap: $*"; }
# expect DESCRIPTION COMMAND...: PASS when COMMAND exits 0 (its output goes to checks.log).
expect() {
  local what=$1; shift
  echo "--- $what: $*" >>"$OUT/checks.log"
  if "$@" >>"$OUT/checks.log" 2>&1; then pass "$what"; else fail "$what"; fi
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
timing() { echo "$1 $2" >>"$OUT/timings.txt"; echo "TIME  $1 ${2}s"; }
# retry SECONDS COMMAND...: run COMMAND every second until it succeeds or SECONDS have passed.
retry() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 1
  done
}

# ---------------------------------------------------------------------------- the container
NSPAWN_NAME=cronplus-e2e
CX_TIMEOUT_S=150             # longer than the unit's TimeoutStopSec=120s (systemctl stop)

leader() { cat /proc/"$(cat "$WORK/nspawn.pid" 2>/dev/null)"/task/*/children 2>/dev/null | awk '{print $1; exit}'; }

# cx COMMAND...: run COMMAND as root inside the container (all namespaces of its PID 1), with a
# clean environment, bounded by CX_TIMEOUT_S.
cx() {
  local l; l=$(leader)
  [ -n "$l" ] || { echo "container not running" >&2; return 125; }
  timeout -k 10 "$CX_TIMEOUT_S" nsenter -t "$l" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    TERM=dumb LANG=C.UTF-8 HOME=/root SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
# bob 'SHELL TEXT': run as user bob with his user manager's bus (needs lingering or a session).
bob() {
  cx runuser -u bob -- env HOME=/home/bob XDG_RUNTIME_DIR=/run/user/1000 \
    DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus /bin/bash -c "$1"
}
# bob_login 'SHELL TEXT': as bob in a real login session (pam_systemd), the way bob would type it.
bob_login() { cx machinectl -q shell bob@.host /bin/bash -lc "$1"; }
svc() { cx systemctl show cronplus -p "$1" --value; }

boot() {
  cat >"$WORK/nspawn-loop.sh" <<EOF
#!/bin/bash
while :; do
  echo "=== nspawn start \$(date -Iseconds)" >>"$OUT/nspawn.log"
  systemd-nspawn -D "$ROOT" --private-network -M $NSPAWN_NAME --register=no --keep-unit -b </dev/null >>"$OUT/nspawn.log" 2>&1 &
  echo \$! >"$WORK/nspawn.pid"
  wait \$!; rc=\$?
  echo "=== nspawn exit \$rc \$(date -Iseconds)" >>"$OUT/nspawn.log"
  [ \$rc = 133 ] || break
done
EOF
  rm -f "$WORK/nspawn.pid"
  setsid bash "$WORK/nspawn-loop.sh" </dev/null >/dev/null 2>&1 &
  echo $! >"$WORK/loop.pid"
  wait_running
}

# Until the container's systemd reports running or degraded (at most 90 s).
wait_running() {
  local state="" deadline=$((SECONDS + 90))
  while [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.5
    [ -s "$WORK/nspawn.pid" ] || continue
    state=$(CX_TIMEOUT_S=10 cx systemctl is-system-running 2>/dev/null) || true
    case "$state" in running|degraded) return 0 ;; esac
  done
  echo "boot: state '$state' after 90 s" >&2
  return 1
}

# Reboot and wait for the new boot (a new nspawn process) to be up.
reboot_wait() {
  local old deadline=$((SECONDS + 60))
  old=$(cat "$WORK/nspawn.pid")
  cx systemctl reboot
  while [ "$(cat "$WORK/nspawn.pid" 2>/dev/null)" = "$old" ]; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.25
  done
  wait_running
}

# Clean poweroff; SIGKILL to our own nspawn if it has not exited after 90 s.
poweroff_wait() {
  local loop; loop=$(cat "$WORK/loop.pid" 2>/dev/null)
  [ -n "$loop" ] && kill -0 "$loop" 2>/dev/null || return 0
  CX_TIMEOUT_S=20 cx systemctl poweroff >/dev/null 2>&1
  local deadline=$((SECONDS + 90))
  while kill -0 "$loop" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "container did not power off in 90 s: killing nspawn $(cat "$WORK/nspawn.pid")" >&2
      kill -KILL "$(cat "$WORK/nspawn.pid")" 2>/dev/null
      sleep 1
      kill -KILL "$loop" 2>/dev/null
      break
    fi
    sleep 0.25
  done
}

# nspawn --keep-unit without a host systemd leaves empty cgroups behind; rmdir only removes
# empty ones, so nothing still in use is touched.
remove_leftover_cgroups() {
  local h d
  for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
    for d in payload supervisor; do
      [ -d "$h/$d" ] && find "$h/$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
  done
  return 0
}
