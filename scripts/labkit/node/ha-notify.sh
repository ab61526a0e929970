#!/bin/sh
# Ground truth of the HA topology's cluster mechanisms, one events.log line each:
#   Galera's wsrep_notify_cmd (run by mysqld as user mysql):
#     --status S [--uuid U] [--primary yes|no] [--index I] [--members uuid/name/addr,...]
#     -> EPOCH galera NODE status=S primary=yes|no size=N members=ctl-1,ctl-2
#   keepalived's notify: `ha-notify.sh vrrp INSTANCE VI_1 STATE PRIORITY`
#     -> EPOCH vrrp VI_1 state=MASTER|BACKUP|FAULT|STOP priority=P
# The file is $LAB_DIR/nodes/NODE/events.log; this script lives in $LAB_DIR/kit/labkit/node.
now=$(date +%s.%N)
node=$(hostname)
lab_dir=$(cd "$(dirname "$0")/../../.." && pwd)
events=$lab_dir/nodes/$node/events.log
if [ "${1:-}" = vrrp ]; then
    echo "$now vrrp $3 state=$4 priority=$5" >>"$events"
    exit 0
fi
status='' primary='' members=''
while [ $# -gt 0 ]; do
    case $1 in
        --status) status=$2; shift ;;
        --primary) primary=$2; shift ;;
        --members) members=$2; shift ;;
        --uuid | --index) shift ;;
    esac
    shift
done
# the member's state for its HAProxy agent (node/galera-agent.py)
[ -n "$status" ] && echo "$status" >"$lab_dir/data/galera/$node/state"
names=$(echo "$members" | tr ',' '\n' | cut -d/ -f2 | grep -v '^$' | paste -sd, -)
size=$(echo "$names" | tr ',' '\n' | grep -c . || true)
echo "$now galera $node status=$status primary=${primary:-unknown} size=$size members=${names:--}" >>"$events"
exit 0
