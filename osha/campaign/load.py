"""The initial load: servers booted with openstacksdk before the baseline, deleted at the end.

Everything osha creates is named ``<name_prefix>-<run-id>-<n>`` and carries the metadata
``osha-run = <run-id>``; the teardown deletes the servers it recorded *and* any other server
with that name prefix and metadata (one that finished booting after a timeout, say), and
nothing else; ``spread``'s server group is ``<name_prefix>-<run-id>``, deleted by that name.
A census (:mod:`osha.campaign.census`) before the load and after the teardown shows that the
cloud was left as it was found.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from osha.campaign.census import META_KEY, census, ours
from osha.errors import OshaError, PluginError
from osha.messages.campaign import CampaignCensus, CampaignLoad
from osha.profile import LoadEntry, ServersLoadConfig

__all__ = [
    "InitialLoad",
    "LoadReport",
    "ServersLoad",
    "connect",
]

log = logging.getLogger("osha.campaign")

def connect(config: ServersLoadConfig) -> Any:
    """An openstacksdk connection to the load's cloud. PluginError with a hint on failure."""
    import openstack  # noqa: PLC0415 - openstacksdk is an optional dependency
    from openstack import exceptions as os_exc  # noqa: PLC0415 - same

    try:
        if config.clouds_yaml:
            # openstacksdk reads this variable; it is the documented way to name the file.
            os.environ["OS_CLIENT_CONFIG_FILE"] = config.clouds_yaml
        return openstack.connect(cloud=config.cloud)
    except os_exc.SDKException as exc:
        raise PluginError(
            f"cloud {config.cloud!r}: {exc}",
            hint="check the cloud name and clouds_yaml in [cloud]",
        ) from exc


@dataclass(slots=True)
class _Made:
    name: str
    server_id: str = ""
    volume_id: str = ""


class LoadReport(Protocol):
    """Told about every resource of the load (the orchestrator records ``campaign.load``)."""

    def __call__(
        self,
        *,
        action: str,
        kind: str,
        name: str,
        resource_id: str,
        elapsed_s: float,
        detail: str,
    ) -> None: ...


@dataclass(slots=True)
class ServersLoad:
    """Boots and deletes the servers of one ``[[load]] plugin = "servers"`` entry.

    ``report`` is told about every resource created or deleted, and every failure."""

    entry: LoadEntry
    run_id: str
    report: LoadReport
    made: list[_Made] = field(default_factory=list)

    @property
    def config(self) -> ServersLoadConfig:
        return self.entry.config

    def create(self, conn: Any) -> int:
        """Boot every server (``concurrency`` at a time) and wait until ACTIVE. Returns how
        many failed; each failure is reported, never retried."""
        from openstack import exceptions as os_exc  # noqa: PLC0415 - optional dependency

        cfg = self.config
        try:
            image = conn.image.find_image(cfg.image, ignore_missing=False)
            flavor = conn.compute.find_flavor(cfg.flavor, ignore_missing=False)
            networks = []
            if cfg.network:
                net = conn.network.find_network(cfg.network, ignore_missing=False)
                networks = [{"uuid": net.id}]
        except os_exc.SDKException as exc:
            raise PluginError(
                f"load {self.entry.id}: {exc}", hint="check flavor, image and network"
            ) from exc
        names = [f"{cfg.name_prefix}-{self.run_id}-{n}" for n in range(1, cfg.count + 1)]
        self.made = [_Made(name) for name in names]

        zones = {name: f"{cfg.zone}:{cfg.hosts[n % len(cfg.hosts)]}"
                 for n, name in enumerate(names)} if cfg.hosts else {}  # fmt: skip
        group_id = self._server_group(conn) if cfg.spread else None
        if cfg.spread and group_id is None:
            return len(names)  # no group, no spread: reported; nothing booted

        def boot(made: _Made) -> bool:
            began_s = time.monotonic()
            placed: dict[str, Any] = {"availability_zone": zones[made.name]} if zones else {}
            if group_id is not None:
                placed["scheduler_hints"] = {"group": group_id}
            try:
                server = conn.compute.create_server(
                    name=made.name,
                    image_id=image.id,
                    flavor_id=flavor.id,
                    networks=networks or "auto",
                    metadata={META_KEY: self.run_id},
                    **placed,
                )
                made.server_id = server.id
                conn.compute.wait_for_server(server, wait=int(cfg.boot_timeout_s), interval=1)
                if cfg.volume_gb:
                    self._attach_volume(conn, made, server)
            except Exception as exc:  # noqa: BLE001 - any SDK failure: reported as this server's
                self._say("failed", "server", made.name, made.server_id, began_s, _e(exc))
                return False
            self._say("created", "server", made.name, made.server_id, began_s, "")
            return True

        # spread: one at a time, so that nova's scheduler sees each server of the group placed
        # before it weighs the next (two schedulers weighing at once would both pick the
        # emptier host)
        workers = 1 if cfg.spread else cfg.concurrency
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="osha-load") as p:
            results = list(p.map(boot, self.made))
        return results.count(False)

    @property
    def group_name(self) -> str:
        """The ``spread`` server group's name: the prefix and run id, like the servers'."""
        return f"{self.config.name_prefix}-{self.run_id}"

    def _server_group(self, conn: Any) -> str | None:
        """Create the ``soft-anti-affinity`` server group of ``spread``; its id, or None
        (reported as a failure) when nova refuses it."""
        began_s = time.monotonic()
        try:
            group = conn.compute.create_server_group(
                name=self.group_name, policy="soft-anti-affinity"
            )
        except Exception as exc:  # noqa: BLE001 - any SDK failure: reported as the group's
            self._say("failed", "server_group", self.group_name, "", began_s,
                      f"{_e(exc)} (spread needs nova's server groups, API 2.15+)")  # fmt: skip
            return None
        self._say("created", "server_group", self.group_name, group.id, began_s, "")
        return str(group.id)

    def _say(  # noqa: PLR0917 - one call per resource event, read like a sentence
        self, action: str, kind: str, name: str, resource_id: str, began_s: float, detail: str
    ) -> None:
        self.report(
            action=action, kind=kind, name=name, resource_id=resource_id,
            elapsed_s=_since(began_s), detail=detail,
        )  # fmt: skip

    def _attach_volume(self, conn: Any, made: _Made, server: Any) -> None:
        volume = conn.block_storage.create_volume(
            name=f"{made.name}-vol", size=self.config.volume_gb, metadata={META_KEY: self.run_id}
        )
        made.volume_id = volume.id
        wait_s = int(self.config.boot_timeout_s)
        conn.block_storage.wait_for_status(volume, "available", wait=wait_s)
        conn.compute.create_volume_attachment(server, volume_id=volume.id)

    def delete(self, conn: Any) -> int:
        """Delete every server (and volume) this run created, recorded or found by name and
        metadata. Returns how many could not be deleted; each is reported."""
        from openstack import exceptions as os_exc  # noqa: PLC0415 - optional dependency

        cfg = self.config
        try:
            found = [
                s
                for s in conn.compute.servers(name=f"^{cfg.name_prefix}-{self.run_id}-")
                if ours(s, self.run_id, cfg.name_prefix)
            ]
        except os_exc.SDKException as exc:  # still delete what we recorded
            log.error("cannot list servers to find leftovers: %s", exc)
            found = []
        targets = {s.id: s.name for s in found}
        targets.update({m.server_id: m.name for m in self.made if m.server_id})
        failures = 0

        def drop(item: tuple[str, str]) -> bool:
            server_id, name = item
            began_s = time.monotonic()
            try:
                server = conn.compute.get_server(server_id)  # NotFound: gone already
                conn.compute.delete_server(server, ignore_missing=True)
                _wait_gone(conn, server_id, cfg.delete_timeout_s)
            except Exception as exc:  # noqa: BLE001 - reported as this server's failure
                if _not_found(exc):
                    self._say("deleted", "server", name, server_id, began_s, "gone")
                    return True
                self._say("delete_failed", "server", name, server_id, began_s, _e(exc))
                return False
            self._say("deleted", "server", name, server_id, began_s, "")
            return True

        with ThreadPoolExecutor(max_workers=cfg.concurrency, thread_name_prefix="osha-unload") as p:
            failures += list(p.map(drop, targets.items())).count(False)
        for made in self.made:
            if made.volume_id:
                failures += not self._delete_volume(conn, made)
        if cfg.spread:
            failures += self._delete_server_groups(conn)
        return failures

    def _delete_server_groups(self, conn: Any) -> int:
        """Delete the ``spread`` group(s) of this run, found by name (one left by a run that
        died after creating it is found too). Returns how many could not be deleted."""
        began_s = time.monotonic()
        try:
            groups = [g for g in conn.compute.server_groups() if g.name == self.group_name]
        except Exception as exc:  # noqa: BLE001 - reported as the group's failure
            self._say("delete_failed", "server_group", self.group_name, "", began_s, _e(exc))
            return 1
        failures = 0
        for group in groups:
            began_s = time.monotonic()
            try:
                conn.compute.delete_server_group(group, ignore_missing=True)
            except Exception as exc:  # noqa: BLE001 - reported as this group's failure
                self._say("delete_failed", "server_group", group.name, group.id, began_s, _e(exc))
                failures += 1
                continue
            self._say("deleted", "server_group", group.name, group.id, began_s, "")
        return failures

    def _delete_volume(self, conn: Any, made: _Made) -> bool:
        began_s = time.monotonic()
        try:
            conn.block_storage.delete_volume(made.volume_id, ignore_missing=True)
        except Exception as exc:  # noqa: BLE001 - reported as this volume's failure
            name = f"{made.name}-vol"
            self._say("delete_failed", "volume", name, made.volume_id, began_s, _e(exc))
            return False
        self._say("deleted", "volume", f"{made.name}-vol", made.volume_id, began_s, "")
        return True


#: how often the teardown asks nova whether a deleted server is gone
GONE_POLL_S = 1.0


def _wait_gone(conn: Any, server_id: str, timeout_s: float) -> None:
    """Until nova answers 404 for the server, at most ``timeout_s``. Not openstacksdk's
    ``wait_for_delete``: it returns as soon as the status reads ``DELETED``, while nova still
    lists the server for a moment (the census right after the teardown found one, stop 30)."""
    from openstack import exceptions as os_exc  # noqa: PLC0415 - optional dependency

    deadline_s = time.monotonic() + timeout_s
    while True:  # bounded by deadline_s
        try:
            conn.compute.get_server(server_id)
        except os_exc.NotFoundException:
            return
        if time.monotonic() >= deadline_s:
            raise TimeoutError(f"nova still shows server {server_id} {timeout_s:g} s after "
                               "its delete (delete_timeout_s)")  # fmt: skip
        time.sleep(GONE_POLL_S)


def _since(began_s: float) -> float:
    return round(time.monotonic() - began_s, 3)


def _e(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _not_found(exc: BaseException) -> bool:
    from openstack import exceptions as os_exc  # noqa: PLC0415 - optional dependency

    return isinstance(exc, os_exc.NotFoundException)


@contextmanager
def connection(config: ServersLoadConfig) -> Iterator[Any]:
    """A connection, closed afterwards."""
    conn = connect(config)
    try:
        yield conn
    finally:
        conn.close()


class InitialLoad:
    """The run's ``[[load]]`` entries: created before the baseline, deleted at the teardown,
    each resource reported (``campaign.load``), the run's resources counted before and after
    (``campaign.census``). ``record`` is the campaign recorder's ``record``; ``note`` puts a
    line in the live view."""

    def __init__(
        self,
        entries: tuple[LoadEntry, ...],
        run_id: str,
        record: Callable[..., Any],
        note: Callable[[str], None],
    ) -> None:
        self.entries = entries
        self.run_id = run_id
        self._record = record
        self._note = note
        self.loads: list[ServersLoad] = []

    def create(self, *, stopped: Callable[[], bool], resumed: bool = False) -> tuple[str, int]:
        """Boot every entry (a resumed run first deletes what the dead run left); returns a
        one-line detail and how many servers failed."""
        if not self.entries:
            return "no [[load]]", 0
        first = self.entries[0].config
        with connection(first) as conn:
            before = census(conn, self.run_id, first.name_prefix)
            self._record(CampaignCensus, when="before", counts=before.counts)
        failures = 0
        for entry in self.entries:
            load = ServersLoad(entry, self.run_id, self._reporter(entry.id))
            self.loads.append(load)
            with connection(entry.config) as conn:
                if resumed:  # the dead run's servers: deleted, then booted again
                    failures += load.delete(conn)
                failures += load.create(conn)
            if stopped():
                break
        created = sum(len(x.made) for x in self.loads) - failures
        return f"{created} servers created, {failures} failed", failures

    def adopt(self) -> None:
        """Take over every entry without booting anything (a resumed run that only ends: its
        servers are found by the run's tag at :meth:`delete`)."""
        self.loads = [
            ServersLoad(entry, self.run_id, self._reporter(entry.id)) for entry in self.entries
        ]

    def delete(self) -> list[str]:
        """Delete everything the run created, count what is left; the problems, if any."""
        problems: list[str] = []
        if not self.loads:
            return problems
        failures = 0
        for load in self.loads:
            try:
                with connection(load.config) as conn:
                    failures += load.delete(conn)
            except OshaError as exc:
                problems.append(f"load {load.entry.id} not deleted: {exc.message}")
        first = self.loads[0].config
        try:
            with connection(first) as conn:
                after = census(conn, self.run_id, first.name_prefix)
        except OshaError as exc:
            problems.append(f"census after teardown failed: {exc.message}")
            return problems
        self._record(CampaignCensus, when="after", counts=after.counts, leftovers=after.leftovers)
        if failures or after.leftovers:
            problems.append(
                f"{failures} deletes failed; left in the cloud: {', '.join(after.leftovers)}"
            )
        return problems

    def _reporter(self, load_id: str) -> LoadReport:
        def report(
            *, action: str, kind: str, name: str, resource_id: str, elapsed_s: float, detail: str
        ) -> None:
            self._record(
                CampaignLoad, load=load_id, kind=kind, action=action, name=name,
                resource_id=resource_id, elapsed_s=elapsed_s, detail=detail,
            )  # fmt: skip
            if action not in ("created", "deleted"):
                self._note(f"load {action}: {kind} {name} {detail}")

        return report
