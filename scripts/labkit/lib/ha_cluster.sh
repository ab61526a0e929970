# shellcheck shell=bash
# The HA topology's clusters at run time: Galera bootstrap and recovery, what "healthy"
# adds (Galera, RabbitMQ, VIP, HAProxy backends), and `status`. Sourced after ha.sh; every
# function is a no-op in the default topology.

# galera_sql NODE SQL: root over the member's unix socket (AF_UNIX path sockets are not
# namespace-scoped, so this works from the machine).
galera_sql() { mariadb --defaults-file="$(galera_cnf "$1")" -uroot -N -B --connect-timeout=3 -e "$2" 2>/dev/null; }
galera_status() { galera_sql "$1" "SHOW STATUS LIKE 'wsrep_$2'" | awk '{print $2}'; }
galera_running() { pgrep -f "^/usr/sbin/mariadbd --defaults-file=$(galera_cnf "$1")( |\$)" >/dev/null; }
# galera_member [Synced]: the first member in a Primary component (and Synced, if asked)
galera_member() {
    local n
    for n in "${CONTROLLERS[@]}"; do
        [ "$(galera_status "$n" cluster_status)" = Primary ] || continue
        [ -z "${1:-}" ] || [ "$(galera_status "$n" local_state_comment)" = "$1" ] || continue
        echo "$n"
        return 0
    done
    return 1
}

# ha_galera_hold: before the nodes power on, when no member runs (a cold start), hold every
# member's mariadb service until ha_galera_ensure chose who bootstraps.
ha_galera_hold() {
    ha_on || return 0
    local n
    for n in "${CONTROLLERS[@]}"; do galera_running "$n" && return 0; done
    for n in "${CONTROLLERS[@]}"; do touch "$STATE/galera-hold-$n"; done
}

# ha_galera_init: the first member's data directory (the others fill theirs by SST).
ha_galera_init() {
    local d n
    for n in "${CONTROLLERS[@]}"; do [ -d "$(galera_dir "$n")/data/mysql" ] && return 0; done
    d=$(galera_dir "${CONTROLLERS[0]}")
    log "galera: initialising ${CONTROLLERS[0]}'s data directory"
    mariadb-install-db --defaults-file="$(galera_cnf "${CONTROLLERS[0]}")" --user=mysql \
        --auth-root-authentication-method=normal >"$LOGS/mariadb-install.log" 2>&1 ||
        die "mariadb-install-db failed" "see $LOGS/mariadb-install.log"
    chown -R mysql:mysql "$d"
}

# How long running members get to form a Primary component on their own before
# ha_galera_ensure takes over: members that runit restarted after a quorum loss re-merge
# (Galera's pc.recovery) about 7 s after their start (stop 32). Taking over meanwhile
# stopped a joiner in the middle of its IST, which ignored SIGTERM until runit's KILL 40 s
# later, and `lab reset` failed ("cannot stop the Galera member").
GALERA_REFORM_S=30

# ha_galera_ensure: make sure a Primary component exists. If none does (a cold start, every
# node was off, the whole cluster was killed), hold every member, read each one's last
# committed position (--wsrep-recover), and bootstrap from the most advanced one (ties: the
# one marked safe_to_bootstrap, then the first); the others then join by IST.
ha_galera_ensure() {
    ha_on || return 0
    local n p seq best='' best_seq=-2 safe pos running=0
    ha_galera_init
    for n in "${CONTROLLERS[@]}"; do galera_running "$n" && running=1; done
    if galera_member >/dev/null || { ((running)) &&
        wait_until "$GALERA_REFORM_S" 0.5 "running Galera members to form a Primary component" galera_member >/dev/null; }; then
        rm -f "$STATE"/galera-hold-*
        return 0
    fi
    log "galera: no Primary component; recovering the most advanced member"
    for n in "${CONTROLLERS[@]}"; do touch "$STATE/galera-hold-$n"; done
    for n in "${CONTROLLERS[@]}"; do
        galera_running "$n" || continue
        # past -w, sv KILLs the member and exits non-zero: a failure only if it still runs
        node_ssh "$n" "sv -w 40 force-restart $(node_dir "$n")/service/mariadb" >/dev/null ||
            ! galera_running "$n" || die "cannot stop the Galera member on $n" "see $LOGS/$n/mariadb.err"
    done
    for n in "${CONTROLLERS[@]}"; do
        wait_until 40 0.2 "mariadb on $n to stop" eval "! galera_running $n" || die "mariadb on $n does not stop"
    done
    for n in "${CONTROLLERS[@]}"; do
        [ -d "$(galera_dir "$n")/data/mysql" ] || continue
        : >"$(galera_dir "$n")/recover.err"
        chown mysql: "$(galera_dir "$n")/recover.err"
        /usr/sbin/mariadbd --defaults-file="$(galera_cnf "$n")" --wsrep-recover \
            --log-error="$(galera_dir "$n")/recover.err" >/dev/null 2>&1 || true
        pos=$(sed -n 's/.*Recovered position: *\([0-9a-f-]*:-\{0,1\}[0-9]*\).*/\1/p' "$(galera_dir "$n")/recover.err" | tail -1)
        seq=${pos##*:}
        safe=$(sed -n 's/^safe_to_bootstrap: *//p' "$(galera_dir "$n")/data/grastate.dat" 2>/dev/null || true)
        log "galera: $n recovered position ${pos:-none} safe_to_bootstrap=${safe:-?}"
        [[ $seq =~ ^-?[0-9]+$ ]] || seq=-1
        if ((seq > best_seq)) || { ((seq == best_seq)) && [ "$safe" = 1 ]; }; then
            best=$n best_seq=$seq p=$pos
        fi
    done
    [ -n "$best" ] || die "no Galera member has data" "scripts/lab down --purge, then up"
    log "galera: bootstrapping from $best (seqno $best_seq)"
    echo "$p" >"$STATE/galera-bootstrap-$best"
    rm -f "$STATE/galera-hold-$best"
    wait_until 120 0.5 "$best to form a Primary component" eval "[ \"\$(galera_status $best cluster_status)\" = Primary ]" ||
        die "Galera did not bootstrap on $best" "see $LOGS/$best/mariadb.err"
    rm -f "$STATE"/galera-hold-*
}

# galera_all_synced: every member Synced, in a Primary component of all of them
galera_all_synced() {
    local n
    for n in "${CONTROLLERS[@]}"; do
        [ "$(galera_status "$n" local_state_comment)" = Synced ] &&
            [ "$(galera_status "$n" cluster_size)" = ${#CONTROLLERS[@]} ] || return 1
    done
}

# ha_mysql_cnf: a Synced member's client config, for init.sh's mysql_root. It waits for
# every member: an empty member joins by SST, its donor leaves Synced, HAProxy (the member's
# galera-agent) marks the donor DOWN and shuts its sessions; a bare `lab up` lost keystone's
# db_sync that way (stop 32: "Lost connection to MySQL server during query", the second
# ctl-1 became ctl-3's donor). Joined before the databases exist, the SSTs take seconds.
ha_mysql_cnf() {
    local n
    wait_until 120 0.5 "every Galera member Synced" galera_all_synced || die "the Galera members are not all Synced" \
        "see $LOGS/ctl-*/mariadb.err; scripts/lab status"
    n=$(galera_member Synced)
    galera_cnf "$n"
}

# http_answers HOST PORT PATH: an HTTP answer below 500 (bash's /dev/tcp, bounded)
http_answers() {
    timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$3" "$1" >&3 &&
        head -1 <&3 | grep -q "^HTTP/1.[01] [234]"' _ "$@" 2>/dev/null
}

# ha_wait_keystone: keystone answers on the VIP (HAProxy marks a server UP only after its
# HTTP checks pass, a few seconds after uWSGI listens)
ha_wait_keystone() {
    ha_on || return 0
    wait_until 120 0.5 "keystone on the VIP" http_answers "$VIP" 5000 /v3 || die "keystone does not answer on $VIP" \
        "see $LOGS/ctl-*/keystone.log; scripts/lab status"
}

# No `ip ... | grep -q` here: under pipefail that pipeline fails whenever grep exits at its
# match while ip still writes the next line (ip writes a line at a time; SIGPIPE, 141). The
# VIP's line comes before eth0's inet6 line, so a holder went unlisted about 7 times in 10:
# `lab reset` then restarted no keepalived and gave up "the VIP does not move" (stop 33).
vip_holders() {
    local n addrs
    for n in "${CONTROLLERS[@]}"; do
        addrs=$(ip -n "$(netns_of "$n")" -o addr show dev eth0 2>/dev/null) || continue
        [[ $addrs == *" $VIP/"* ]] && echo "$n"
    done
    return 0
}

# ha_vip_home: the VIP on the first controller again. keepalived runs with nopreempt, so
# after a failover the VIP stays where it went; restarting keepalived on the holder sends a
# priority-0 advert, and the highest-priority backup (the first controller) takes over.
ha_vip_home() {
    ha_on || return 0
    local home=${CONTROLLERS[0]} n attempt
    wait_until 60 0.5 "keepalived on $home" pgrep -f "^/usr/sbin/keepalived .*-f $ETC/$home-keepalived.conf" >/dev/null ||
        die "keepalived does not run on $home" "see $LOGS/$home/keepalived.log"
    for attempt in 1 2 3; do
        [ "$(vip_holders | paste -sd, -)" = "$home" ] && return 0
        for n in $(vip_holders); do
            [ "$n" = "$home" ] && continue
            log "vip: $VIP on $n; restarting its keepalived to hand it back to $home (attempt $attempt)"
            node_ssh "$n" "sv restart $(node_dir "$n")/service/keepalived" >/dev/null || die "cannot restart keepalived on $n"
        done
        wait_until 10 0.2 "the VIP on $home" eval "[ \"\$(vip_holders | paste -sd, -)\" = $home ]" && return 0
    done
    die "the VIP does not move to $home" "scripts/lab status; see $LOGS/ctl-*/keepalived.log"
}

# haproxy_servers NODE: "proxy/server status" of every server HAProxy on NODE checks.
haproxy_servers() {
    echo "show stat" | socat -t 2 - "UNIX-CONNECT:$(haproxy_dir "$1")/stats.sock" 2>/dev/null |
        awk -F, '$1 !~ /^#/ && $2 != "FRONTEND" && $2 != "BACKEND" && NF > 17 {print $1 "/" $2, $18}'
}

# ha_problems: one line per problem of the clusters (none: healthy). Cheap enough for
# wait_healthy's one-second loop: sockets and addresses, no rabbitmqctl.
ha_problems() {
    ha_on || return 0
    local n holders state size bad
    for n in "${CONTROLLERS[@]}"; do node_running "$n" || return 0; done # node_problems says it
    holders=$(vip_holders | paste -sd, -)
    [ "$holders" = "${CONTROLLERS[0]}" ] || echo "vip: $VIP held by ${holders:-no controller} (want ${CONTROLLERS[0]})"
    for n in "${CONTROLLERS[@]}"; do
        state=$(galera_status "$n" local_state_comment)
        size=$(galera_status "$n" cluster_size)
        [ "$state" = Synced ] && [ "$size" = ${#CONTROLLERS[@]} ] ||
            echo "galera: $n ${state:-not answering} size ${size:-?}"
        tcp_open "${NODE_IP[$n]}" 5672 || echo "rabbitmq: $n not listening"
        bad=$(haproxy_servers "$n" | awk '$2 != "UP" {print $1 " " $2}' | paste -sd, -)
        [ -z "$bad" ] || echo "haproxy on $n: $bad"
        [ -n "$(haproxy_servers "$n")" ] || echo "haproxy on $n: no stats"
    done
}

# rabbit_running_nodes NODE: the cluster's running members as NODE's member sees them.
rabbit_running_nodes() {
    node_ssh "$1" "$ETC/rabbitmq/rabbitmqctl -q cluster_status --formatter json" 2>/dev/null |
        "$LAB_PYTHON" -c 'import json, sys; print(",".join(sorted(json.load(sys.stdin)["running_nodes"])))' 2>/dev/null
}

# ha_wait_rabbit TIMEOUT_S: all members running in one cluster (checked once at the end of
# up/reset: rabbitmqctl costs a second of CPU).
ha_wait_rabbit() {
    ha_on || return 0
    local want
    want=$(for n in "${CONTROLLERS[@]}"; do echo "rabbit@$n"; done | sort | paste -sd, -)
    wait_until "$1" 2 "RabbitMQ to run $want" eval "[ \"\$(rabbit_running_nodes ${CONTROLLERS[0]})\" = '$want' ]" ||
        return 1
}

ha_status() {
    ha_on || return 0
    local n
    echo "ha: topology ha, VIP $VIP held by $(vip_holders | paste -sd, - | sed 's/^$/nobody/')"
    for n in "${CONTROLLERS[@]}"; do
        echo "    galera $n: $(galera_status "$n" local_state_comment || true) $(galera_status "$n" cluster_status || true)" \
            "size $(galera_status "$n" cluster_size || true)"
    done
    for n in "${CONTROLLERS[@]}"; do
        node_running "$n" && { echo "    rabbitmq as $n sees it: $(rabbit_running_nodes "$n" || echo 'no answer')"; break; }
    done
    for n in "${CONTROLLERS[@]}"; do
        echo "    haproxy $n: $(haproxy_servers "$n" | awk '$2 != "UP"' | paste -sd, - | sed 's/^$/all servers UP/')"
    done
}
