"""The node-side half of the dead-man switch: POSIX sh, sent over the transport on every call.

Two scripts, both plain constants (no package data to lose in a wheel):

- :data:`WATCH_SH`, the watchdog. ``arm`` writes it to ``<dir>/watch.sh`` and starts it
  detached (``sh <dir>/watch.sh <dir> <poll_s> <lease>``). It polls the node's monotonic
  clock (``/proc/uptime``, centiseconds, read without a fork) against ``<dir>/deadline``
  every ``poll_s``; at the deadline it takes the lease's lock, checks again, marks the lease
  ``fired`` and runs ``<dir>/revert`` once, logging its status and output.
- :data:`OPS_SH`, the operations osha calls (``arm``, ``renew``, ``disarm``, ``status``),
  each one line of machine-readable answer first (``armed PID DEADLINE_CS NOW_CS`` ...),
  then, for ``status`` and ``disarm``, the tail of the log.

The lock is ``flock`` on ``<dir>/lock``: a kernel lock, released when its holder dies, so a
renew or disarm cut off mid-way (osha killed, network cut) never wedges the watchdog. Under
the lock, ``fired`` (the watchdog) and the removal of ``deadline`` (disarm) exclude each
other, so the revert runs at most once and never after a disarm; a renew under the lock
either moves the deadline before the watchdog's check or finds ``fired`` and says so.
"""

from __future__ import annotations

__all__ = ["OPS_SH", "WATCH_SH"]

# Runs as: sh <dir>/watch.sh <dir> <poll_s> <lease>, stdin /dev/null, stdout+stderr -> log.
WATCH_SH = r"""
dir=$1 poll=$2 lease=$3
trap '' HUP INT
log() {
  printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >> "$dir/log"
  if command -v logger >/dev/null 2>&1; then logger -t osha-deadman -- "$lease: $*"; fi
}
echo $$ > "$dir/pid.tmp" && mv -f "$dir/pid.tmp" "$dir/pid"
log "watchdog $$ started, poll ${poll}s"
while :; do
  read -r deadline 2>/dev/null < "$dir/deadline" || exit 0  # disarmed: the file is gone
  read -r up _ < /proc/uptime; now=${up%.*}${up#*.}
  if [ "$now" -ge "$deadline" ]; then
    (
      flock -x 9 || exit 2
      read -r deadline 2>/dev/null < "$dir/deadline" || exit 1  # disarmed meanwhile
      read -r up _ < /proc/uptime; now=${up%.*}${up#*.}
      [ "$now" -ge "$deadline" ] || exit 3                      # renewed meanwhile
      : > "$dir/fired"
    ) 9>> "$dir/lock"
    case $? in
      0) break ;;
      3) continue ;;
      *) exit 0 ;;
    esac
  fi
  sleep "$poll"
done
log "deadline passed (uptime ${now}cs >= ${deadline}cs): running the revert"
sh "$dir/revert" < /dev/null > "$dir/revert.out" 2>&1
rc=$?
log "revert exited with status $rc; its output follows"
cat "$dir/revert.out" >> "$dir/log"
if command -v logger >/dev/null 2>&1; then
  tail -c 2000 "$dir/revert.out" | logger -t osha-deadman
fi
echo "$rc" > "$dir/result.tmp" && mv -f "$dir/result.tmp" "$dir/result"
rm -f "$dir/deadline" "$dir/revert" "$dir/revert.out" "$dir/pid" "$dir/watch.sh"
"""

# Called as: set -- OP DIR ARGS...; then this text. Answers on stdout, first line a keyword.
OPS_SH = r"""
op=$1 dir=$2
umask 077
now() { read -r up _ < /proc/uptime; now=${up%.*}${up#*.}; }
fail() { code=$1; shift; echo "error: $*"; exit "$code"; }
alive() {
  pid=$(cat "$dir/pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\000' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$dir/watch.sh"
}
lock() {
  [ -d "$dir" ] || { echo absent; exit 0; }
  exec 9>> "$dir/lock" || fail 21 "cannot open $dir/lock; check the node's /run is writable"
  flock -x 9 || fail 21 "cannot lock $dir/lock"
}
tail_log() { echo "--- log"; tail -n 40 "$dir/log" 2>/dev/null; }
fired() {  # the deadline passed: the revert ran, runs now, or its watchdog died mid-way
  if [ -f "$dir/result" ]; then
    echo "reverted $(cat "$dir/result")"
  elif alive; then
    echo "reverting $pid"
  elif [ -f "$dir/result" ]; then  # it ended between the two checks: result is written first
    echo "reverted $(cat "$dir/result")"
  else
    echo "dead"
  fi
}
case $op in
arm)
  lease=$3 ttl=$4 poll=$5 detach=$6 unit=$7 revert=$8
  command -v flock >/dev/null 2>&1 ||
    fail 20 "flock is missing on this node; install util-linux (or busybox with flock)"
  [ -r /proc/uptime ] || fail 20 "/proc/uptime is not readable on this node; mount /proc"
  mkdir -p "$dir" || fail 21 "cannot create $dir; check the node's /run is writable"
  lock
  if [ -f "$dir/fired" ]; then
    fired
    fail 22 "lease $lease already expired on the node and its revert ran; collect it with" \
      "disarm (or osha faults recover), or arm under a new lease id"
  fi
  printf '%s\n' "$revert" > "$dir/revert.tmp" && mv -f "$dir/revert.tmp" "$dir/revert" ||
    fail 21 "cannot write $dir/revert"
  now; deadline=$((now + ttl))
  echo "$deadline" > "$dir/deadline.tmp" && mv -f "$dir/deadline.tmp" "$dir/deadline" ||
    fail 21 "cannot write $dir/deadline"
  if alive; then echo "rearmed $pid $deadline $now"; exit 0; fi
  rm -f "$dir/pid"
  cat > "$dir/watch.tmp" <<'OSHA_DEADMAN_EOF' || fail 21 "cannot write $dir/watch.sh"
@WATCH@
OSHA_DEADMAN_EOF
  mv -f "$dir/watch.tmp" "$dir/watch.sh"
  if [ "$detach" = auto ]; then
    if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then
      detach=systemd
    else
      detach=setsid
    fi
  fi
  case $detach in
  systemd)
    systemd-run --unit="$unit" --collect --quiet --property=KillMode=process \
      --description="osha dead-man switch for lease $lease" \
      sh "$dir/watch.sh" "$dir" "$poll" "$lease" < /dev/null >> "$dir/log" 2>&1 9>&- ||
      fail 23 "systemd-run could not start $unit; see $dir/log, or arm with detach=setsid"
    ;;
  setsid)
    command -v setsid >/dev/null 2>&1 || fail 20 "setsid is missing; install util-linux"
    setsid sh "$dir/watch.sh" "$dir" "$poll" "$lease" < /dev/null >> "$dir/log" 2>&1 9>&- &
    ;;
  *) fail 24 "unknown detach mode $detach" ;;
  esac
  i=0
  while [ ! -s "$dir/pid" ] && [ "$i" -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
  alive || fail 23 "the watchdog did not start ($detach); see $dir/log"
  echo "armed $pid $deadline $now $detach"
  ;;
renew)
  ttl=$3
  lock
  if [ -f "$dir/fired" ]; then fired; exit 0; fi
  [ -f "$dir/deadline" ] || { echo absent; exit 0; }
  alive || { echo dead; exit 0; }
  now; deadline=$((now + ttl))
  echo "$deadline" > "$dir/deadline.tmp" && mv -f "$dir/deadline.tmp" "$dir/deadline" ||
    fail 21 "cannot write $dir/deadline"
  echo "renewed $pid $deadline $now"
  ;;
disarm)
  lock
  if [ -f "$dir/fired" ]; then
    # the files go only with a "reverted" answer: one that said "reverting" and then found
    # the result written meanwhile would leave the next call nothing but "absent"
    answer=$(fired); echo "$answer"; tail_log
    case $answer in reverted*) rm -rf "$dir" ;; esac
    exit 0
  fi
  rm -f "$dir/deadline"
  if alive; then kill -TERM "$pid" 2>/dev/null; fi
  if command -v logger >/dev/null 2>&1; then
    logger -t osha-deadman -- "$(basename "$dir"): disarmed"
  fi
  echo disarmed
  rm -rf "$dir"
  ;;
status)
  [ -d "$dir" ] || { echo absent; exit 0; }
  if [ -f "$dir/fired" ]; then
    fired
  elif ! read -r deadline 2>/dev/null < "$dir/deadline"; then
    echo absent
  else
    now
    if alive; then echo "armed $pid $deadline $now"; else echo "dead - $deadline $now"; fi
  fi
  tail_log
  ;;
*) fail 24 "unknown operation $op" ;;
esac
""".replace("@WATCH@", WATCH_SH.strip("\n"))
