"""Kolla-style containers: a container disruption shows where the service shows."""

from __future__ import annotations

import pytest

from tests.lab.client import Lab, wait_for

pytestmark = pytest.mark.lab


@pytest.mark.timeout(300)  # a hang guard above the sum of its bounds
def test_stopping_the_nova_compute_container_shows_in_nova(healthy_lab: Lab) -> None:
    lab = healthy_lab
    client = lab.docker("cmp-2")
    try:
        container = client.containers.get("nova_compute")
        assert container.status == "running"
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
        assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        container.stop(timeout=10)  # docker's grace before SIGKILL, not a wait of the test
        container.reload()
        assert container.status == "exited"
        wait_for(
            lambda: lab.service_state("nova-compute", "cmp-2") == "down",
            timeout_s=lab.bounds.service_seen_down_s,
            what="nova-compute@cmp-2 down after the container stopped",
        )
        container.start()
        wait_for(
            lambda: lab.service_state("nova-compute", "cmp-2") == "up",
            timeout_s=lab.bounds.service_seen_up_s,
            what="nova-compute@cmp-2 up after the container started",
        )
    finally:
        client.close()
