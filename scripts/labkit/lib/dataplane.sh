# shellcheck shell=bash
# The data plane (opt-in): servers that answer on a tenant network. Sourced after common.sh.
#
# `OSHA_LAB_DATA_PLANE=1 scripts/lab up` selects it; lab.json records the choice, and later
# commands read it back (as the instance). Without it the lab is exactly what it was: the fake
# driver, no tenant bridge, no hypervisor service. With it:
#   - the machine has a tenant bridge oshatenN with an address ($TENANT_HOST) for osha;
#   - each compute node has a tenant link (host side vt[N]-NODE on that bridge, eth1 in the
#     node) enslaved to a bridge br-tenant inside the node, as a hypervisor's datapath;
#   - each compute node runs lab-hypervisor (node/hypervisor.py), which starts guests on
#     br-tenant, and nova-compute uses the lab driver (virt/, nova.virt.osha_lab) with
#     resume_guests_state_on_host_boot;
#   - neutron has tenant-net ($TENANT_NET.0/24, admin project, not shared: Rally's users and
#     an unnamed network keep seeing only shared-net).
# A power-off takes the node's tenant link down with its management link; reset brings both up.

# dp_recorded: 1 or 0 as lab.json records the data plane, empty when it records nothing.
dp_recorded() {
    [ -r "$LAB_DIR/lab.json" ] || return 0
    "$LAB_PYTHON" -c 'import json, sys
dp = json.load(open(sys.argv[1])).get("data_plane")
print("" if dp is None else int(bool(dp.get("enabled"))))' "$LAB_DIR/lab.json" 2>/dev/null || true
}
DP_RECORDED=$(dp_recorded)
DATA_PLANE=${OSHA_LAB_DATA_PLANE:-${DP_RECORDED:-0}}
[[ $DATA_PLANE =~ ^[01]$ ]] || {
    echo "lab: error: OSHA_LAB_DATA_PLANE='$DATA_PLANE' is not 0 or 1" >&2
    exit 2
}
COMPUTES=(cmp-1 cmp-2)
TENANT_BRIDGE=oshaten$LAB_INSTANCE
TENANT_NET=10.$((231 + LAB_INSTANCE)).1
TENANT_HOST=$TENANT_NET.1
TENANT_NETWORK=tenant-net
NODE_TENANT_BRIDGE=br-tenant
NODE_TENANT_LINK=eth1
GUEST_TCP_PORT=80
if [ "$LAB_INSTANCE" = 0 ]; then TVETH_PREFIX=vt-; else TVETH_PREFIX=vt$LAB_INSTANCE-; fi

dp_on() { [ "$DATA_PLANE" = 1 ]; }
tveth_of() { echo "$TVETH_PREFIX$1"; }
is_compute() { [[ " ${COMPUTES[*]} " == *" $1 "* ]]; }
hypervisor_socket() { echo "$DATA/$1/hypervisor.sock"; }

# dp_check_switch: switching the data plane on or off needs the nodes off (nova-compute
# reads its driver at start, and the venv gains the driver). A lab.json without the key is a
# lab from before the data plane: off.
dp_check_switch() {
    [ "${DP_RECORDED:-0}" != "$DATA_PLANE" ] && lab_running &&
        die "the lab runs with OSHA_LAB_DATA_PLANE=${DP_RECORDED:-0}, not $DATA_PLANE" \
            "scripts/lab down, then OSHA_LAB_DATA_PLANE=$DATA_PLANE scripts/lab up"
    return 0
}

# dp_install: the lab driver into the services venv (pip, as the no-op ML2 driver), when
# its source changed.
dp_install() {
    dp_on || return 0
    local stamp
    stamp=$(cd "$LABKIT/virt" && find pyproject.toml nova -name '*.py' -o -name '*.toml' | sort | xargs cat | sha256sum | cut -c1-16)
    [ "$(cat "$VENV/.osha-virt" 2>/dev/null)" = "$stamp" ] && return 0
    log "pip: installing the lab virt driver (nova.virt.osha_lab) into the services venv"
    "$VENV/bin/pip" install -q --no-cache-dir --no-deps "$LABKIT/virt" >>"$LOGS/pip.log" 2>&1 ||
        die "pip install of the lab virt driver failed" "see $LOGS/pip.log"
    echo "$stamp" >"$VENV/.osha-virt"
}

dp_net_up() {
    dp_on || return 0
    bridge_up "$TENANT_BRIDGE" "$TENANT_HOST/24" # lib/nodes.sh, as the management bridge
    local node ns veth
    for node in "${COMPUTES[@]}"; do
        ns=$(netns_of "$node") veth=$(tveth_of "$node")
        if ! ip link show "$veth" >/dev/null 2>&1; then
            ip link add "$veth" type veth peer name "$NODE_TENANT_LINK" netns "$ns"
            ip link set "$veth" master "$TENANT_BRIDGE"
        fi
        ip -n "$ns" link show "$NODE_TENANT_BRIDGE" >/dev/null 2>&1 ||
            ip -n "$ns" link add "$NODE_TENANT_BRIDGE" type bridge
        ip -n "$ns" link set "$NODE_TENANT_LINK" master "$NODE_TENANT_BRIDGE"
        ip -n "$ns" link set "$NODE_TENANT_LINK" up
        ip -n "$ns" link set "$NODE_TENANT_BRIDGE" up
        # the host side follows the node's power (power_on / power_off)
        node_running "$node" && ip link set "$veth" up
    done
    return 0
}

# dp_net_down: remove the tenant links and bridge (whether or not the data plane is on: a
# lab switched off keeps none of it).
dp_net_down() {
    local node
    for node in "${COMPUTES[@]}"; do ip link del "$(tveth_of "$node")" 2>/dev/null || true; done
    ip link del "$TENANT_BRIDGE" 2>/dev/null || true
}

# dp_link NODE up|down: the node's tenant link, host side (a no-op without the data plane).
dp_link() {
    dp_on && is_compute "$1" || return 0
    ip link set "$(tveth_of "$1")" "$2" 2>/dev/null || true
}

# dp_net_reset NODE: undo a link-down of the node's tenant link (both ends).
dp_net_reset() {
    dp_on && is_compute "$1" || return 0
    ip -n "$(netns_of "$1")" link set "$NODE_TENANT_LINK" up 2>/dev/null || true
    ip -n "$(netns_of "$1")" link set "$NODE_TENANT_BRIDGE" up 2>/dev/null || true
    dp_link "$1" up
}

# dp_write_configs: the compute nodes' nova config selects the lab driver.
dp_write_configs() {
    dp_on || return 0
    local node
    for node in "${COMPUTES[@]}"; do
        cat >>"$ETC/nova/nova-$node.conf" <<EOF
# the data plane (OSHA_LAB_DATA_PLANE=1): servers are guests on the tenant network
compute_driver = osha_lab.LabDriver
resume_guests_state_on_host_boot = true
[osha_lab]
hypervisor_socket = $(hypervisor_socket "$node")
EOF
    done
}

# dp_write_services: lab-hypervisor on each compute node (outside cmp-2's containers, as
# libvirtd would be).
dp_write_services() {
    local node python
    for node in "${COMPUTES[@]}"; do
        if ! dp_on; then
            rm -rf "$(node_dir "$node")/service/lab-hypervisor"
            continue
        fi
        # the machine's own python (stdlib only; the node shares its /usr), not a pyenv shim
        python=$(command -v /usr/bin/python3 || command -v python3)
        svc "$node" lab-hypervisor "" "$python $KIT/labkit/node/hypervisor.py serve $(hypervisor_socket "$node") \
--events $(node_dir "$node")/events.log --bridge $NODE_TENANT_BRIDGE --state /run/osha-guests --tcp-port $GUEST_TCP_PORT"
    done
}

dp_init_network() {
    dp_on || return 0
    run_logged resources cloud_py tenant-network "$TENANT_NETWORK" "$TENANT_NET.0/24" "$TENANT_HOST"
}

# dp_outputs_env: the environment outputs.py reads for lab.json's data_plane section.
dp_outputs_env() {
    echo "LAB_DATA_PLANE=$DATA_PLANE LAB_TENANT_BRIDGE=$TENANT_BRIDGE LAB_TENANT_SUBNET=$TENANT_NET.0/24" \
        "LAB_TENANT_HOST=$TENANT_HOST LAB_TENANT_NETWORK=$TENANT_NETWORK LAB_TVETH_PREFIX=$TVETH_PREFIX" \
        "LAB_NODE_TENANT_BRIDGE=$NODE_TENANT_BRIDGE LAB_NODE_TENANT_LINK=$NODE_TENANT_LINK" \
        "LAB_GUEST_TCP_PORT=$GUEST_TCP_PORT LAB_COMPUTES=$(IFS=,; echo "${COMPUTES[*]}")"
}

# The compute nodes' service lists (lib/services.sh, sourced before this file) name the
# hypervisor, so lab.json and the health check count it.
if dp_on; then
    NODE_SERVICES_cmp_1="$NODE_SERVICES_cmp_1 lab-hypervisor"
    NODE_SERVICES_cmp_2="$NODE_SERVICES_cmp_2 lab-hypervisor"
fi
