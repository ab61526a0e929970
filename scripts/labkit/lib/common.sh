# shellcheck shell=bash
# shellcheck disable=SC2034 # settings used by the other sourced files
# Shared settings and helpers for scripts/lab. Sourced, never run.

LAB_DIR=${OSHA_LAB_DIR:-/var/lib/osha-lab}
LABKIT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_PYTHON=${OSHA_LAB_PYTHON:-python3}

# Topology. One /24 on a bridge that only the lab uses; nodes get no default
# route, so nothing in a node can send a packet anywhere but this subnet.
LAB_BRIDGE=oshalab0
LAB_NET=10.231.0
LAB_GW=$LAB_NET.1
NODES=(ctl-1 ctl-2 cmp-1 cmp-2)
declare -A NODE_IP=([ctl-1]=$LAB_NET.11 [ctl-2]=$LAB_NET.12 [cmp-1]=$LAB_NET.21 [cmp-2]=$LAB_NET.22)
declare -A NODE_BMC_PORT=([ctl-1]=6230 [ctl-2]=6231 [cmp-1]=6232 [cmp-2]=6233)
CTL_IP=${NODE_IP[ctl-1]}

# Liveness settings, short so that tests stay fast.
REPORT_INTERVAL_S=2
SERVICE_DOWN_TIME_S=10
AGENT_DOWN_TIME_S=10
RPC_RESPONSE_TIMEOUT_S=15

VENV=$LAB_DIR/venv            # OpenStack services
RALLY_VENV=$LAB_DIR/rally-venv
TOOLS_VENV=$LAB_DIR/tools-venv  # BMC emulator (pyghmi)
ETC=$LAB_DIR/etc
DATA=$LAB_DIR/data
LOGS=$LAB_DIR/logs
RUN=$LAB_DIR/run
STATE=$LAB_DIR/state
SSH_KEY=$LAB_DIR/id_ed25519
KNOWN_HOSTS=$LAB_DIR/known_hosts

_T0=${_T0:-$(date +%s.%N)}
export _T0

# log MESSAGE: progress line with wall clock and seconds since the command began.
log() {
    local now
    now=$(date +%s.%N)
    printf '[%s +%6.1fs] %s\n' "$(date +%H:%M:%S)" "$(awk -v a="$now" -v b="$_T0" 'BEGIN{print a-b}')" "$*"
}
# die MESSAGE [HINT]: one-line error on stderr, then exit 1.
die() {
    echo "lab: error: $1" >&2
    [ -n "${2:-}" ] && echo "lab: hint: $2" >&2
    exit 1
}
node_dir() { echo "$LAB_DIR/nodes/$1"; }
netns_of() { echo "osha-$1"; }
veth_of() { echo "vo-$1"; }   # host side of the node's eth0

is_node() {
    local n
    for n in "${NODES[@]}"; do [ "$n" = "$1" ] && return 0; done
    return 1
}

# alive PID: true if PID exists and is not a zombie (this VM's PID 1 reaps orphans
# only every second or two, so a zombie counts as dead).
alive() {
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}
# pid_from FILE: print the pid in FILE if that process is alive and is still one of the
# lab's (its command line names this lab's directory), so a recycled pid never counts.
pid_from() {
    local p
    p=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$p" ] && alive "$p" && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$LAB_DIR" && echo "$p"
}

# wait_until TIMEOUT_S STEP_S DESCRIPTION CMD...: poll CMD, bounded in time and count.
wait_until() {
    local timeout_s=$1 step_s=$2 what=$3 i n
    shift 3
    n=$(awk -v a="$timeout_s" -v b="$step_s" 'BEGIN{printf "%d", a/b}')
    for ((i = 0; i <= n; i++)); do
        "$@" && return 0
        sleep "$step_s"
    done
    echo "lab: timed out after ${timeout_s}s waiting for $what" >&2
    return 1
}
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# node_ssh NODE CMD: run CMD on NODE as root over real SSH with host key checking.
node_ssh() {
    local node=$1
    shift
    ssh -q -i "$SSH_KEY" -o BatchMode=yes -o UserKnownHostsFile="$KNOWN_HOSTS" \
        -o StrictHostKeyChecking=yes -o ConnectTimeout=5 -o LogLevel=ERROR \
        "root@${NODE_IP[$node]}" "$@"
}
