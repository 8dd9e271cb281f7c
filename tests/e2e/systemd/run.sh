#!/bin/bash
# run.sh: cronplus under a real systemd (252, Debian 12), end to end.
#
# Boots a Debian 12 container (systemd-nspawn, private network) with systemd as its PID 1,
# installs cronplus in it the way an admin would (offline, from wheels built here on the host),
# and checks what only a real service manager can show: install-service, STATUS=, reload ok and
# refused, journald priorities, systemd-analyze verify, the watchdog, stop with a running job,
# @reboot once per boot, and the user unit of a lingering user.
#
#   sudo bash tests/e2e/systemd/run.sh   (about 3.5 min with the rootfs cached; building it adds 1-3)
#
# One line per check: PASS / FAIL / OBS (an observation, e.g. a known product gap); the last line
# is the summary "systemd e2e: N passed, M failed" (written to $E2E_SUMMARY instead when set).
# Exit status: 0 all passed, or SKIP (this machine cannot run it: not root, no namespaces, no
# Debian mirror; the reason is printed); 1 a check failed.
# Needs: root, apt-get (or debootstrap and systemd-nspawn installed), the Debian mirror apt uses
# (unless the rootfs is cached, see rootfs.sh), and pip's index for cronplus's dependencies.
# Logs: /var/tmp/cronplus-e2e-out.* (kept when a check fails, and named at the end).
# Never boots systemd on the host; kills only what it started, by PID.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../../.." && pwd)
CACHE=${CRONPLUS_E2E_CACHE:-/var/cache/cronplus-e2e}
# shellcheck source=lib.sh
. "$HERE/lib.sh"

summary() {
  local line
  if [ -n "$SKIPPED" ]; then
    line="systemd e2e: SKIP ($SKIPPED)"
  else
    line="systemd e2e: $PASSED passed, $FAILED failed"
    [ "$GAPS" = 0 ] || line+=" ($GAPS known product gap(s), see the OBS lines)"
  fi
  # With E2E_SUMMARY the caller prints it (.ci/run: as its last line).
  if [ -n "${E2E_SUMMARY:-}" ]; then echo "$line" >"$E2E_SUMMARY"; else echo "$line"; fi
}
skip() { SKIPPED=$*; echo "SKIP  $*"; exit 0; }

# Power the container off, remove the work tree, keep the logs only when something failed.
teardown() {
  local rc=$?
  trap - EXIT
  if [ -n "$WORK" ]; then
    local t; t=$(now); poweroff_wait; timing poweroff "$(since "$t")"
    remove_leftover_cgroups
    if awk -v p="$ROOT/" 'index($2, p) == 1 {found = 1} END {exit !found}' /proc/mounts; then
      echo "something is still mounted under $ROOT: $WORK left in place" >&2
    else
      rm -rf --one-file-system "$WORK"
    fi
    timing total "$(since "$T_ALL")"
  fi
  if [ "$FAILED" = 0 ]; then rm -rf "$OUT"; else echo "logs: $OUT"; fi
  summary
  exit "$rc"
}

# ---------------------------------------------------------------------------- preflight
SKIPPED=""
WORK=""
T_ALL=$(now)
OUT=$(mktemp -d /var/tmp/cronplus-e2e-out.XXXXXX 2>/dev/null || mktemp -d)
trap teardown EXIT
trap 'fail "stopped by a signal (the time limit?)"; exit 1' TERM INT HUP
[ "$(id -u)" = 0 ] || skip "not root: systemd-nspawn needs root"
[ "$(uname -s)" = Linux ] || skip "not Linux"
unshare --mount --pid --fork --mount-proc true 2>/dev/null || skip "cannot create mount/PID namespaces here (an unprivileged container?)"
[ -d /sys/fs/cgroup ] || skip "no /sys/fs/cgroup"

T=$(now)
ROOTFS=$(bash "$HERE/rootfs.sh" 2>"$OUT/rootfs.txt"); rc=$?
case $rc in
  0) cat "$OUT/rootfs.txt" ;;
  3) skip "$(tail -1 "$OUT/rootfs.txt")" ;;
  *) fail "a Debian 12 rootfs: $(tail -1 "$OUT/rootfs.txt")"; exit 1 ;;
esac
timing rootfs-ready "$(since "$T")"
sed 's/^/OBS   the cached rootfs was built with /' "$ROOTFS/.cronplus-e2e-built"

# One e2e per machine at a time: nspawn without a host systemd puts every container in the same
# cgroups (payload, supervisor).
exec 8>"$CACHE/run.lock"
flock -w 600 8 || { fail "another e2e run holds $CACHE/run.lock"; exit 1; }
WORK=$(mktemp -d /var/tmp/cronplus-e2e.XXXXXX)
ROOT=$WORK/root

T=$(now)
cp -a "$ROOTFS" "$ROOT"
timing rootfs-copy "$(since "$T")"

# ---------------------------------------------------------------------------- wheels (host)
# Built from a copy of the checkout (tracked and new files, as they are now), so nothing is
# written into it; dependencies are fetched for the container's Python, then installed there
# with the network off.
T=$(now)
PY=python3
[ -x "$SRC/.venv/bin/python" ] && PY=$SRC/.venv/bin/python
CPY=""                       # the container's python3 version, e.g. 3.11
for p in "$ROOT"/usr/bin/python3.[0-9]*; do [[ $p =~ python(3\.[0-9]+)$ ]] && CPY=${BASH_REMATCH[1]}; done
mkdir -p "$WORK/src" "$ROOT/opt/wheels"
git -C "$SRC" ls-files -z -co --exclude-standard | tar -C "$SRC" --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$WORK/src" -xf -
if ! { "$PY" -m pip wheel -q --no-deps --wheel-dir "$ROOT/opt/wheels" "$WORK/src" &&
       "$PY" -m pip download -q --only-binary=:all: --python-version "$CPY" -d "$ROOT/opt/wheels" "$ROOT"/opt/wheels/cronplus-*.whl; } >"$OUT/wheels.log" 2>&1; then
  fail "build the cronplus wheel and fetch its dependencies for python $CPY: $(tail -1 "$OUT/wheels.log")"
  exit 1
fi
timing wheels "$(since "$T")"
mkdir -p "$ROOT/root/e2e"
cp "$HERE/crontab.in" "$HERE/bob-crontab.in" "$ROOT/root/e2e/"

# ---------------------------------------------------------------------------- boot + install
T=$(now)
if boot; then pass "systemd booted as PID 1 of the container: $(cx systemctl --version | head -1)"
else fail "boot the container (see $OUT/nspawn.log)"; exit 1; fi
timing boot "$(since "$T")"
failed_units=$(cx systemctl list-units --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')
[ -z "$failed_units" ] || obs "failed units in the container (not cronplus's): $failed_units"
expect "the container has no network but lo" test "$(cx ls /sys/class/net)" = lo

T=$(now)
cx bash -c 'python3 -m venv /opt/venv && /opt/venv/bin/pip install -q --no-index --find-links /opt/wheels cronplus &&
  ln -sf /opt/venv/bin/cronplus /usr/local/bin/cronplus && useradd -m -s /bin/bash bob' >"$OUT/pip-install.log" 2>&1
expect "offline pip install of cronplus into /opt/venv" cx test -x /opt/venv/bin/cronplus
timing install "$(since "$T")"
T_CHECKS=$(now)

# The newest run of a job as "STATUS TRIGGER EXIT_CODE ended|not-ended", from
# `cronplus log --json` on stdin.
newest_run() {
  python3 -c '
import json, sys
rows = [json.loads(line) for line in sys.stdin if line.strip()]
if rows:
    r = rows[-1]
    print(r["status"], r["trigger"], r["exit_code"], "ended" if r["ended_at"] else "not-ended")'
}
system_run() { cx cronplus log --json -n 1 "$@" | newest_run; }
bob_run() { bob "cronplus log --json -n 1 $*" | newest_run; }
# Predicates for expect and retry (which run them again and again, so no "$(...)" arguments).
is() { [ "$("${@:2}")" = "$1" ]; }                       # is WANT COMMAND...: COMMAND prints WANT
status_starts() { [[ "$(svc StatusText)" == "$1"* ]]; }   # the unit's STATUS= text starts with $1
restarted_since() { [ "$(svc NRestarts)" -gt "$1" ] && [ "$(cx systemctl is-active cronplus)" = active ]; }
runs_of() { cx cronplus log --json -n all "$1" 2>/dev/null | python3 -c 'import sys; print(sum(1 for l in sys.stdin if l.strip()))'; }
boot_lines() { cx sh -c "wc -l < $1" 2>/dev/null || echo 0; }
JOBS=$(grep -c '^# cronplus: name=' "$HERE/crontab.in")

# ---------------------------------------------------------------------------- 1. install-service
cx cronplus install /root/e2e/crontab.in >"$OUT/install.txt" 2>&1
cx cronplus install-service >"$OUT/install-service.txt" 2>&1; rc=$?
expect "cronplus install-service exits 0 (system unit)" test "$rc" = 0
expect "it wrote /etc/systemd/system/cronplus.service" cx test -s /etc/systemd/system/cronplus.service
expect "systemctl is-active cronplus: active" test "$(cx systemctl is-active cronplus)" = active
expect "systemctl is-enabled cronplus: enabled" test "$(cx systemctl is-enabled cronplus)" = enabled
expect "the unit runs /usr/local/bin/cronplus run" grep -q "^ExecStart=/usr/local/bin/cronplus run$" "$ROOT/etc/systemd/system/cronplus.service"
expect "@reboot ran once at the first start in this boot" retry 15 is 1 boot_lines /var/tmp/boot.log

# ---------------------------------------------------------------------------- 2. the user unit
cx loginctl enable-linger bob
expect "loginctl enable-linger bob: user@1000.service active" retry 20 is active cx systemctl is-active user@1000.service
cp "$HERE/bob-crontab.in" "$ROOT/home/bob/crontab.in"
cx chown bob: /home/bob/crontab.in
bob_login 'cd && cronplus install crontab.in && cronplus install-service --user && echo INSTALLED' >"$OUT/user-install.txt" 2>&1
expect "cronplus install-service --user (as bob, in a login session)" grep -q INSTALLED "$OUT/user-install.txt"
expect "bob's cronplus.service: active under his user manager" test "$(bob 'systemctl --user is-active cronplus')" = active
user_pid=$(bob 'systemctl --user show cronplus -p MainPID --value')
expect "bob's supervisor runs as uid 1000" test "$(cx awk '/^Uid:/ {print $2}' "/proc/$user_pid/status")" = 1000
expect "bob's @reboot ran once" retry 15 is 1 boot_lines /home/bob/reboot.log

# ---------------------------------------------------------------------------- 3. verify
v=$(cx systemd-analyze verify /etc/systemd/system/cronplus.service 2>&1); rc=$?
echo "$v" >"$OUT/verify-system.txt"
expect "systemd-analyze verify: the installed system unit (exit 0, no warning)" test "$rc:$v" = "0:"
v=$(bob 'systemd-analyze --user verify ~/.config/systemd/user/cronplus.service' 2>&1); rc=$?
echo "$v" >"$OUT/verify-user.txt"
expect "systemd-analyze --user verify: bob's installed user unit (exit 0, no warning)" test "$rc:$v" = "0:"

# ---------------------------------------------------------------------------- 4. STATUS=
expect "StatusText: '$(svc StatusText)' starts '$JOBS jobs, 0 running'" status_starts "$JOBS jobs, 0 running,"
cx systemctl status cronplus --no-pager -n 0 >"$OUT/status.txt" 2>&1
expect "systemctl status shows it: Status: \"$JOBS jobs, ...\"" grep -q "Status: \"$JOBS jobs, 0 running" "$OUT/status.txt"
cx cronplus trigger long >/dev/null 2>&1
expect "StatusText counts a running job: '$JOBS jobs, 1 running'" retry 10 status_starts "$JOBS jobs, 1 running"

# ---------------------------------------------------------------------------- 5. stop while a job runs
expect "long is running before the stop" is "running manual None not-ended" system_run long
T=$(now)
cx systemctl stop cronplus; rc=$?
timing stop-with-a-running-job "$(since "$T")"
expect "systemctl stop exits 0" test "$rc" = 0
expect "the supervisor ended by itself before TimeoutStopSec (Result=success)" test "$(svc Result)" = success
row=$(system_run long)
expect "the running job is recorded: interrupted, with an end time ($row)" grep -q "^interrupted manual .* ended$" <<<"$row"
expect "no job process left in the container" test "$(cx pgrep -c -x sleep)" = 0
cx systemctl start cronplus
expect "started again: active" test "$(cx systemctl is-active cronplus)" = active

# ---------------------------------------------------------------------------- 6. reload ok
cx cp /etc/cronplus/crontab /root/e2e/crontab.good
cx sh -c 'printf "# cronplus: name=added\n0 0 1 1 *  root  echo added\n" >> /etc/cronplus/crontab'
cx systemctl reload cronplus 2>>"$OUT/checks.log"; rc=$?
expect "reload after a good edit: systemctl reload exits 0" test "$rc" = 0
expect "reload ok: the added job runs (cronplus trigger added --wait)" retry 10 cx cronplus trigger added --wait
expect "reload ok: StatusText counts $((JOBS + 1)) jobs" status_starts "$((JOBS + 1)) jobs,"
cx cp /etc/cronplus/crontab /root/e2e/crontab.good

# ---------------------------------------------------------------------------- 7. reload refused
MP=$(svc MainPID)
T_BAD=$(cx date +%s)
cx sh -c 'echo "61 * * * *  root  echo minute 61" >> /etc/cronplus/crontab'
cx systemctl reload cronplus 2>>"$OUT/checks.log"; rc=$?
# Needs ExecReload= to run `cronplus reload`, which waits for the supervisor's answer: with
# ExecReload=/bin/kill -HUP the reload is asynchronous and systemctl cannot know it was refused.
expect "reload after a bad edit: systemctl reload exits non-zero (got $rc)" test "$rc" != 0
sleep 1
expect "reload refused: the same supervisor keeps running" test "$(cx systemctl is-active cronplus):$(svc MainPID)" = "active:$MP"
expect "reload refused: the old crontab stays in effect (StatusText: $((JOBS + 1)) jobs)" status_starts "$((JOBS + 1)) jobs,"
expect "reload refused: the old crontab stays in effect (the added job still runs)" cx cronplus trigger added --wait
cx cp /root/e2e/crontab.good /etc/cronplus/crontab
cx systemctl reload cronplus 2>>"$OUT/checks.log"

# ---------------------------------------------------------------------------- 8. journald priorities
cx cronplus trigger fails --wait >/dev/null 2>&1
sleep 1
cx journalctl -u cronplus -p err --since=@"$T_BAD" --no-pager -o cat >"$OUT/journal-err.txt" 2>&1
cx journalctl -u cronplus -p warning --no-pager -o cat >"$OUT/journal-warning.txt" 2>&1
cx journalctl -u cronplus -p info --no-pager -o cat >"$OUT/journal-info.txt" 2>&1
cx journalctl -t cronplus --no-pager -o json >"$OUT/journal.json" 2>&1
expect "journalctl -p err: the config error ('reload refused' ... minute 61)" grep -q "reload refused.*61" "$OUT/journal-err.txt"
expect "journalctl -p warning: not the 'reload ok' lines (info)" bash -c "! grep -q 'reload ok' '$OUT/journal-warning.txt' && grep -q 'reload ok' '$OUT/journal-info.txt'"
expect "the journal gets no raw '<N>' prefixes" bash -c "! grep -q '\"MESSAGE\":\"<[0-9]>' '$OUT/journal.json'"
expect "SyslogFacility=cron reaches the journal (SYSLOG_FACILITY=9)" grep -q '"SYSLOG_FACILITY":"9"' "$OUT/journal.json"
failed_line="job fails: run [0-9]* failed"
if grep -q "$failed_line" "$OUT/journal-warning.txt"; then
  pass "journalctl -p warning: the failed job's line ('$failed_line')"
elif grep -q "$failed_line" "$OUT/journal-info.txt"; then
  gap "a failed job is logged at info, so journalctl -p warning does not show it ('$(grep -m1 "$failed_line" "$OUT/journal-info.txt")'; issue 10)"
else
  fail "the failed job's line ('$failed_line') is in the journal at all"
fi

# ---------------------------------------------------------------------------- 9. watchdog
MP=$(svc MainPID); NR0=$(svc NRestarts)
T=$(now); T_WD=$(cx date +%s)
cx kill -STOP "$MP"
# WatchdogSec=60s, then SIGABRT, then RestartSec=10s: give it 150 s.
retry 150 restarted_since "$NR0"
timing watchdog-freeze-to-restarted "$(since "$T")"
cx journalctl -u cronplus --since=@"$T_WD" --no-pager -o short-precise >"$OUT/watchdog.txt" 2>&1
expect "watchdog: systemd saw the frozen supervisor ('Watchdog timeout')" grep -q "Watchdog timeout" "$OUT/watchdog.txt"
expect "watchdog: restarted (NRestarts $NR0 -> $(svc NRestarts)), active, a new MainPID" \
  test "$(svc NRestarts):$(cx systemctl is-active cronplus):$([ "$(svc MainPID)" != "$MP" ] && echo new)" = "$((NR0 + 1)):active:new"

# ---------------------------------------------------------------------------- 10. scheduled runs
# The minutely jobs of both units ran on their own (they had at least a minute by now).
expect "system unit: tick ran on schedule" retry 70 is "success schedule 0 ended" system_run --status success tick
expect "user unit: bob's whoami ran on schedule" retry 70 is "success schedule 0 ended" bob_run whoami
expect "user unit: the job ran as bob, in his home" test "$(cx cat /home/bob/whoami.out | tr '\n' ' ')" = "bob /home/bob "
expect "user unit: the job's file is bob's" test "$(cx stat -c %U /home/bob/whoami.out)" = bob

# ---------------------------------------------------------------------------- 11. @reboot once per boot
cx systemctl restart cronplus
sleep 3
expect "restarts within a boot (stop/start, watchdog, restart): @reboot still ran once" test "$(boot_lines /var/tmp/boot.log)" = 1
n_runs=$(runs_of boot)
T=$(now)
if reboot_wait; then pass "the container rebooted"; else fail "the container rebooted (see $OUT/nspawn.log)"; fi
timing reboot "$(since "$T")"
expect "after the reboot: @reboot ran once more (system unit)" retry 20 is 2 boot_lines /var/tmp/boot.log
expect "after the reboot: with the new boot id" test "$(cx tail -1 /var/tmp/boot.log)" = "$(cx cat /proc/sys/kernel/random/boot_id)"
expect "after the reboot: @reboot ran once more (bob's lingering user unit)" retry 20 is 2 boot_lines /home/bob/reboot.log
sleep 3
expect "after the reboot: one new @reboot run in the history, not more" test "$(runs_of boot)" = $((n_runs + 1))

timing checks "$(since "$T_CHECKS")"
exit $((FAILED > 0))
