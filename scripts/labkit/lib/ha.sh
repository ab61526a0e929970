# shellcheck shell=bash
# shellcheck disable=SC2034 # settings used by the other sourced files
# The HA topology (opt-in, issue 12): three controllers behind one virtual IP. Sourced last,
# after every other lib file: when the topology is `ha` it adds ctl-3 and overrides the
# addresses the configs use; otherwise it changes nothing.
#
# `OSHA_LAB_TOPOLOGY=ha scripts/lab up` selects it; lab.json records the choice and later
# commands read it back (as the data plane). Every difference is guarded by `ha_on`.
#   ctl-1, ctl-2: a MariaDB Galera member, a RabbitMQ cluster member, memcached, HAProxy,
#                 keepalived, and the APIs active/active (keystone, placement, glance,
#                 nova-api, neutron-server), nova-conductor, nova-scheduler, neutron RPC;
#   ctl-3:        the quorum controller: Galera, RabbitMQ, memcached, HAProxy, keepalived.
# The VIP (.10 of the instance's subnet) is held by keepalived (VRRPv3, unicast); HAProxy on
# every controller listens on it for each API and for MariaDB (one writer, the others backup).
# Node-side pieces: node/galera-start.sh, node/ha-notify.sh, node/haproxy-events.py.

# ha_recorded: the topology lab.json records ("default" for a lab.json without the key).
ha_recorded() {
    [ -r "$LAB_DIR/lab.json" ] || return 0
    "$LAB_PYTHON" -c 'import json, sys
print(json.load(open(sys.argv[1])).get("topology", "default"))' "$LAB_DIR/lab.json" 2>/dev/null || true
}
TOPOLOGY_RECORDED=$(ha_recorded)
TOPOLOGY=${OSHA_LAB_TOPOLOGY:-${TOPOLOGY_RECORDED:-default}}
[[ $TOPOLOGY =~ ^(default|ha)$ ]] || {
    echo "lab: error: OSHA_LAB_TOPOLOGY='$TOPOLOGY' is not a topology" >&2
    echo "lab: hint: use default or ha" >&2
    exit 2
}
ha_on() { [ "$TOPOLOGY" = ha ]; }

VIP=$LAB_NET.10
CONTROLLERS=(ctl-1 ctl-2 ctl-3)
# VRRP: VRRPv3 allows a fractional advert_int; a backup takes over after 3 missed adverts
# plus its skew (about 0.35 s at 0.1 s).
VRRP_ADVERT_INT_S=0.1
VRRP_ROUTER_ID=$((51 + LAB_INSTANCE))
declare -A VRRP_PRIORITY=([ctl-1]=150 [ctl-2]=100 [ctl-3]=50)
# HAProxy health checks: a server is DOWN after `fall` failed checks `fastinter` apart once
# the first failed (at most inter + fall * fastinter = 1.5 s after it died).
HAPROXY_INTER_MS=1000 HAPROXY_FASTINTER_MS=250 HAPROXY_FALL=2 HAPROXY_RISE=2
# a request sent to a server that lost power waits this long, then goes to another server
# (a live server's kernel answers a connect in well under a millisecond, loaded or not)
HAPROXY_TIMEOUT_CONNECT_MS=200
# Galera: a silent member is suspected after evs.suspect_timeout (default 5 s)
GALERA_SUSPECT_TIMEOUT_S=3
RABBIT_NET_TICKTIME_S=10
# TCP keepalive in every node: an idle connection is probed after TCP_KEEPALIVE_TIME_S, then
# every TCP_KEEPALIVE_INTVL_S, and dropped after TCP_KEEPALIVE_PROBES unanswered (ha_net_up)
TCP_KEEPALIVE_TIME_S=10 TCP_KEEPALIVE_INTVL_S=2 TCP_KEEPALIVE_PROBES=3
# name port: the APIs HAProxy serves on the VIP
HA_APIS=("keystone 5000" "placement-api 8778" "glance-api 9292" "nova-api 8774" "neutron-api 9696")
MEMCACHED_PORT=11211
GALERA_AGENT_PORT=4569 # kolla's clustercheck port

ha_check_switch() {
    [ "${TOPOLOGY_RECORDED:-default}" != "$TOPOLOGY" ] && lab_running &&
        die "the lab runs the ${TOPOLOGY_RECORDED:-default} topology, not $TOPOLOGY" \
            "scripts/lab down, then OSHA_LAB_TOPOLOGY=$TOPOLOGY scripts/lab up"
    if [ -n "$TOPOLOGY_RECORDED" ] && [ "$TOPOLOGY_RECORDED" != "$TOPOLOGY" ]; then
        # the other topology's cloud lives in another database: initialise this one's
        log "topology: switching from $TOPOLOGY_RECORDED to $TOPOLOGY; the cloud is initialised again"
        rm -f "$STATE"/*-ready
        "$RALLY_VENV/bin/rally" --config-file "$ETC/rally/rally.conf" env delete --env lab --force \
            >>"$LOGS/init-rally.log" 2>&1 || true
    fi
    return 0
}

# What the configs and services use; the HA topology overrides them below.
API_NODES=(ctl-1)   # nodes running the APIs
API_IP=$CTL_IP      # where clients reach the APIs (clouds.yaml, the catalog)
DB_HOST=$CTL_IP     # where the services reach MariaDB
MEMCACHED_SERVERS=
# API-level routers in both topologies (issue 12: Rally's network context creates one per
# network); no L3 agent runs, as there is no data plane for it to plumb
NEUTRON_SERVICE_PLUGINS=router

# Everything below applies to the HA topology only.
if ha_on; then
    API_NODES=(ctl-1 ctl-2)
    NODES=(ctl-1 ctl-2 ctl-3 cmp-1 cmp-2)
    NODE_IP[ctl-3]=$LAB_NET.13
    NODE_BMC_PORT[ctl-3]=$((BMC_PORT_BASE + 4)) # after cmp-2's: the other nodes keep theirs
    API_IP=$VIP
    DB_HOST=$VIP
    DB_URL="mysql+pymysql://os:os@$VIP"
    # a reply that never comes (a commit in flight when the VIP moved, seen: nova-conductor's
    # heartbeat blocked in recv for good) is an error after 60 s, and oslo.db reconnects
    DB_Q="?charset=utf8mb4&read_timeout=60&write_timeout=60"
    RABBIT_URL="rabbit://$(for n in "${CONTROLLERS[@]}"; do printf 'guest:guest@%s:5672,' "${NODE_IP[$n]}"; done)"
    RABBIT_URL="${RABBIT_URL%,}/"
    KEYSTONE_URL="http://$VIP:5000/v3"
    MEMCACHED_SERVERS=$(for n in "${CONTROLLERS[@]}"; do printf '%s:%s,' "${NODE_IP[$n]}" $MEMCACHED_PORT; done)
    MEMCACHED_SERVERS=${MEMCACHED_SERVERS%,}
    _infra="mariadb galera-agent epmd rabbitmq-server memcached haproxy-events haproxy keepalived"
    _apis="keystone placement-api glance-api nova-api nova-conductor nova-scheduler neutron-api neutron-rpc-server"
    NODE_SERVICES_ctl_1="$_infra $_apis neutron-dhcp-agent neutron-metadata-agent"
    NODE_SERVICES_ctl_2="$_infra $_apis"
    NODE_SERVICES_ctl_3="$_infra"
    unset _infra _apis
fi

# ha_install: Galera, keepalived and HAProxy (apt). memcached and its Python client are in
# both topologies (install.sh: APT_PACKAGES, install_memcache_client).
HA_APT_PACKAGES=(galera-4 rsync keepalived haproxy memcached)
ha_install() {
    ha_on || return 0
    APT_PACKAGES=("${HA_APT_PACKAGES[@]}")
    install_apt
}

galera_dir() { echo "$DATA/galera/$1"; }
galera_cnf() { echo "$ETC/mysql/$1.cnf"; }
haproxy_dir() { echo "$DATA/$1/haproxy"; }
rabbit_env() { echo "$ETC/rabbitmq/env-$1.sh"; }

# ha_rpc_conf NODE: neutron-rpc-server's last config file (its host and log file)
ha_rpc_conf() { if ha_on; then echo "$ETC/neutron/rpc-$1.conf"; else echo "$ETC/neutron/rpc.conf"; fi; }

# ha_ini FILE NODE: the uWSGI ini of an API on NODE (FILE itself in the default topology).
ha_ini() { if ha_on; then echo "${1%.ini}-$2.ini"; else echo "$1"; fi; }

# ha_write_configs: per-controller configs of Galera, RabbitMQ, keepalived and HAProxy,
# and per-API-node copies of the uWSGI inis (their own address and log directory).
ha_write_configs() {
    ha_on || return 0
    local node ip
    ha_write_api_configs
    mkdir -p "$DATA/galera" "$DATA/rabbitmq-home"
    : >"$ETC/rabbitmq/rabbitmq-env.conf"
    for node in "${CONTROLLERS[@]}"; do
        ip=${NODE_IP[$node]}
        mkdir -p "$LOGS/$node/rabbitmq" "$DATA/rabbitmq-$node" "$(haproxy_dir "$node")" "$(galera_dir "$node")"/{data,run,tmp}
        chown -R mysql:mysql "$(galera_dir "$node")"
        touch "$LOGS/$node/mariadb.err"
        chown mysql "$LOGS/$node/mariadb.err"
        ha_galera_cnf "$node" >"$(galera_cnf "$node")"
        chmod 644 "$(galera_cnf "$node")"
        ha_rabbit_conf "$node" >"$ETC/rabbitmq/$node.conf"
        cat >"$(rabbit_env "$node")" <<EOF
# RabbitMQ member rabbit@$node (the HA topology). RUNNING_UNDER_SYSTEMD: the script execs
# erl, so runit supervises beam.smp itself, not a shell between.
export HOME=$DATA/rabbitmq-home RUNNING_UNDER_SYSTEMD=1
export RABBITMQ_NODENAME=rabbit@$node RABBITMQ_NODE_IP_ADDRESS=$ip RABBITMQ_NODE_PORT=5672
export RABBITMQ_CONFIG_FILE=$ETC/rabbitmq/$node.conf RABBITMQ_ENABLED_PLUGINS_FILE=$ETC/rabbitmq/enabled_plugins
export RABBITMQ_CONF_ENV_FILE=$ETC/rabbitmq/rabbitmq-env.conf
export RABBITMQ_MNESIA_BASE=$DATA/rabbitmq-$node RABBITMQ_LOG_BASE=$LOGS/$node/rabbitmq
export ERL_EPMD_PORT=4369 RABBITMQ_DIST_PORT=25672
# no busy-waiting schedulers: three brokers share two cores with the whole lab
export RABBITMQ_SCHEDULER_BUSY_WAIT_THRESHOLD=none
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none"
EOF
        ha_keepalived_conf "$node" >"$ETC/$node-keepalived.conf"
        ha_haproxy_cfg "$node" >"$ETC/$node-haproxy.cfg"
    done
    # the members' shared Erlang cookie (rabbitmqctl reads it from the same HOME)
    [ -s "$DATA/rabbitmq-home/.erlang.cookie" ] ||
        (umask 077 && head -c 15 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$DATA/rabbitmq-home/.erlang.cookie")
    chmod 400 "$DATA/rabbitmq-home/.erlang.cookie"
    # rabbitmqctl inside a controller talks to that controller's member, or to the first
    # other member that listens while its own one starts (a node's boot, a killed broker)
    cat >"$ETC/rabbitmq/rabbitmqctl" <<EOF
#!/bin/bash
. $ETC/rabbitmq/env-\$(hostname).sh
for n in \$(hostname) ${CONTROLLERS[*]}; do
    (exec 3<>"/dev/tcp/\$n/5672") 2>/dev/null && exec /usr/lib/rabbitmq/bin/rabbitmqctl -n "rabbit@\$n" "\$@"
done
exec /usr/lib/rabbitmq/bin/rabbitmqctl "\$@"
EOF
}

# ha_write_api_configs: the APIs log through uWSGI (logto, per node) instead of a shared
# log_file; each API node's uWSGI ini binds its own address and reads its own host file.
ha_write_api_configs() {
    local node ip f
    sed -i '/^log_file = .*\/ctl-1\/\(keystone\|placement-api\|glance-api\)\.log$/d; /^worker_self_reference_url = /d' \
        "$ETC/keystone/keystone.conf" "$ETC/placement/placement.conf" "$ETC/glance/glance-api.conf"
    for node in "${API_NODES[@]}"; do
        ip=${NODE_IP[$node]}
        printf '[DEFAULT]\nhost = %s\nlog_file = %s/%s/neutron-api.log\n' "$node" "$LOGS" "$node" >"$ETC/neutron/api-$node.conf"
        printf '[DEFAULT]\nlog_file = %s/%s/nova-api.log\n' "$LOGS" "$node" >"$ETC/nova/nova-api-$node.conf"
        printf '[DEFAULT]\nhost = %s\nlog_file = %s/%s/neutron-rpc-server.log\n' "$node" "$LOGS" "$node" >"$ETC/neutron/rpc-$node.conf"
        for f in keystone/uwsgi placement/uwsgi glance/uwsgi nova/uwsgi-api neutron/uwsgi; do
            sed -e "s|^http-socket = $CTL_IP:|http-socket = $ip:|; s|^logto = $LOGS/ctl-1/|logto = $LOGS/$node/|" \
                -e "s|nova-ctl-1.conf;nova-api.conf|nova-$node.conf;nova-api-$node.conf|; s|;api.conf\$|;api-$node.conf|" \
                "$ETC/$f.ini" >"$ETC/$f-$node.ini"
            # a killed master takes its workers with it: an orphaned worker keeps accepting on
            # the inherited socket and hangs what it accepts (seen: a 2 s probe timeout)
            echo "no-orphans = true" >>"$ETC/$f-$node.ini"
        done
    done
}

ha_galera_cnf() {
    local node=$1 d addrs n
    d=$(galera_dir "$node")
    addrs=$(for n in "${CONTROLLERS[@]}"; do printf '%s,' "${NODE_IP[$n]}"; done)
    cat <<EOF
# MariaDB Galera member $node (generated by scripts/lab; the HA topology)
[mysqld]
user = mysql
datadir = $d/data
socket = $d/run/mysqld.sock
pid-file = $d/run/mysqld.pid
tmpdir = $d/tmp
log-error = $LOGS/$node/mariadb.err
bind-address = ${NODE_IP[$node]}
port = 3306
skip-name-resolve
max_connections = 500
performance_schema = OFF
# lab-only speed: a small pool, no fsync per commit (Galera's copies are the durability)
innodb_buffer_pool_size = 64M
innodb_log_file_size = 16M
innodb_flush_log_at_trx_commit = 0
innodb_doublewrite = 0
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2
wsrep_on = ON
wsrep_provider = /usr/lib/galera/libgalera_smm.so
wsrep_cluster_name = osha-lab-$LAB_INSTANCE
wsrep_cluster_address = gcomm://${addrs%,}
wsrep_node_address = ${NODE_IP[$node]}
wsrep_node_name = $node
# rsync SST works because mysqld runs as user mysql (the joiner's rsync daemon keeps it)
wsrep_sst_method = rsync
# a silent member is evicted after the suspect timeout (default 5 s)
wsrep_provider_options = "gcache.size=64M; evs.suspect_timeout=PT${GALERA_SUSPECT_TIMEOUT_S}S"
wsrep_notify_cmd = $KIT/labkit/node/ha-notify.sh
[client]
socket = $d/run/mysqld.sock
EOF
}

ha_rabbit_conf() {
    local node=$1 i=1 n
    cat <<EOF
listeners.tcp.default = ${NODE_IP[$node]}:5672
loopback_users = none
default_user = guest
default_pass = guest
cluster_formation.peer_discovery_backend = classic_config
EOF
    for n in "${CONTROLLERS[@]}"; do echo "cluster_formation.classic_config.nodes.$((i++)) = rabbit@$n"; done
    cat <<EOF
# the minority side of a partition stops serving (no split brain)
cluster_partition_handling = pause_minority
# a silent member is declared down after 0.75-1.25 x net_ticktime (default 60 s)
net_ticktime = $RABBIT_NET_TICKTIME_S
EOF
}

ha_keepalived_conf() {
    local node=$1 n
    cat <<EOF
# keepalived on $node (generated by scripts/lab; the HA topology)
global_defs {
    router_id $node
    enable_script_security
    script_user root
    vrrp_version 3
}
vrrp_instance VI_1 {
    state BACKUP
    # as kolla's: a controller that comes back (its services still starting) does not take
    # the VIP from the one serving it; up and reset move it home (ha_vip_home)
    nopreempt
    interface eth0
    virtual_router_id $VRRP_ROUTER_ID
    priority ${VRRP_PRIORITY[$node]}
    advert_int $VRRP_ADVERT_INT_S
    unicast_src_ip ${NODE_IP[$node]}
    # one peer a line: "unicast_peer { a b }" is mis-parsed (split brain)
    unicast_peer {
EOF
    for n in "${CONTROLLERS[@]}"; do [ "$n" = "$node" ] || echo "        ${NODE_IP[$n]}"; done
    cat <<EOF
    }
    virtual_ipaddress {
        $VIP/24 dev eth0
    }
    notify "$KIT/labkit/node/ha-notify.sh vrrp"
}
EOF
}

ha_haproxy_cfg() {
    local node=$1 d api name port n
    d=$(haproxy_dir "$node")
    cat <<EOF
# HAProxy on $node (generated by scripts/lab; the HA topology). It binds the VIP on every
# controller (ip_nonlocal_bind), so the VIP serves as soon as keepalived moves it.
global
    maxconn 4000
    nbthread 1
    stats socket $d/stats.sock mode 600 level admin
    # server state changes (notice and above) go to haproxy-events, which writes events.log
    log $d/log.sock local0 notice
defaults
    log global
    mode http
    timeout connect ${HAPROXY_TIMEOUT_CONNECT_MS}ms
    timeout client 300s
    timeout server 300s
    # a refused or timed-out connection is retried on another server
    retries 2
    option redispatch 1
    default-server check inter ${HAPROXY_INTER_MS}ms fastinter ${HAPROXY_FASTINTER_MS}ms fall $HAPROXY_FALL rise $HAPROXY_RISE
EOF
    for api in "${HA_APIS[@]}"; do
        read -r name port <<<"$api"
        printf 'listen %s\n    bind %s:%s\n    balance roundrobin\n' "$name" "$VIP" "$port"
        # a GET or HEAD that a dying server closes without an answer is retried elsewhere
        # (never another method: it could run twice)
        printf '    retry-on conn-failure empty-response junk-response\n    http-request disable-l7-retry if !METH_GET !METH_HEAD\n'
        # an HTTP check: a restarted uWSGI listens before its app is loaded, and a TCP check
        # would send it requests that hang until then (seen: a 2 s probe timeout)
        printf '    option httpchk GET /\n' 
        for n in "${API_NODES[@]}"; do echo "    server $n ${NODE_IP[$n]}:$port"; done
    done
    # one writer at a time, as kolla does: the first member, the others backups; a member
    # takes traffic only while Synced (its agent, node/galera-agent.py, kolla's clustercheck)
    printf 'listen mariadb\n    bind %s:3306\n    mode tcp\n    option tcpka\n    timeout client 3600s\n    timeout server 3600s\n' "$VIP"
    for n in "${CONTROLLERS[@]}"; do
        # a member marked DOWN has its sessions closed: pooled connections to a powered-off
        # writer would otherwise hang until TCP gives up
        echo "    server $n ${NODE_IP[$n]}:3306 agent-check agent-port $GALERA_AGENT_PORT agent-inter ${HAPROXY_INTER_MS}ms on-marked-down shutdown-sessions$(
            [ "$n" = "${CONTROLLERS[0]}" ] || echo ' backup')"
    done
}

# ha_write_infra_services: the stateful members and the load balancer on each controller.
ha_write_infra_services() {
    local node ip py
    py=$(command -v /usr/bin/python3 || command -v python3)
    for node in "${CONTROLLERS[@]}"; do
        ip=${NODE_IP[$node]}
        svc "$node" mariadb "svc_wait_absent $STATE/galera-hold-$node" \
            "$KIT/labkit/node/galera-start.sh $LAB_DIR $node"
        svc "$node" galera-agent "" "$py $KIT/labkit/node/galera-agent.py $ip $GALERA_AGENT_PORT $(galera_dir "$node")/state"
        svc "$node" epmd "" "/usr/bin/epmd -port 4369"
        svc "$node" rabbitmq-server "svc_wait_tcp 127.0.0.1 4369; source $(rabbit_env "$node")" \
            "/usr/lib/rabbitmq/bin/rabbitmq-server"
        svc "$node" memcached "" "/usr/bin/memcached -u memcache -l $ip -p $MEMCACHED_PORT -U 0 -m 64 -t 1 -c 1024"
        svc "$node" haproxy-events "" "$py $KIT/labkit/node/haproxy-events.py $(haproxy_dir "$node")/log.sock \
$(node_dir "$node")/events.log"
        svc "$node" haproxy "svc_wait_exists $(haproxy_dir "$node")/log.sock" "/usr/sbin/haproxy -db -f $ETC/$node-haproxy.cfg"
        # a keepalived killed with -9 leaves the VIP on eth0 (kernel state): drop it first
        svc "$node" keepalived "ip addr del $VIP/24 dev eth0 2>/dev/null || true" \
            "/usr/sbin/keepalived -n -l -D -P -G -f $ETC/$node-keepalived.conf -p /run/keepalived.pid -r /run/keepalived-vrrp.pid"
    done
}

# ha_net_up: a controller binds the VIP before it holds it (HAProxy on the backups). Dead TCP
# peers in seconds, not 2 h: a client on the VIP holder talks to its own HAProxy; once the VIP
# leaves the node HAProxy cannot answer (its source address is gone), and a client that sent
# its query waits in recv with nothing to send (nova's heartbeat on ctl-2 stalled for good).
# A keepalive probe reaches the new holder, whose RST ends it (10.2 s measured; as kolla).
ha_net_up() {
    ha_on || return 0
    local node
    for node in "${CONTROLLERS[@]}"; do
        ip netns exec "$(netns_of "$node")" sysctl -qw net.ipv4.ip_nonlocal_bind=1
    done
    for node in "${NODES[@]}"; do
        ip netns exec "$(netns_of "$node")" sysctl -qw net.ipv4.tcp_keepalive_time=$TCP_KEEPALIVE_TIME_S \
            net.ipv4.tcp_keepalive_intvl=$TCP_KEEPALIVE_INTVL_S net.ipv4.tcp_keepalive_probes=$TCP_KEEPALIVE_PROBES \
            net.ipv4.tcp_retries2=8
    done
}

# ha_power_off NODE: the VIP is kernel state of the namespace, which outlives the node: a
# real power-off loses it (otherwise two nodes answer ARP for it when the link returns).
ha_power_off() {
    ha_on || return 0
    ip -n "$(netns_of "$1")" addr del "$VIP/24" dev eth0 2>/dev/null || true
}

# ha_prepare_node NODE: mysqld (user mysql) writes wsrep_notify_cmd's lines to events.log.
ha_prepare_node() {
    ha_on || return 0
    case $1 in ctl-*) chgrp mysql "$(node_dir "$1")/events.log" && chmod 664 "$(node_dir "$1")/events.log" ;; esac
}

# ha_outputs_env: what outputs.py reads for lab.json's topology and ha sections.
ha_outputs_env() {
    echo "LAB_TOPOLOGY=$TOPOLOGY"
    ha_on || return 0
    echo "LAB_VIP=$VIP LAB_CONTROLLERS=$(IFS=,; echo "${CONTROLLERS[*]}") LAB_API_NODES=$(IFS=,; echo "${API_NODES[*]}")" \
        "LAB_VRRP_ADVERT_INT_S=$VRRP_ADVERT_INT_S LAB_HAPROXY_INTER_MS=$HAPROXY_INTER_MS" \
        "LAB_HAPROXY_FASTINTER_MS=$HAPROXY_FASTINTER_MS LAB_HAPROXY_FALL=$HAPROXY_FALL LAB_HAPROXY_RISE=$HAPROXY_RISE" \
        "LAB_HAPROXY_TIMEOUT_CONNECT_MS=$HAPROXY_TIMEOUT_CONNECT_MS" \
        "LAB_GALERA_SUSPECT_TIMEOUT_S=$GALERA_SUSPECT_TIMEOUT_S LAB_RABBIT_NET_TICKTIME_S=$RABBIT_NET_TICKTIME_S" \
        "LAB_TCP_KEEPALIVE_TIME_S=$TCP_KEEPALIVE_TIME_S LAB_TCP_KEEPALIVE_INTVL_S=$TCP_KEEPALIVE_INTVL_S" \
        "LAB_TCP_KEEPALIVE_PROBES=$TCP_KEEPALIVE_PROBES"
}
