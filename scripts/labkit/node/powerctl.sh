#!/bin/bash
# The power supply of one lab node, in the machine's namespaces. Boots the node, boots it
# again after an in-node reboot (reboot(2) in a child PID namespace ends its init with
# SIGHUP: rc 129), and otherwise leaves it off: 130 = in-node poweroff, 137 = killed from
# outside (a hard power-off).
# usage: powerctl.sh LAB_DIR NODE NETNS   (started by scripts/lab with setsid; pid in power.pid)
set -uo pipefail
LAB_DIR=$1 NODE=$2 NETNS=$3
LABKIT=$(cd "$(dirname "$0")/.." && pwd)
D=$LAB_DIR/nodes/$NODE
echo $$ >"$D/power.pid"
awk '$3 == "cgroup" || $3 == "cgroup2" {print $2, $3, $4}' /proc/self/mounts >"$D/cgroup-mounts"
for ((boots = 0; boots < 100000; boots++)); do
    [ -e "$D/off" ] && break
    ip netns exec "$NETNS" unshare --pid --fork --mount-proc --uts --kill-child \
        "$LABKIT/node/hostinit.sh" "$LAB_DIR" "$NODE" >>"$LAB_DIR/logs/$NODE/init.log" 2>&1 </dev/null &
    echo $! >"$D/unshare.pid"
    wait $!
    rc=$?
    echo "$(date +%s.%N) halt $NODE rc=$rc" >>"$D/events.log"
    [ $rc -eq 129 ] || break
done
rm -f "$D/power.pid" "$D/unshare.pid"
