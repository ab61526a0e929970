# shellcheck shell=bash
# What "healthy" means for the lab. `up` and `reset` wait for it and `status` reports it,
# with the same checks:
#   1. the BMC emulator runs, and every node is powered on (its PID 1 runs);
#   2. every node's sshd completes a full SSH login (key exchange, host key check, public
#      key auth) and runs a command: a TCP connect alone is not enough;
#   3. every runit service of every node is running (`sv status`: run), and every container
#      is running (not paused, exited or restarting);
#   4. the cloud agrees (cloud.py): every nova service is up and every neutron agent alive,
#      each with a heartbeat newer than the start of its current process (the node's
#      events.log), so a process that just restarted is not judged by its predecessor's
#      heartbeat; every hypervisor is listed, and the image and placement APIs answer.
# Sourced.

# node_problems: one line per problem with power, SSH, services or containers (none: healthy).
node_problems() {
    local node out line c state dir
    pid_from "$RUN/bmc.pid" >/dev/null || echo "bmc: not running"
    for node in "${NODES[@]}"; do
        node_running "$node" || { echo "$node: powered off"; continue; }
        dir=$(node_dir "$node")/service
        # `; exit 0`: only a failed login fails ssh (sv reports its own problems as text)
        if ! out=$(node_ssh "$node" "sv status $dir/*; exit 0" 2>&1); then
            echo "$node: no SSH login ($(tail -1 <<<"${out:-no answer}"))"
            continue
        fi
        while IFS= read -r line; do
            case $line in run:*) ;; *) echo "$node: ${line//$dir\//}" | cut -d';' -f1 ;; esac
        done <<<"$out"
        for c in $(node_containers "$node"); do
            state=$(node_ssh "$node" docker inspect -f "'{{.State.Status}}'" "$c" 2>&1) || state="unknown: $state"
            [ "$state" = running ] || echo "$node: container $c $(tail -1 <<<"$state")"
        done
    done
    ha_problems # the HA topology's clusters (lib/ha_cluster.sh; nothing otherwise)
}

# cloud_health TIMEOUT_S: cloud.py's wait, with each node's events file for the start times.
cloud_health() { LAB_NODES_DIR=$LAB_DIR/nodes cloud_py wait-healthy "$1"; }

# wait_healthy TIMEOUT_S: wait until the lab is healthy (see the top of this file); print
# what is missing while waiting. 1 if it is not healthy within TIMEOUT_S.
wait_healthy() {
    local timeout_s=$1 deadline problems last="" i left
    deadline=$((SECONDS + timeout_s))
    for ((i = 0; i <= timeout_s + 1; i++)); do # bounded: each pass takes at least a second
        problems=$(node_problems)
        if [ -z "$problems" ]; then
            left=$((deadline - SECONDS))
            ((left > 0)) || left=0
            cloud_health "$left" || return 1
            # the nodes again: nothing may have failed while the cloud caught up
            problems=$(node_problems)
            [ -z "$problems" ] && return 0
        fi
        [ "$problems" = "$last" ] || echo "  waiting: $(paste -sd';' <<<"$problems" | sed 's/;/; /g')"
        last=$problems
        if ((SECONDS >= deadline)); then
            echo "lab: not healthy after ${timeout_s}s: $(paste -sd';' <<<"$problems" | sed 's/;/; /g')" >&2
            return 1
        fi
        sleep 1
    done
    return 1
}
