# shellcheck shell=bash
# Installs what the lab needs, each step skipped when already done. Sourced.

APT_PACKAGES=(
    rabbitmq-server mariadb-server mariadb-client   # messaging and databases
    openssh-server openssh-client                   # a real sshd per node
    runit busybox-static                            # supervision; reboot(2) for the shims
    docker.io                                       # per-node dockerd for kolla-style containers
    ipmitool iproute2 util-linux procps gcc libc6-dev # BMC client; namespaces; uWSGI build
    nftables                                        # the network disruptor's tables (nft)
    memcached                                       # keystone's and keystonemiddleware's caches
)

install_apt() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        # "triggers-pending" is installed too (another apt run may be processing triggers)
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -Eq 'ok (installed|triggers-pending|triggers-awaited)' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "apt: installing ${missing[*]}"
    # A temporary policy-rc.d stops the packages from starting their daemons (RabbitMQ's epmd
    # would listen on 0.0.0.0, dockerd and MariaDB would run outside the lab).
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e $policy ]; then
        printf '#!/bin/sh\nexit 101\n' >$policy
        chmod +x $policy
        made_policy=1
    fi
    local rc=0
    {
        # wait for another apt/dpkg run instead of failing on its lock
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
                --no-install-recommends "${missing[@]}"
    } >>"$LOGS/apt.log" 2>&1 || rc=$?
    [ $made_policy = 1 ] && rm -f $policy
    [ $rc = 0 ] || die "apt-get failed (rc=$rc)" "see $LOGS/apt.log"
}


# venv_ready DIR STAMP: the venv in DIR is complete and was built from the same inputs.
venv_ready() { [ "$(cat "$1/.osha-complete" 2>/dev/null)" = "$2" ]; }

# lab_running: some node of the lab is powered on (a live power process, not a stale pid file)
lab_running() {
    local f
    for f in "$LAB_DIR"/nodes/*/power.pid; do
        pid_from "$f" >/dev/null && return 0
    done
    return 1
}

# build_venv DIR NAME CONSTRAINTS PACKAGES...: (re)build DIR unless it is up to date.
# venvs embed their own path, so they are built in place under their final name.
build_venv() {
    local dir=$1 name=$2 constraints=$3 stamp
    shift 3
    # the inputs, not where the checkout is: a local package counts by its content
    stamp=$(cat "$constraints" <(echo "${*//$LABKIT/LABKIT}") \
        <(cd "$LABKIT/noop_mech" && find pyproject.toml osha_lab_noop_mech -name '*.py' -o -name '*.toml' | sort | xargs cat) |
        sha256sum | cut -c1-16)
    venv_ready "$dir" "$stamp" && return 0
    if [ -e "$dir" ] && lab_running; then
        die "the $name venv is out of date (constraints changed) and the lab runs from it" \
            "run scripts/lab down first; up then rebuilds it"
    fi
    log "pip: building the $name venv"
    rm -rf "$dir"
    "$LAB_PYTHON" -m venv "$dir" >>"$LOGS/pip.log" 2>&1 || die "cannot create the venv $dir" "is $LAB_PYTHON a python3 with venv?"
    "$dir/bin/pip" install -q --no-cache-dir -U pip >>"$LOGS/pip.log" 2>&1 || die "pip upgrade failed in $dir" "see $LOGS/pip.log"
    "$dir/bin/pip" install -q --no-cache-dir -c "$constraints" "$@" >>"$LOGS/pip.log" 2>&1 ||
        die "pip install of the $name venv failed" "see $LOGS/pip.log"
    echo "$stamp" >"$dir/.osha-complete"
}

# install_memcache_client: the memcached client of keystone's cache and keystonemiddleware,
# into the services venv, in either topology (its marker keeps the name it had when only the
# HA topology installed it, so an existing venv is not installed into again).
MEMCACHE_CLIENT_PIP=python-memcached==1.62
install_memcache_client() {
    [ "$(cat "$VENV/.osha-ha" 2>/dev/null)" = "$MEMCACHE_CLIENT_PIP" ] && return 0
    log "pip: installing $MEMCACHE_CLIENT_PIP into the services venv (memcached client)"
    "$VENV/bin/pip" install -q --no-cache-dir --no-deps "$MEMCACHE_CLIENT_PIP" >>"$LOGS/pip.log" 2>&1 ||
        die "pip install of $MEMCACHE_CLIENT_PIP failed" "see $LOGS/pip.log"
    echo "$MEMCACHE_CLIENT_PIP" >"$VENV/.osha-ha"
}

install_venvs() {
    local C=$LABKIT/constraints
    # uWSGI compiles from source: this one takes a minute or two
    build_venv "$VENV" "OpenStack services" "$C/services.txt" keystone openstack-placement nova glance \
        neutron openstacksdk python-openstackclient PyMySQL uwsgi "$LABKIT/noop_mech"
    build_venv "$RALLY_VENV" Rally "$C/rally.txt" rally rally-openstack
    build_venv "$TOOLS_VENV" "tools (pyghmi, for the BMC emulator)" "$C/tools.txt" pyghmi
}
