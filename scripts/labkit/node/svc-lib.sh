# shellcheck shell=bash
# Helpers for the runit run scripts of lab services (sourced by them, inside a node).
# A run script waits for what its service needs, as systemd's After=/Requires= would,
# with every wait bounded; on a timeout it exits and runit tries again.

# svc_poll COUNT STEP_S MESSAGE CMD...: run CMD every STEP_S until it succeeds, at most COUNT
# times; then print MESSAGE and exit for runit to retry.
svc_poll() {
    local count=$1 step_s=$2 message=$3 i
    shift 3
    for ((i = 0; i < count; i++)); do
        "$@" && return 0
        sleep "$step_s"
    done
    echo "$(date +%T) $message"
    exit 1
}

# svc_gate STAGE: wait until `scripts/lab up` has opened STAGE (db, catalog) once.
svc_gate() { svc_poll 600 1 "gate '$1' still closed after 600 s; exiting for runit to retry" test -e "$LAB_DIR/state/$1-ready"; }

# svc_wait_tcp HOST PORT [TIMEOUT_S]
svc_wait_tcp() {
    local i n=$((${3:-120} * 4))
    for ((i = 0; i < n; i++)); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.25
    done
    echo "$(date +%T) $1:$2 not reachable after ${3:-120} s; exiting for runit to retry"
    exit 1
}

# svc_wait_tcp_any "HOST..." PORT [TIMEOUT_S]: one of the HOSTs accepts on PORT
svc_wait_tcp_any() {
    local i h n=$((${3:-120} * 2))
    for ((i = 0; i < n; i++)); do
        for h in $1; do (exec 3<>"/dev/tcp/$h/$2") 2>/dev/null && return 0; done
        sleep 0.5
    done
    echo "$(date +%T) none of $1 accepts on port $2 after ${3:-120} s; exiting for runit to retry"
    exit 1
}

# svc_wait_consumer QUEUE: wait until QUEUE has a consumer. Neutron agents that start before
# neutron-rpc-server consumes q-plugin lose their first RPC call and stall for 60 s + backoff.
svc_wait_consumer() {
    local i
    for ((i = 0; i < 60; i++)); do
        "$LAB_DIR/etc/rabbitmq/rabbitmqctl" -q list_queues name consumers 2>/dev/null |
            awk -v q="$1" '$1 == q && $2 > 0 {f = 1} END {exit !f}' && return 0
        sleep 2
    done
    echo "$(date +%T) queue $1 has no consumer after 120 s; exiting for runit to retry"
    exit 1
}

# svc_started NAME: the ground-truth "start" event, written by the process about to exec.
svc_started() {
    echo "$(date +%s.%N) start $1 pid=$$" >>"$EVENTS"
}

# svc_wait_absent FILE: wait while FILE exists (a hold that `scripts/lab` places), bounded.
svc_wait_absent() { svc_poll 600 0.5 "$1 still there after 300 s; exiting for runit to retry" test ! -e "$1"; }

# svc_wait_exists PATH: wait until PATH exists (e.g. a socket another service makes), bounded.
svc_wait_exists() { svc_poll 240 0.25 "$1 missing after 60 s; exiting for runit to retry" test -e "$1"; }
