# shellcheck shell=bash
# shellcheck disable=SC2034 # settings used by the other sourced files
# Shared settings and helpers for scripts/lab. Sourced, never run.

LABKIT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_PYTHON=${OSHA_LAB_PYTHON:-python3}

# lab_json_instance FILE: the instance number a lab.json records (empty if none).
lab_json_instance() {
    [ -r "$1" ] || return 0
    sed -n 's/^ *"instance": *\([0-9][0-9]*\),\{0,1\}$/\1/p' "$1" | head -1
}

# Instance: several labs side by side on one machine. OSHA_LAB_INSTANCE=N (default 0, or
# what $OSHA_LAB_DIR/lab.json records) selects every machine-wide name: the directory, the
# bridge and subnet, the namespace and veth prefixes, the BMC ports, the owner file and the
# cgroup prefix. Instance 0 keeps the names the lab always had.
_recorded=
[ -n "${OSHA_LAB_DIR:-}" ] && _recorded=$(lab_json_instance "$OSHA_LAB_DIR/lab.json")
LAB_INSTANCE=${OSHA_LAB_INSTANCE:-${_recorded:-0}}
[[ $LAB_INSTANCE =~ ^([0-9]|1[0-9]|2[0-3])$ ]] || {
    echo "lab: error: OSHA_LAB_INSTANCE='$LAB_INSTANCE' is not an instance number" >&2
    echo "lab: hint: use 0 (the default lab) to 23" >&2
    exit 2
}
if [ "$LAB_INSTANCE" = 0 ]; then
    LAB_DIR=${OSHA_LAB_DIR:-/var/lib/osha-lab}
    NETNS_PREFIX=osha- VETH_PREFIX=vo- CGROUP_PREFIX=osha-lab- LAB_OWNER_FILE=/run/osha-lab.owner
else
    LAB_DIR=${OSHA_LAB_DIR:-/var/lib/osha-lab-$LAB_INSTANCE}
    NETNS_PREFIX=osha$LAB_INSTANCE- VETH_PREFIX=vo$LAB_INSTANCE- CGROUP_PREFIX=osha-lab$LAB_INSTANCE-
    LAB_OWNER_FILE=/run/osha-lab-$LAB_INSTANCE.owner
fi
if [ -n "$_recorded" ] && [ "$_recorded" != "$LAB_INSTANCE" ]; then
    echo "lab: error: $LAB_DIR holds lab instance $_recorded, not OSHA_LAB_INSTANCE=$LAB_INSTANCE" >&2
    echo "lab: hint: OSHA_LAB_INSTANCE=$_recorded OSHA_LAB_DIR=$LAB_DIR scripts/lab ..." >&2
    exit 2
fi
unset _recorded

# Topology. One /24 on a bridge that only the lab uses; nodes get no default
# route, so nothing in a node can send a packet anywhere but this subnet.
LAB_BRIDGE=oshalab$LAB_INSTANCE
LAB_NET=10.$((231 + LAB_INSTANCE)).0
LAB_GW=$LAB_NET.1
BMC_PORT_BASE=$((6230 + 10 * LAB_INSTANCE))
NODES=(ctl-1 ctl-2 cmp-1 cmp-2)
declare -A NODE_IP=([ctl-1]=$LAB_NET.11 [ctl-2]=$LAB_NET.12 [cmp-1]=$LAB_NET.21 [cmp-2]=$LAB_NET.22)
declare -A NODE_BMC_PORT=([ctl-1]=$BMC_PORT_BASE [ctl-2]=$((BMC_PORT_BASE + 1))
    [cmp-1]=$((BMC_PORT_BASE + 2)) [cmp-2]=$((BMC_PORT_BASE + 3)))
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
netns_of() { echo "$NETNS_PREFIX$1"; }
veth_of() { echo "$VETH_PREFIX$1"; }   # host side of the node's eth0

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
    # "$LAB_DIR/" or "$LAB_DIR ": /var/lib/osha-lab must not claim /var/lib/osha-lab-1's pids
    [ -n "$p" ] && alive "$p" && { tr '\0' ' ' <"/proc/$p/cmdline"; echo; } 2>/dev/null |
        grep -qF -e "$LAB_DIR/" -e "$LAB_DIR " && echo "$p"
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
