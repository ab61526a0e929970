# shellcheck shell=bash
# OpenStack, MariaDB and RabbitMQ configuration for the lab, written on every `up`. Sourced.

DB_URL="mysql+pymysql://os:os@$CTL_IP"
DB_Q="?charset=utf8mb4"
RABBIT_URL="rabbit://guest:guest@$CTL_IP:5672/"
KEYSTONE_URL="http://$CTL_IP:5000/v3"

ks_auth() { # keystone password auth as service user $1
    cat <<EOF
auth_url = $KEYSTONE_URL
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $1
region_name = RegionOne
EOF
}
# memcached_servers: the memcached that keystone's cache and keystonemiddleware's token cache
# share: ctl-1's in the default topology, every controller's in the HA one (ha.sh).
memcached_servers() { if ha_on; then echo "$MEMCACHED_SERVERS"; else echo "$CTL_IP:$MEMCACHED_PORT"; fi; }
authtoken() {
    printf '[keystone_authtoken]\nwww_authenticate_uri = %s\nmemcached_servers = %s\n' "$KEYSTONE_URL" "$(memcached_servers)"
    ks_auth "$1"
}
# keystone_cache_conf: keystone.conf's [cache] body. Without a cache keystone recomputes every
# token validation (its roles, catalog, revocations: about 2 s a call on the loaded 2-core
# machine, and a server boot validates the user's token in nova, glance, neutron and
# placement). With it a token is cached when issued (cache_on_issue), so those validations are
# hits. memcached, not an in-process cache: keystone runs two uWSGI processes, and a token
# revoked in one must not stay valid in the other's cache.
keystone_cache_conf() {
    printf 'enabled = true\nbackend = oslo_cache.memcache_pool\nmemcache_servers = %s\n' "$(memcached_servers)"
}

# uwsgi_ini NAME PORT MODULE ENV...: an API under uWSGI on ctl-1's address.
uwsgi_ini() {
    local name=$1 port=$2 module=$3 e
    shift 3
    cat <<EOF
[uwsgi]
http-socket = $CTL_IP:$port
module = $module
virtualenv = $VENV
master = true
processes = 1
threads = 4
lazy-apps = true
die-on-term = true
need-app = true
buffer-size = 65535
# uWSGI's http-socket closes the connection after each reply without saying so;
# keystoneauth then reuses the dead socket ("Connection reset by peer").
add-header = Connection: close
logto = $LOGS/ctl-1/$name.log
EOF
    for e in "$@"; do echo "env = $e"; done
}

write_infra_configs() {
    mkdir -p "$ETC/mysql" "$ETC/rabbitmq" "$DATA/rabbitmq-home" "$DATA/rabbitmq" "$DATA/mysql-run" "$LOGS/ctl-1/rabbitmq"
    chmod 755 "$LAB_DIR" "$ETC" "$ETC/mysql" "$DATA"
    chown mysql:mysql "$DATA/mysql-run"
    cat >"$ETC/mysql/my.cnf" <<EOF
[mysqld]
datadir = $DATA/mysql
socket = $DATA/mysql-run/mysqld.sock
pid-file = $DATA/mysql-run/mysqld.pid
bind-address = $CTL_IP
port = 3306
user = mysql
skip-name-resolve
max_connections = 500
innodb_buffer_pool_size = 64M
innodb_flush_log_at_trx_commit = 0
innodb_doublewrite = 0
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
log-error = $LOGS/ctl-1/mariadb.err
[client]
socket = $DATA/mysql-run/mysqld.sock
EOF
    chmod 644 "$ETC/mysql/my.cnf"
    touch "$LOGS/ctl-1/mariadb.err"
    chown mysql "$LOGS/ctl-1/mariadb.err"
    cat >"$ETC/rabbitmq/rabbitmq.conf" <<EOF
listeners.tcp.default = $CTL_IP:5672
loopback_users = none
default_user = guest
default_pass = guest
EOF
    echo "[]." >"$ETC/rabbitmq/enabled_plugins"
    # Same HOME (Erlang cookie) and node name for the server and rabbitmqctl; epmd and
    # Erlang distribution stay on the node's loopback.
    cat >"$ETC/rabbitmq/env.sh" <<EOF
export HOME=$DATA/rabbitmq-home
export RABBITMQ_NODENAME=rabbit@localhost RABBITMQ_NODE_IP_ADDRESS=$CTL_IP RABBITMQ_NODE_PORT=5672
export RABBITMQ_CONFIG_FILE=$ETC/rabbitmq/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$ETC/rabbitmq/enabled_plugins
export RABBITMQ_MNESIA_BASE=$DATA/rabbitmq RABBITMQ_LOG_BASE=$LOGS/ctl-1/rabbitmq
export ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT=4369 RABBITMQ_DIST_PORT=25672
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
}

write_keystone_placement_glance() {
    mkdir -p "$ETC/keystone" "$ETC/placement" "$ETC/glance" "$DATA/glance"/{images,staging,tasks} "$DATA/locks"
    cat >"$ETC/keystone/keystone.conf" <<EOF
[DEFAULT]
log_file = $LOGS/ctl-1/keystone.log
[database]
connection = $DB_URL/keystone$DB_Q
[token]
provider = fernet
expiration = 14400
[fernet_tokens]
key_repository = $ETC/keystone/fernet-keys
[credential]
key_repository = $ETC/keystone/credential-keys
[cache]
$(keystone_cache_conf)
[identity]
# bcrypt's default 12 rounds cost 8 s per login on the loaded 2-core test machine (measured),
# and every test's and Rally user's login pays it. A lab password guards nothing; 4 is
# bcrypt's minimum. (scripts/lab up hashes again what was hashed with more: init.sh.)
password_hash_rounds = 4
EOF
    uwsgi_ini keystone 5000 keystone.wsgi.api:application "OS_KEYSTONE_CONFIG_DIR=$ETC/keystone" |
        sed 's/^processes = 1/processes = 2/; s/^threads = 4/threads = 1/' >"$ETC/keystone/uwsgi.ini"
    cat >"$ETC/placement/placement.conf" <<EOF
[DEFAULT]
log_file = $LOGS/ctl-1/placement-api.log
[placement_database]
connection = $DB_URL/placement$DB_Q
[api]
auth_strategy = keystone
$(authtoken placement)
EOF
    uwsgi_ini placement-api 8778 placement.wsgi.api:application "OS_PLACEMENT_CONFIG_DIR=$ETC/placement" >"$ETC/placement/uwsgi.ini"
    cp "$VENV/etc/glance/glance-api-paste.ini" "$ETC/glance/"
    cat >"$ETC/glance/glance-api.conf" <<EOF
[DEFAULT]
log_file = $LOGS/ctl-1/glance-api.log
enabled_backends = fs:file
public_endpoint = http://$API_IP:9292
worker_self_reference_url = http://$CTL_IP:9292
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $DATA/glance/images
[os_glance_staging_store]
filesystem_store_datadir = $DATA/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = $DATA/glance/tasks
[database]
connection = $DB_URL/glance$DB_Q
[paste_deploy]
flavor = keystone
config_file = $ETC/glance/glance-api-paste.ini
$(authtoken glance)
[oslo_concurrency]
lock_path = $DATA/locks
[oslo_messaging_notifications]
driver = noop
EOF
    uwsgi_ini glance-api 9292 glance.wsgi.api:application "OS_GLANCE_CONFIG_DIR=$ETC/glance" >"$ETC/glance/uwsgi.ini"
    printf 'http-chunked-input = true\nhttp-raw-body = true\n' >>"$ETC/glance/uwsgi.ini" # image uploads
}

write_nova() {
    local node
    mkdir -p "$ETC/nova"
    cp "$VENV/etc/nova/api-paste.ini" "$ETC/nova/api-paste.ini"
    # nova.conf holds no database credentials: compute nodes must not have them.
    cat >"$ETC/nova/nova.conf" <<EOF
[DEFAULT]
transport_url = $RABBIT_URL
# Why a fake: the lab has no hypervisor. FakeDriverWithoutFakeNodes keeps a stable node
# identity in state_path/compute_id, so nova-compute can restart (fake.FakeDriver cannot).
compute_driver = fake.FakeDriverWithoutFakeNodes
report_interval = $REPORT_INTERVAL_S
service_down_time = $SERVICE_DOWN_TIME_S
rpc_response_timeout = $RPC_RESPONSE_TIMEOUT_S
osapi_compute_workers = 1
enabled_apis = osapi_compute
heal_instance_info_cache_interval = -1
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = $ETC/nova/api-paste.ini
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 5
$(authtoken nova)
[service_user]
send_service_user_token = true
$(ks_auth nova)
[placement]
$(ks_auth placement)
[neutron]
$(ks_auth neutron)
[glance]
region_name = RegionOne
[oslo_concurrency]
lock_path = $DATA/locks
[oslo_messaging_notifications]
driver = noop
[vnc]
enabled = false
[spice]
enabled = false
[serial_console]
enabled = false
EOF
    cat >"$ETC/nova/nova-db.conf" <<EOF
[api_database]
connection = $DB_URL/nova_api$DB_Q
[database]
connection = $DB_URL/nova_cell1$DB_Q
EOF
    for node in "${NODES[@]}"; do
        mkdir -p "$DATA/$node/nova/instances"
        cat >"$ETC/nova/nova-$node.conf" <<EOF
[DEFAULT]
host = $node
my_ip = ${NODE_IP[$node]}
state_path = $DATA/$node/nova
instances_path = $DATA/$node/nova/instances
log_dir = $LOGS/$node
EOF
    done
    # nova-api takes the FIRST file of OS_NOVA_CONFIG_FILES as its paste config.
    uwsgi_ini nova-api 8774 nova.wsgi.osapi_compute:application "OS_NOVA_CONFIG_DIR=$ETC/nova" \
        "OS_NOVA_CONFIG_FILES=api-paste.ini;nova.conf;nova-db.conf;nova-ctl-1.conf;nova-api.conf" >"$ETC/nova/uwsgi-api.ini"
    printf '[DEFAULT]\nlog_file = %s/ctl-1/nova-api.log\n' "$LOGS" >"$ETC/nova/nova-api.conf"
}

write_neutron() {
    mkdir -p "$ETC/neutron/plugins/ml2" "$DATA/neutron"
    cp "$VENV/etc/neutron/api-paste.ini" "$ETC/neutron/api-paste.ini"
    cat >"$ETC/neutron/neutron.conf" <<EOF
[DEFAULT]
host = ctl-1
core_plugin = ml2
service_plugins =${NEUTRON_SERVICE_PLUGINS:+ $NEUTRON_SERVICE_PLUGINS}
auth_strategy = keystone
transport_url = $RABBIT_URL
rpc_response_timeout = $RPC_RESPONSE_TIMEOUT_S
state_path = $DATA/neutron
api_paste_config = $ETC/neutron/api-paste.ini
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 1
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
agent_down_time = $AGENT_DOWN_TIME_S
# No network is ever given to the DHCP agent: it has no interface driver and no privsep
# helper for namespaces, so it could only fail. A network scheduled to it (Rally's network
# context makes subnets with DHCP on) left a state directory behind, and the agent then
# retried "disable dhcp" for it about 60 times a second, for good (20 % of a core for the
# agent alone, and its resyncs to the RPC servers; HA lab, stop 32). The lab's own subnets
# have DHCP off.
network_auto_schedule = false
dhcp_agent_notification = false
[agent]
report_interval = $REPORT_INTERVAL_S
root_helper =
[privsep]
helper_command = $VENV/bin/privsep-helper
[database]
connection = $DB_URL/neutron$DB_Q
$(authtoken neutron)
[nova]
$(ks_auth nova)
[placement]
$(ks_auth placement)
[oslo_concurrency]
lock_path = $DATA/locks
[oslo_messaging_notifications]
driver = noop
EOF
    # Why a fake: no dataplane exists, so the no-op driver binds every port (see noop_mech/).
    cat >"$ETC/neutron/plugins/ml2/ml2_conf.ini" <<EOF
[ml2]
type_drivers = flat,vlan,local
tenant_network_types = local
mechanism_drivers = osha_noop
extension_drivers = port_security
[ml2_type_flat]
flat_networks = *
[securitygroup]
firewall_driver = noop
enable_security_group = true
EOF
    printf '[DEFAULT]\nlog_file = %s/ctl-1/neutron-api.log\n' "$LOGS" >"$ETC/neutron/api.conf"
    printf '[DEFAULT]\nlog_file = %s/ctl-1/neutron-rpc-server.log\n' "$LOGS" >"$ETC/neutron/rpc.conf"
    # The agents run and report their state; with the null interface driver they plumb nothing.
    cat >"$ETC/neutron/dhcp_agent.ini" <<EOF
[DEFAULT]
interface_driver = null
enable_isolated_metadata = false
log_file = $LOGS/ctl-1/neutron-dhcp-agent.log
EOF
    cat >"$ETC/neutron/metadata_agent.ini" <<EOF
[DEFAULT]
nova_metadata_host = $API_IP
nova_metadata_port = 8775
metadata_proxy_shared_secret = osha-lab
metadata_proxy_socket = $DATA/neutron/metadata_proxy
metadata_workers = 1
log_file = $LOGS/ctl-1/neutron-metadata-agent.log
EOF
    uwsgi_ini neutron-api 9696 neutron.wsgi.api:application "OS_NEUTRON_CONFIG_DIR=$ETC/neutron" \
        "OS_NEUTRON_CONFIG_FILES=neutron.conf;plugins/ml2/ml2_conf.ini;api.conf" >"$ETC/neutron/uwsgi.ini"
    echo "start-time = %t" >>"$ETC/neutron/uwsgi.ini"
}

write_configs() {
    write_infra_configs
    write_keystone_placement_glance
    write_nova
    write_neutron
    write_rabbitmqctl
}

# rabbitmqctl with the server's HOME and node name. Run it inside ctl-1's network namespace
# (epmd listens on the node's loopback), e.g. ip netns exec osha-ctl-1 $ETC/rabbitmq/rabbitmqctl
write_rabbitmqctl() {
    printf '#!/bin/sh\n. %s\nexec /usr/lib/rabbitmq/bin/rabbitmqctl "$@"\n' "$ETC/rabbitmq/env.sh" >"$ETC/rabbitmq/rabbitmqctl"
    chmod +x "$ETC/rabbitmq/rabbitmqctl"
}
