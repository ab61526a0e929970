"""Every wall-clock bound of the lab tests: the lab's own settings (lab.json ``settings``)
plus a stated margin, so a test gives up only when something is really wrong.

The margins are sized for a loaded 2-core machine: the lab tier runs beside other work and,
in the flake hunt, beside a CPU hog (``scripts/test --lab --repeat N --hog``). Measured there
(issue 20): a keystone password login took 1-8 s with bcrypt's 12 rounds (the lab now hashes
with 4), a Python process scheduled 10-100 ms late, an OpenStack service took 5-25 s from its
start to its first heartbeat. A bound says when a test stops waiting, never how fast the
cloud must be: latency is printed by tests and measured by benchmarks, not asserted tightly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osha.audit import HARD_MARGIN_S

__all__ = ["Bounds"]

#: One API call of a test client, with its keystone login when the token is new (the
#: client's own api_timeout is 20 s; a poll of nova's service list takes 0.1-2 s loaded).
API_POLL_S = 20.0
#: An OpenStack service from its (re)start to its first heartbeat: python imports, the DB and
#: RabbitMQ connections, then one report; 5-25 s measured on the loaded machine, doubled+.
SERVICE_START_S = 60.0
#: runit restarts a service at most once a second; its run script then waits for the DB and
#: RabbitMQ (instant when they are up): 1 s plus a margin for a scheduler that runs late.
RUNIT_RESTART_S = 15.0
#: A lab node from power-on (or an in-node reboot) to sshd answering: 0.1-0.3 s measured
#: (a PID namespace and a few processes); the margin covers the BMC round trip and load.
NODE_BOOT_S = 30.0
#: A command over SSH on a node (systemctl, kill, docker): the lab's systemctl waits up to
#: 30 s for a service to stop or start (`sv -w 30`); doubled for a loaded machine.
COMMAND_S = 60.0
#: osha from exec to its actors started (the fault harness, a campaign): imports and one
#: child process per actor; 3-10 s measured on the loaded machine.
OSHA_START_S = 60.0
#: A campaign's preflight (each check runs in parallel, under this one bound). The slowest
#: is the Rally runner's `rally task validate`: it makes and deletes temporary users and looks
#: up the image and flavor, about 60 keystone calls. Keystone's mean request took 1-3 s all
#: afternoon on the loaded machine (its uwsgi log: 2 processes starved of CPU), and the
#: validation took 95-170 s; osha's default (60 s) is for a real cloud.
PREFLIGHT_S = 300.0
#: A campaign's warm-up: Rally's runner validates its task again (as in PREFLIGHT_S), sets up
#: its users context, then boots its first server (SERVER_BOOT_S). At load 15 the first
#: iteration came 3 min 10 s after `rally task start` (validation 152 s, users 32 s); the
#: profiles' 60 s is for a real cloud. The campaign starts its baseline as soon as every
#: runner is warm, so this bound costs nothing on an idle machine.
WARMUP_S = PREFLIGHT_S + 120.0
#: An audit's time bound (the profiles' [[audits]] timeout_s): one listing of the lab's few
#: dozen servers, ports, services, providers and projects takes a few seconds (a sweep took
#: 3-14 s); keystone took up to 10-20 s a request loaded (API_POLL_S), so a few plus a margin.
AUDIT_TIMEOUT_S = 120.0
#: One sweep of a campaign's audits, as the campaign waits for it: the audits run in parallel,
#: each waited for at most its timeout_s plus the sweep's margin (30 s).
SWEEP_S = AUDIT_TIMEOUT_S + HARD_MARGIN_S
#: A server of the lab's fake driver from create to ACTIVE: 14 s at `lab up`, loaded up to
#: about 60 s (the scheduler, conductor and compute each take a turn on 2 cores).
SERVER_BOOT_S = 120.0


@dataclass(frozen=True, slots=True)
class Bounds:
    """Bounds from one lab's settings; see the module docstring for the margins."""

    report_interval_s: float
    service_down_time_s: float
    agent_down_time_s: float
    rpc_response_timeout_s: float

    @classmethod
    def of(cls, settings: dict[str, Any]) -> Bounds:
        return cls(
            report_interval_s=float(settings["report_interval_s"]),
            service_down_time_s=float(settings["service_down_time_s"]),
            agent_down_time_s=float(settings["agent_down_time_s"]),
            rpc_response_timeout_s=float(settings["rpc_response_timeout_s"]),
        )

    @property
    def service_seen_down_s(self) -> float:
        """A dead nova service shows ``down``: nova says so service_down_time after its last
        heartbeat (at most report_interval before the death), plus one API poll."""
        return self.service_down_time_s + self.report_interval_s + API_POLL_S

    @property
    def agent_seen_dead_s(self) -> float:
        """A dead neutron agent shows not alive: agent_down_time after its last report."""
        return self.agent_down_time_s + self.report_interval_s + API_POLL_S

    @property
    def service_seen_up_s(self) -> float:
        """A (re)started nova service or neutron agent shows ``up`` again: runit's restart,
        the service's start, one report interval, one API poll. A service that waited on an
        RPC to a dead peer first may add one rpc_response_timeout."""
        return (
            RUNIT_RESTART_S
            + SERVICE_START_S
            + self.report_interval_s
            + self.rpc_response_timeout_s
            + API_POLL_S
        )

    @property
    def poll_s(self) -> float:
        """One API poll (a monitor's or a test's), with its keystone login."""
        return API_POLL_S

    @property
    def restart_s(self) -> float:
        """runit restarts a killed service (a new pid)."""
        return RUNIT_RESTART_S

    @property
    def node_boot_s(self) -> float:
        """A rebooted or powered-on node answers SSH again, with a new boot id."""
        return NODE_BOOT_S

    @property
    def node_services_s(self) -> float:
        """A booted node's services run again (runit starts them at boot)."""
        return NODE_BOOT_S + RUNIT_RESTART_S

    @property
    def command_s(self) -> float:
        """A command over SSH on a node, or a `scripts/lab` command that waits as long."""
        return COMMAND_S

    @property
    def osha_start_s(self) -> float:
        """osha (the fault harness, a campaign) has started its actors."""
        return OSHA_START_S

    @property
    def preflight_s(self) -> float:
        """A campaign's preflight phase ([campaign] preflight_timeout_s in the tests)."""
        return PREFLIGHT_S

    def fault_s(self, hold_s: float = 0.0) -> float:
        """A scheduled fault (start_s = 1) is injected, or with ``hold_s``, reverted after its
        hold: each is one command over SSH (or one BMC or docker call)."""
        return 1.0 + self.command_s + hold_s

    @property
    def quiet_s(self) -> float:
        """How long a state must hold to count as steady: several heartbeats' worth."""
        return 4 * self.report_interval_s

    @property
    def server_boot_s(self) -> float:
        """A server boots to ACTIVE."""
        return SERVER_BOOT_S
