#!/bin/bash
# Entry point of the lab's OpenStack containers (kolla style): wait for what the service
# needs, record the ground-truth start event, then exec the service as the container's PID 1.
# usage: container-entry.sh LAB_DIR EVENTS_FILE CONTAINER SERVICE CMD...
set -euo pipefail
LAB_DIR=$1 EVENTS=$2 container=$3 service=$4
shift 4
export PYTHONWARNINGS=ignore::DeprecationWarning LANG=C.UTF-8
source "$(dirname "$0")/svc-lib.sh"
svc_gate catalog
svc_wait_tcp "${LAB_CTL_IP:?}" 5672
echo "$(date +%s.%N) start $service pid=$$ container=$container" >>"$EVENTS"
exec "$@"
