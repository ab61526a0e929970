# shellcheck shell=bash
# One-time initialisation of the cloud (databases, catalog, resources), the kolla-style
# containers and Rally. Every step is skipped when already done. Sourced.

MYSQL_CNF=$ETC/mysql/my.cnf # the HA topology: a Synced Galera member's (ha_mysql_cnf)
mysql_root() { mariadb --defaults-file="$MYSQL_CNF" -uroot "$@"; }

init_mariadb_datadir() {
    ha_on && return 0 # ha_galera_init
    [ -d "$DATA/mysql/mysql" ] && return 0
    log "mariadb: initialising the data directory"
    mkdir -p "$DATA/mysql"
    chown mysql:mysql "$DATA/mysql"
    mariadb-install-db --defaults-file="$ETC/mysql/my.cnf" --user=mysql \
        --auth-root-authentication-method=normal >"$LOGS/mariadb-install.log" 2>&1 ||
        die "mariadb-install-db failed" "see $LOGS/mariadb-install.log"
}

cloud_py() { LAB_CTL_IP=$API_IP "$VENV/bin/python" "$LABKIT/cloud.py" "$LAB_DIR/clouds.yaml" "$@"; }

# run_logged NAME CMD...: run CMD with output in $LOGS/init-NAME.log; die on failure.
run_logged() {
    local name=$1
    shift
    "$@" >>"$LOGS/init-$name.log" 2>&1 || die "$name failed" "see $LOGS/init-$name.log"
}

wait_mariadb() {
    ha_on && MYSQL_CNF=$(ha_mysql_cnf)
    wait_until 120 0.5 "mariadb on ctl-1" mysql_root -e 'select 1' >/dev/null 2>&1 || die "mariadb did not start" "see $LOGS/ctl-1/mariadb.err"
}

init_databases() {
    [ -e "$STATE/catalog-ready" ] && return 0
    wait_mariadb
    log "init: databases and the keystone bootstrap"
    mysql_root <<EOF || die "cannot create the databases"
CREATE USER IF NOT EXISTS 'os'@'$LAB_NET.%' IDENTIFIED BY 'os';
GRANT ALL PRIVILEGES ON *.* TO 'os'@'$LAB_NET.%';
CREATE DATABASE IF NOT EXISTS keystone; CREATE DATABASE IF NOT EXISTS placement;
CREATE DATABASE IF NOT EXISTS nova_api; CREATE DATABASE IF NOT EXISTS nova_cell0;
CREATE DATABASE IF NOT EXISTS nova_cell1; CREATE DATABASE IF NOT EXISTS glance;
CREATE DATABASE IF NOT EXISTS neutron;
FLUSH PRIVILEGES;
EOF
    local KM=("$VENV/bin/keystone-manage" --config-file "$ETC/keystone/keystone.conf")
    run_logged keystone "${KM[@]}" db_sync
    run_logged keystone "${KM[@]}" fernet_setup --keystone-user root --keystone-group root
    run_logged keystone "${KM[@]}" credential_setup --keystone-user root --keystone-group root
    run_logged keystone "${KM[@]}" bootstrap --bootstrap-password admin --bootstrap-region-id RegionOne \
        --bootstrap-admin-url "$KEYSTONE_URL/" --bootstrap-internal-url "$KEYSTONE_URL/" --bootstrap-public-url "$KEYSTONE_URL/"
    touch "$STATE/db-ready"
    log "init: schema syncs (placement, nova, glance, neutron in parallel) and the catalog"
    local NM=("$VENV/bin/nova-manage" --config-file "$ETC/nova/nova.conf" --config-file "$ETC/nova/nova-db.conf")
    local pids=() p
    run_logged placement env OS_PLACEMENT_CONFIG_DIR="$ETC/placement" "$VENV/bin/placement-manage" \
        --config-dir "$ETC/placement" db sync &
    pids+=($!)
    {
        run_logged nova "${NM[@]}" api_db sync
        run_logged nova "${NM[@]}" cell_v2 map_cell0 --database_connection "$DB_URL/nova_cell0$DB_Q"
        "${NM[@]}" cell_v2 list_cells 2>/dev/null | grep ' cell1 ' >/dev/null || # not -q: pipefail
            run_logged nova "${NM[@]}" cell_v2 create_cell --name cell1
        run_logged nova "${NM[@]}" db sync
    } &
    pids+=($!)
    run_logged glance "$VENV/bin/glance-manage" --config-file "$ETC/glance/glance-api.conf" db_sync &
    pids+=($!)
    run_logged neutron "$VENV/bin/neutron-db-manage" --config-file "$ETC/neutron/neutron.conf" \
        --config-file "$ETC/neutron/plugins/ml2/ml2_conf.ini" upgrade head &
    pids+=($!)
    wait_until 120 0.5 "keystone on ctl-1" tcp_open "$CTL_IP" 5000 || die "keystone did not start" "see $LOGS/ctl-1/keystone.out"
    ha_wait_keystone
    run_logged catalog cloud_py catalog
    for p in "${pids[@]}"; do wait "$p" || die "a schema sync failed" "see $LOGS/init-*.log"; done
    touch "$STATE/catalog-ready"
}

# cheap_password_hashes: passwords hashed with more bcrypt rounds than keystone.conf's
# password_hash_rounds (a lab made before it was set) are set again: keystone restarts to read
# the setting, then cloud.py re-sets them. Each login then costs milliseconds, not seconds.
cheap_password_hashes() {
    local n
    # a lab powered on again (after `down`) skips init_databases: MariaDB may still be starting
    wait_mariadb
    n=$(mysql_root -N -e "SELECT COUNT(*) FROM keystone.password p JOIN keystone.local_user u ON u.id = p.local_user_id
        WHERE p.password_hash NOT LIKE '\$2b\$04\$%' AND p.created_at_int = (SELECT MAX(q.created_at_int)
        FROM keystone.password q WHERE q.local_user_id = u.id)") || die "cannot read keystone's passwords"
    [ "$n" -gt 0 ] || return 0
    log "keystone: hashing $n passwords again with 4 bcrypt rounds (a login took seconds)"
    local node
    for node in "${API_NODES[@]}"; do
        node_ssh "$node" "sv -w 60 restart $(node_dir "$node")/service/keystone" >/dev/null || die "cannot restart keystone on $node"
        wait_until 120 0.5 "keystone on $node" tcp_open "${NODE_IP[$node]}" 5000 || die "keystone on $node did not come back"
    done
    run_logged keystone cloud_py rehash-passwords
}

init_resources() {
    [ -e "$STATE/resources-ready" ] && return 0
    log "init: image, flavor and network; one test boot"
    head -c 1048576 /dev/zero >"$DATA/tiny.img"
    run_logged resources cloud_py resources "$DATA/tiny.img"
    cloud_py boot-check || die "the first server did not boot" "see $LOGS/ctl-1/nova-*.log"
    touch "$STATE/resources-ready"
}

# The image is a file-system skeleton; /usr, the python and the venv are bind-mounted
# read-only from the machine (no registry is reachable, and a 600 MB layer per change
# would make `up` slow). The layout is what a kolla image would give.
build_image_tar() {
    local root=$DATA/image/rootfs
    rm -rf "$DATA/image"
    mkdir -p "$root"/{usr,etc,tmp,root,run,var/tmp,var/lib,proc,sys,dev}
    ln -s usr/bin "$root/bin"
    ln -s usr/sbin "$root/sbin"
    ln -s usr/lib "$root/lib"
    ln -s usr/lib64 "$root/lib64"
    chmod 1777 "$root/tmp" "$root/var/tmp"
    printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
    tar -C "$root" -cf "$DATA/image/rootfs.tar" .
}

CONTAINER_IMAGE=osha-lab/openstack-base:1

ensure_containers() {
    local node=cmp-2
    node_ssh $node true || die "cannot SSH to $node as root" "check $KNOWN_HOSTS and $LOGS/$node/sshd.log"
    wait_until 60 0.5 "dockerd on $node" node_ssh $node docker info >/dev/null 2>&1 ||
        die "dockerd on $node did not start" "see $LOGS/$node/docker.out"
    if ! node_ssh $node docker image inspect $CONTAINER_IMAGE >/dev/null 2>&1; then
        log "containers: building image $CONTAINER_IMAGE on $node (docker import)"
        build_image_tar
        node_ssh $node docker import -c "'CMD [\"/bin/bash\"]'" - $CONTAINER_IMAGE <"$DATA/image/rootfs.tar" >/dev/null ||
            die "docker import failed on $node"
    fi
    local pybase d
    pybase=$("$VENV/bin/python" -c 'import sys; print(sys.base_prefix)')
    d=$(node_dir $node)
    # Only paths of the machine and of $LAB_DIR (the kit is in it): the same for any checkout.
    local spec=(
        --name nova_compute --network host --restart unless-stopped --label osha-lab=1
        -e LAB_CTL_IP="$CTL_IP"
        -v /usr:/usr:ro -v "$pybase:$pybase:ro" -v "$LAB_DIR:$LAB_DIR:ro"
        -v "$DATA/$node:$DATA/$node" -v "$DATA/locks:$DATA/locks" -v "$LOGS/$node:$LOGS/$node"
        -v "$d/events.log:$d/events.log"
        "$CONTAINER_IMAGE" "$KIT/labkit/node/container-entry.sh" "$LAB_DIR" "$d/events.log" nova_compute nova-compute
        "$VENV/bin/nova-compute" --config-file "$ETC/nova/nova.conf" --config-file "$ETC/nova/nova-$node.conf"
    )
    local want have reason
    want=$(printf '%s\n' "${spec[@]}" | base64 -w0)
    have=$(node_ssh $node docker inspect -f "'{{index .Config.Labels \"osha-lab.spec-args\"}}'" nova_compute 2>/dev/null || true)
    [ "$have" = "$want" ] && return 0
    if [ -z "$have" ] || [ "$have" = "<no value>" ]; then
        reason=$(node_ssh $node docker inspect -f "'{{.State.Status}}'" nova_compute 2>/dev/null) &&
            reason="it was made without a recorded spec (an older scripts/lab)" || reason="it does not exist"
    else
        # `|| true`: diff exits 1 when the specs differ, which pipefail and set -e would
        # turn into a silent exit of `up`
        reason="its spec changed: $(diff <(base64 -d <<<"$have") <(base64 -d <<<"$want") | grep '^[<>]' |
            sed 's/^</was/; s/^>/now/' | paste -sd';' | sed 's/;/; /g' || true)"
    fi
    log "containers: creating nova_compute on $node: $reason"
    node_ssh $node docker rm -f nova_compute >/dev/null 2>&1 || true
    node_ssh $node docker run -d --label "osha-lab.spec-args=$want" "${spec[@]@Q}" >/dev/null ||
        die "docker run nova_compute failed on $node"
}

init_rally() {
    mkdir -p "$ETC/rally" "$DATA/rally" "$LAB_DIR/rally"
    cat >"$ETC/rally/rally.conf" <<EOF
[DEFAULT]
log_file = $LOGS/rally.log
[database]
connection = sqlite:///$DATA/rally/rally.db
[openstack]
nova_server_boot_poll_interval = 1
nova_server_delete_poll_interval = 1
nova_server_boot_prepoll_delay = 0
nova_server_delete_prepoll_delay = 0
EOF
    cp "$LABKIT/rally/boot_and_delete.yaml" "$LAB_DIR/rally/boot_and_delete.yaml"
    local R=("$RALLY_VENV/bin/rally" --config-file "$ETC/rally/rally.conf")
    "${R[@]}" env show lab >/dev/null 2>&1 && return 0
    log "rally: creating the database and the environment 'lab'"
    run_logged rally "${R[@]}" db ensure
    run_logged rally env OS_AUTH_URL="$KEYSTONE_URL" OS_USERNAME=admin OS_PASSWORD=admin OS_PROJECT_NAME=admin \
        OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_REGION_NAME=RegionOne OS_IDENTITY_API_VERSION=3 \
        "${R[@]}" env create --from-sysenv --name lab
}
