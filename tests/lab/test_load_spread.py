"""The initial load's ``spread`` against the lab's real nova scheduler (issue 16: the load
"can place servers across computes (spread = true, via the scheduler's anti-affinity server
group), so a compute failure hits a known subset"): four servers booted into the run's
``soft-anti-affinity`` group land two on each of the lab's two compute nodes, and the
teardown deletes the servers and the group, leaving nothing of the run (the census)."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest

from osha import schema
from osha.campaign.census import census
from osha.campaign.load import ServersLoad
from osha.profile import LoadEntry, ServersLoadConfig
from tests.lab.client import Lab

pytestmark = pytest.mark.lab

PREFIX = "osha-spread"


# a hang guard above the sum of its bounds: four boots one at a time and the deletes (four at
# a time), each bounded by server_boot_s (120 s); at load 15 a boot took up to 48 s, and the
# default 120 s guard stopped the test at its fourth boot once (stop 29)
@pytest.mark.timeout(900)
def test_spread_puts_two_of_four_servers_on_each_compute_and_deletes_its_group(lab: Lab) -> None:
    data = {"cloud": lab.desc["cloud"], "clouds_yaml": lab.desc["clouds_yaml"], "count": 4,
            "spread": True, "image": "tiny", "flavor": "m1.tiny", "network": "shared-net",
            "name_prefix": PREFIX, "boot_timeout_s": lab.bounds.server_boot_s,
            "delete_timeout_s": lab.bounds.server_boot_s}  # fmt: skip
    cfg, problems = schema.build(ServersLoadConfig, data, file="test_load_spread")
    assert cfg is not None, problems
    run_id = uuid.uuid4().hex[:8]
    events: list[dict[str, Any]] = []
    load = ServersLoad(LoadEntry("vms", "servers", cfg), run_id,
                       lambda **event: events.append(event))  # fmt: skip
    conn = lab.cloud()
    computes = sorted(s.host for s in conn.compute.services(binary="nova-compute"))
    assert len(computes) == 2, computes  # the lab's cmp-1 and cmp-2
    try:
        assert load.create(conn) == 0, events
        placed = Counter(conn.compute.get_server(m.server_id).compute_host for m in load.made)
    finally:
        failures = load.delete(conn)
    assert placed == dict.fromkeys(computes, 2), placed
    assert failures == 0, events
    kinds = Counter((e["kind"], e["action"]) for e in events)
    assert kinds[("server_group", "created")] == kinds[("server_group", "deleted")] == 1, kinds
    assert census(conn, run_id, PREFIX).leftovers == ()
