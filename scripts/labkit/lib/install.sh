# shellcheck shell=bash
# Installs what the lab needs, each step skipped when already done. Sourced.

APT_PACKAGES=(
    rabbitmq-server mariadb-server mariadb-client   # messaging and databases
    openssh-server openssh-client                   # a real sshd per node
    runit busybox-static                            # supervision; reboot(2) for the shims
    docker.io                                       # per-node dockerd for kolla-style containers
    ipmitool iproute2 util-linux curl gcc libc6-dev # BMC client; namespaces; uWSGI build
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


install_venvs() {
    local C=$LABKIT/constraints
    if [ ! -e "$VENV/.osha-complete" ]; then
        # venvs embed their own path, so build directly under the final name
        rm -rf "$VENV"
        log "pip: building the OpenStack services venv (uWSGI compiles; takes a minute or two)"
        "$LAB_PYTHON" -m venv "$VENV" >>"$LOGS/pip.log" 2>&1 || die "cannot create venv $VENV" "is $LAB_PYTHON a python3 with venv?"
        "$VENV/bin/pip" install -q --no-cache-dir -U pip >>"$LOGS/pip.log" 2>&1 || die "pip upgrade failed" "see $LOGS/pip.log"
        "$VENV/bin/pip" install -q --no-cache-dir -c "$C/services.txt" keystone openstack-placement nova glance \
            neutron openstacksdk python-openstackclient PyMySQL uwsgi "$LABKIT/noop_mech" >>"$LOGS/pip.log" 2>&1 ||
            die "pip install of the services venv failed" "see $LOGS/pip.log"
        touch "$VENV/.osha-complete"
    fi
    if [ ! -e "$RALLY_VENV/.osha-complete" ]; then
        rm -rf "$RALLY_VENV"
        log "pip: building the Rally venv"
        "$LAB_PYTHON" -m venv "$RALLY_VENV" >>"$LOGS/pip.log" 2>&1 || die "cannot create venv $RALLY_VENV"
        "$RALLY_VENV/bin/pip" install -q --no-cache-dir -U pip >>"$LOGS/pip.log" 2>&1 || die "pip upgrade failed" "see $LOGS/pip.log"
        "$RALLY_VENV/bin/pip" install -q --no-cache-dir -c "$C/rally.txt" rally rally-openstack >>"$LOGS/pip.log" 2>&1 ||
            die "pip install of the Rally venv failed" "see $LOGS/pip.log"
        touch "$RALLY_VENV/.osha-complete"
    fi
    if [ ! -e "$TOOLS_VENV/.osha-complete" ]; then
        rm -rf "$TOOLS_VENV"
        log "pip: building the tools venv (pyghmi for the BMC emulator)"
        "$LAB_PYTHON" -m venv "$TOOLS_VENV" >>"$LOGS/pip.log" 2>&1 || die "cannot create venv $TOOLS_VENV"
        "$TOOLS_VENV/bin/pip" install -q --no-cache-dir -c "$C/tools.txt" pyghmi >>"$LOGS/pip.log" 2>&1 ||
            die "pip install of the tools venv failed" "see $LOGS/pip.log"
        touch "$TOOLS_VENV/.osha-complete"
    fi
}
