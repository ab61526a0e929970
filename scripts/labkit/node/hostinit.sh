#!/bin/bash
# PID 1 of a lab node. powerctl.sh starts it inside the node's network namespace with
# `unshare --pid --fork --mount-proc --uts --kill-child`, so it owns a PID namespace, a
# private mount namespace and a host name. Killing it (power-off) kills the whole node.
# usage: hostinit.sh LAB_DIR NODE
set -uo pipefail # no -e: PID 1 carries on past an optional step that fails
[ $$ -eq 1 ] || { echo "hostinit: must be PID 1 of a new PID namespace" >&2; exit 1; }
LAB_DIR=$1 NODE=$2
LABKIT=$(cd "$(dirname "$0")/.." && pwd)
D=$LAB_DIR/nodes/$NODE

hostname "$NODE"
mount -t tmpfs -o mode=755 tmpfs /run # private /run: pid files, sshd, docker.sock
mkdir -p /run/sshd /run/lock
mount --bind "$LABKIT/shims" /usr/local/sbin # systemctl/reboot/poweroff shims, first in PATH
mount --bind "$D/hostname" /etc/hostname
mount --bind "$LAB_DIR/etc/hosts" /etc/hosts
# The machine's /root/.bashrc runs `pyenv init` (+80 ms per SSH command). Shadow the dot files
# only: the services' python lives under /root/.pyenv.
for f in .bashrc .profile; do
    [ -e "/root/$f" ] && mount --bind "$D/root/$f" "/root/$f"
done
# A fresh boot id per boot, so that "did it reboot?" checks work as on hardware.
boot_id=$(cat /proc/sys/kernel/random/uuid)
echo "$boot_id" >"$D/boot_id"
mount --bind "$D/boot_id" /proc/sys/kernel/random/boot_id
# Never let anything in a node reach the machine's real magic SysRq.
[ -e /proc/sysrq-trigger ] && mount --bind "$D/sysrq" /proc/sysrq-trigger
# `ip netns exec` mounted a fresh /sys without cgroups; dockerd needs them back.
[ -s "$D/cgroup-mounts" ] && mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
while read -r path type opts; do
    mkdir -p "$path" && mount -t "$type" -o "$opts" cgroup "$path"
done <"$D/cgroup-mounts"

echo "$(date +%s.%N) boot $NODE boot_id=$boot_id" >>"$D/events.log"
echo "$D/service" >/run/svdir
env -i PATH="$PATH" runsvdir -P "$D/service" 'log: ................................................................' &
/usr/sbin/sshd -D -e -f "$D/sshd_config" >>"$LAB_DIR/logs/$NODE/sshd.log" 2>&1 &

trap 'exit 0' TERM
while :; do # PID 1 duties: reap orphans (bash does on SIGCHLD), honour the fake SysRq
    if [ -s "$D/sysrq" ]; then
        c=$(head -c1 "$D/sysrq")
        : >"$D/sysrq"
        case "$c" in b) busybox reboot -f ;; o) busybox poweroff -f ;; esac
    fi
    sleep 1 &
    wait $!
done
