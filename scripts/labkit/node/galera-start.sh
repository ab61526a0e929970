#!/bin/bash
# A MariaDB Galera member of the HA topology (exec'd by its runit run script, so mysqld
# keeps the run script's pid). usage: galera-start.sh LAB_DIR NODE
#   - a bootstrap order (state/galera-bootstrap-NODE, written by `scripts/lab up` or `reset`
#     when no member is Primary, with the most advanced member's recovered position) is
#     consumed: this member starts a new Primary component from that position;
#   - otherwise, after a crash (grastate.dat seqno -1) the position comes from
#     --wsrep-recover, so the member rejoins by IST instead of a full SST (what
#     galera_recovery does under systemd);
#   - an empty data directory joins by SST (rsync) from a donor.
set -euo pipefail
LAB_DIR=$1 NODE=$2
CNF=$LAB_DIR/etc/mysql/$NODE.cnf
G=$LAB_DIR/data/galera/$NODE
ORDER=$LAB_DIR/state/galera-bootstrap-$NODE
args=()

# recovered_position: uuid:seqno from InnoDB (a fraction of a second; mysqld does not listen)
recovered_position() {
    : >"$G/recover.err"
    chown mysql: "$G/recover.err"
    /usr/sbin/mariadbd --defaults-file="$CNF" --wsrep-recover --log-error="$G/recover.err" >/dev/null 2>&1 || true
    sed -n 's/.*Recovered position: *\([0-9a-f-]*:-\{0,1\}[0-9]*\).*/\1/p' "$G/recover.err" | tail -1
}

if [ -e "$ORDER" ]; then
    pos=$(cat "$ORDER")
    rm -f "$ORDER" # one bootstrap per order: a restart by runit joins the cluster it formed
    sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' "$G/data/grastate.dat" 2>/dev/null || true
    args+=(--wsrep-new-cluster)
    # without the start position the new cluster gets a new state UUID: every joiner needs SST
    [ -n "$pos" ] && [ "${pos##*:}" != -1 ] && args+=("--wsrep-start-position=$pos")
    echo "$(date +%T) galera: bootstrapping a new Primary component at ${pos:-the initial state}"
elif [ -d "$G/data/mysql" ] && grep -q '^seqno: *-1' "$G/data/grastate.dat" 2>/dev/null; then
    pos=$(recovered_position)
    [ -n "$pos" ] && [ "${pos##*:}" != -1 ] && args+=("--wsrep-start-position=$pos")
    echo "$(date +%T) galera: rejoining from the recovered position ${pos:-(none)}"
fi
echo starting >"$G/state" # node/galera-agent.py: not Synced until wsrep_notify_cmd says so
chown mysql: "$G/state"
exec /usr/sbin/mariadbd --defaults-file="$CNF" "${args[@]}"
