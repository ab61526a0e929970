"""Write what osha consumes: lab.json, the Ansible inventory and clouds.yaml.

usage: outputs.py LAB_DIR < NODES_TSV
NODES_TSV lines: node, address, group, services (space separated), containers, bmc port.
Settings and paths come from the environment (set by scripts/lab).
"""

from __future__ import annotations

import json
import os
import sys


def write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def data_plane(lab_dir: str, env: os._Environ[str]) -> dict[str, object]:
    """lab.json's ``data_plane``: ``enabled`` false, or the tenant network's settings
    (scripts/labkit/lib/dataplane.sh)."""
    if env.get("LAB_DATA_PLANE") != "1":
        return {"enabled": False}
    computes = env["LAB_COMPUTES"].split(",")
    return {
        "enabled": True,
        "driver": "osha_lab.LabDriver",
        "network": env["LAB_TENANT_NETWORK"],
        "bridge": env["LAB_TENANT_BRIDGE"],
        "subnet": env["LAB_TENANT_SUBNET"],
        "host_address": env["LAB_TENANT_HOST"],
        "node_bridge": env["LAB_NODE_TENANT_BRIDGE"],
        "node_link": env["LAB_NODE_TENANT_LINK"],
        "guest_tcp_port": int(env["LAB_GUEST_TCP_PORT"]),
        "computes": {
            node: {
                "veth": env["LAB_TVETH_PREFIX"] + node,
                "hypervisor_socket": os.path.join(lab_dir, "data", node, "hypervisor.sock"),
            }
            for node in computes
        },
    }


def ha(lab_dir: str, env: os._Environ[str]) -> dict[str, object] | None:
    """lab.json's ``ha``: None (no key) in the default topology, else the VIP, the members and the
    timers the HA mechanisms run on (scripts/labkit/lib/ha.sh)."""
    if env.get("LAB_TOPOLOGY") != "ha":
        return None
    controllers = env["LAB_CONTROLLERS"].split(",")
    etc = os.path.join(lab_dir, "etc")
    return {
        "vip": env["LAB_VIP"],
        "controllers": controllers,
        "api_nodes": env["LAB_API_NODES"].split(","),
        "galera": {
            "members": controllers,
            "writer": controllers[0],
            "suspect_timeout_s": float(env["LAB_GALERA_SUSPECT_TIMEOUT_S"]),
            "sockets": {
                n: os.path.join(lab_dir, "data", "galera", n, "run", "mysqld.sock")
                for n in controllers
            },
        },
        "rabbitmq": {
            "members": [f"rabbit@{n}" for n in controllers],
            "net_ticktime_s": float(env["LAB_RABBIT_NET_TICKTIME_S"]),
        },
        "vrrp": {"advert_int_s": float(env["LAB_VRRP_ADVERT_INT_S"]), "master": controllers[0]},
        # every node's kernel keepalive: what ends a connection left half-dead when the VIP
        # moved away from its client's node (scripts/labkit/lib/ha.sh, ha_net_up)
        "tcp_keepalive": {
            "time_s": float(env["LAB_TCP_KEEPALIVE_TIME_S"]),
            "intvl_s": float(env["LAB_TCP_KEEPALIVE_INTVL_S"]),
            "probes": int(env["LAB_TCP_KEEPALIVE_PROBES"]),
        },
        # the cluster monitors' keys for this lab (a profile's [[monitors]] table takes them as
        # they are; README "The HA lab's monitor settings")
        "monitors": {
            "galera": {"mysql_command": f"mysql --defaults-file={etc}/mysql/{{node}}.cnf -N -B"},
            "rabbitmq": {
                "rabbitmqctl_command": f"{etc}/rabbitmq/rabbitmqctl",
                # each member's own view through erl_call (a C client: 0.3-1.5 s on the
                # loaded lab, where rabbitmqctl, an Erlang VM, takes 10-20 s)
                "erl_call_command": f". {etc}/rabbitmq/env-{{node}}.sh; "
                "erl_call -sname rabbit@{node}",
                "alive_command": "timeout 2 bash -c 'exec 3<>/dev/tcp/{address}/5672'",
                "status_interval_s": 1.0,
                "command_timeout_s": 10.0,
            },
            "vip": {
                "vips": {"internal": env["LAB_VIP"]},
                "haproxy_command": "echo 'show stat' | socat stdio "
                f"UNIX-CONNECT:{lab_dir}/data/{{node}}/haproxy/stats.sock",
            },
        },
        "haproxy": {
            "inter_ms": int(env["LAB_HAPROXY_INTER_MS"]),
            "fastinter_ms": int(env["LAB_HAPROXY_FASTINTER_MS"]),
            "fall": int(env["LAB_HAPROXY_FALL"]),
            "rise": int(env["LAB_HAPROXY_RISE"]),
            "timeout_connect_ms": int(env["LAB_HAPROXY_TIMEOUT_CONNECT_MS"]),
            "stats_sockets": {
                n: os.path.join(lab_dir, "data", n, "haproxy", "stats.sock") for n in controllers
            },
        },
    }


def main(argv: list[str]) -> int:
    lab_dir = argv[1]
    env = os.environ
    nodes = {}
    groups: dict[str, list[str]] = {"controller": [], "compute": [], "container_hosts": []}
    by_service: dict[str, list[str]] = {}
    for line in sys.stdin.read().splitlines():
        name, address, group, services, containers, bmc_port = line.split("\t")
        node_groups = [group] + (["container_hosts"] if containers else [])
        for g in node_groups:
            groups[g].append(name)
        for service in services.split():
            by_service.setdefault(service, []).append(name)
        nodes[name] = {
            "address": address,
            "groups": node_groups,
            "services": services.split(),
            "containers": containers.split(),
            "docker_url": f"ssh://root@{address}" if containers else None,
            "events": os.path.join(lab_dir, "nodes", name, "events.log"),
            "boot_id": os.path.join(lab_dir, "nodes", name, "boot_id"),
            "service_dir": os.path.join(lab_dir, "nodes", name, "service"),
            "switch_port": env["LAB_VETH_PREFIX"] + name,
            "bmc": {
                "host": "127.0.0.1",
                "port": int(bmc_port),
                "user": env["LAB_BMC_USER"],
                "password": env["LAB_BMC_PASSWORD"],
            },
        }
    auth_url = f"http://{env['LAB_CTL_IP']}:5000/v3"
    write(
        os.path.join(lab_dir, "clouds.yaml"),
        f"""clouds:
  lab:
    auth:
      auth_url: {auth_url}
      username: admin
      password: admin
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
""",
    )
    lines = []
    for group, members in groups.items():
        lines.append(f"[{group}]")
        # osha_switch_port: the bridge-side veth of the node's eth0, on this machine (the
        # network disruptor's switch-side link-down takes it down: the node sees NO-CARRIER)
        lines += [
            f"{n} ansible_host={nodes[n]['address']} ansible_user=root "
            f"osha_switch_port={env['LAB_VETH_PREFIX']}{n} osha_switch_host=local"
            for n in members
        ]
        lines.append("")
    # kolla-ansible's layout: a group per service, named after it, of the nodes that run it
    # (`[nova-scheduler]`: ctl-1 and ctl-2 in both topologies). A profile that targets or
    # watches a service names its group and fits either topology; the HA lab's ctl-3 is a
    # controller that runs only the cluster, none of nova's services.
    lines.append("# one group per runit service (kolla-ansible style): the nodes that run it")
    for service, members in by_service.items():
        lines += [f"[{service}]", *members, ""]
    lines += [
        "[all:vars]",
        f"ansible_ssh_private_key_file={env['LAB_SSH_KEY']}",
        f"ansible_ssh_common_args='-o UserKnownHostsFile={env['LAB_KNOWN_HOSTS']} "
        "-o StrictHostKeyChecking=yes'",
        "",
    ]
    write(os.path.join(lab_dir, "inventory.ini"), "\n".join(lines))
    lab = {
        "version": 1,
        "instance": int(env["LAB_INSTANCE"]),
        "dir": lab_dir,
        "cloud": "lab",
        "clouds_yaml": os.path.join(lab_dir, "clouds.yaml"),
        "inventory": os.path.join(lab_dir, "inventory.ini"),
        "ssh": {
            "user": "root",
            "private_key": env["LAB_SSH_KEY"],
            "known_hosts": env["LAB_KNOWN_HOSTS"],
            "config": os.path.join(lab_dir, "ssh_config"),
        },
        "rally": {
            "bin": env["LAB_RALLY_BIN"],
            "env": "lab",
            "db": env["LAB_RALLY_DB"],
            "config_file": env["LAB_RALLY_CONF"],
            "task_boot_and_delete": os.path.join(lab_dir, "rally", "boot_and_delete.yaml"),
        },
        "network": {
            "bridge": env["LAB_BRIDGE"],
            "subnet": env["LAB_SUBNET"],
            "gateway": env["LAB_GATEWAY"],
            "netns_prefix": env["LAB_NETNS_PREFIX"],
            "veth_prefix": env["LAB_VETH_PREFIX"],
        },
        "owner_file": env["LAB_OWNER_FILE"],
        "cgroup_prefix": env["LAB_CGROUP_PREFIX"],
        "nodes": nodes,
        "data_plane": data_plane(lab_dir, env),
        "topology": env.get("LAB_TOPOLOGY", "default"),
        "settings": {
            "service_down_time_s": int(env["LAB_SERVICE_DOWN_TIME_S"]),
            "agent_down_time_s": int(env["LAB_AGENT_DOWN_TIME_S"]),
            "report_interval_s": int(env["LAB_REPORT_INTERVAL_S"]),
            "rpc_response_timeout_s": int(env["LAB_RPC_RESPONSE_TIMEOUT_S"]),
        },
    }
    ha_section = ha(lab_dir, env)
    if ha_section is not None:  # absent in the default topology
        lab["ha"] = ha_section
    write(os.path.join(lab_dir, "lab.json"), json.dumps(lab, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
