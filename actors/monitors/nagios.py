"""``nagios``: run Nagios-compatible check plugins, locally or on a node over SSH."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from actors.common.hosts import HostConfig, Node, SshConfig, credentials, resolve_nodes
from actors.common.ssh import SshCommandTimeout, SshError, SshPool, describe
from actors.monitors._kit import (
    Aggregator,
    MetricAggregator,
    ReportCadence,
    StateTracker,
    SummaryConfig,
)
from actors.monitors._nagios_output import PluginOutput, parse_output
from osha.errors import PluginError
from osha.messages.monitor import State
from osha.plugin import Finding, Monitor, PluginContext

__all__ = ["NagiosCheck", "NagiosConfig", "NagiosMonitor", "run_local"]

DEFAULT_PLUGIN_DIRS = (
    "/usr/lib/nagios/plugins",
    "/usr/lib64/nagios/plugins",
    "/usr/local/nagios/libexec",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class NagiosCheck:
    """One check: its target name, its command (argv), and where it runs."""

    target: str
    command: tuple[str, ...]
    node: str = ""  # run on this node over SSH; empty: on the osha host
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class NagiosConfig(SummaryConfig):
    """Settings of ``nagios``. See the class docstring for each key."""

    checks: tuple[NagiosCheck, ...]
    plugin_dirs: tuple[str, ...] = DEFAULT_PLUGIN_DIRS
    warning_is_down: bool = False
    max_parallel: int = 8
    inventory: str = ""
    hosts: dict[str, HostConfig] = field(default_factory=dict)
    ssh: SshConfig = field(default_factory=SshConfig)


@dataclass(frozen=True, slots=True)
class _Result:
    check: NagiosCheck
    started_mono_s: float
    elapsed_s: float
    state: State
    evidence: str
    output: PluginOutput | None


def run_local(argv: tuple[str, ...], timeout_s: float) -> tuple[int, str, bool]:
    """Run a plugin; return (exit status, stdout, timed out). The whole process group is
    killed on timeout, so a plugin's children cannot outlive it."""
    with subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "LC_ALL": "C"},
    ) as proc:
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            return -1, out.decode("utf-8", "replace"), True
    return proc.returncode, out.decode("utf-8", "replace"), False


class NagiosMonitor(Monitor[NagiosConfig]):
    """Runs Nagios-compatible check plugins every ``interval_s`` and reports their states.

    The plugin protocol: exit 0/1/2/3 = OK/WARNING/CRITICAL/UNKNOWN; the first output line
    is the status text, with performance data after ``|`` (parsed into numbers with their
    unit and emitted as ``monitor.metric`` summaries). OK is ``up``, CRITICAL ``down``,
    UNKNOWN (and any other exit status) ``unknown``; WARNING is ``up`` unless
    ``warning_is_down``. A plugin that outlives its ``timeout_s`` is killed and counted as
    CRITICAL, as Nagios Core does by default (``service_check_timeout_state=c``).

    Keys: ``checks`` (a list of ``{ target, command = [argv...], node, timeout_s }``; a bare
    command name is looked up in ``plugin_dirs`` then PATH; with ``node`` the check runs
    on that node over SSH), ``plugin_dirs``, ``warning_is_down``, ``max_parallel``,
    ``report_interval_s``, and for remote checks ``inventory``/``hosts``/``ssh`` as in
    ``host-services``. A check still running when its next turn comes is not started twice.
    Debian/Ubuntu: ``apt-get install monitoring-plugins-basic`` gives check_tcp, check_http,
    check_procs, check_ping and more.

    Profile::

        [[monitors]]
        id = "nagios"
        plugin = "nagios"
        interval_s = 1.0
        checks = [
            { target = "keystone-tcp", command = ["check_tcp", "-H", "10.231.0.11", "-p", "5000"] },
            { target = "procs@ctl-1", node = "ctl-1", command = ["check_procs", "-C", "sshd"] },
        ]
        inventory = "/var/lib/osha-lab/inventory.ini"

        [monitors.ssh]
        private_key = "/var/lib/osha-lab/id_ed25519"
        known_hosts = "/var/lib/osha-lab/known_hosts"
    """

    config_type = NagiosConfig

    def __init__(self, config: NagiosConfig, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        self.tracker = StateTracker(self.ctx)
        self.aggregator = Aggregator()
        self.metrics = MetricAggregator()
        self._nodes: dict[str, Node] = {}
        self._ssh: SshPool | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._running: dict[str, Future[_Result]] = {}
        self._lock = threading.Lock()
        self.reports = ReportCadence.of(config)

    # --- validation --------------------------------------------------------------------------

    def _resolve(self, command: tuple[str, ...]) -> tuple[str, ...] | None:
        """A local command with its program found, or None when it is not installed."""
        program = command[0]
        if "/" in program:
            return command if os.access(program, os.X_OK) else None
        for d in self.config.plugin_dirs:
            path = os.path.join(d, program)
            if os.access(path, os.X_OK):
                return (path, *command[1:])
        found = shutil.which(program)
        return (found, *command[1:]) if found else None

    def _remote_command(self, command: tuple[str, ...]) -> str:
        path = ":".join(self.config.plugin_dirs)
        return f"PATH={shlex.quote(path)}:$PATH LC_ALL=C exec {shlex.join(command)} 2>&1"

    def _problems(self) -> list[Finding]:
        """Configuration problems: empty commands, duplicate targets, unknown nodes."""
        cfg = self.config
        found: list[Finding] = []
        seen: set[str] = set()
        if not cfg.checks:
            found.append(Finding("nagios", False, "no checks configured", "add checks = [...]"))
        for c in cfg.checks:
            if not c.command:
                found.append(
                    Finding(c.target, False, "empty command", 'command = ["check_tcp", ...]')
                )
            if c.target in seen:
                found.append(
                    Finding(c.target, False, "duplicate target", "give each check its own target")
                )
            seen.add(c.target)
        remote = [c for c in cfg.checks if c.node]
        if remote:
            try:
                self._nodes = {n.name: n for n in resolve_nodes(cfg.inventory, cfg.hosts, cfg.ssh)}
                credentials(cfg.ssh)
            except PluginError as exc:
                return [*found, Finding("nagios", False, exc.message, exc.hint)]
            for c in remote:
                if c.node not in self._nodes:
                    found.append(
                        Finding(
                            c.target,
                            False,
                            f"unknown node {c.node!r}",
                            f"known: {', '.join(self._nodes)}",
                        )
                    )
        for c in cfg.checks:
            if c.command and not c.node and self._resolve(c.command) is None:
                found.append(
                    Finding(
                        c.target,
                        False,
                        f"plugin {c.command[0]!r} not found in "
                        f"{', '.join(cfg.plugin_dirs)} or PATH",
                        "install it (Debian: apt-get install monitoring-plugins-basic) or give its "
                        "absolute path",
                    )
                )
        return found

    # --- lifecycle -----------------------------------------------------------------------

    def setup(self) -> None:
        problems = [f for f in self._problems() if not f.ok]
        if problems:
            raise PluginError(
                "; ".join(f"{f.target}: {f.message}" for f in problems), hint=problems[0].hint
            )
        if self._nodes:
            self._ssh = SshPool(credentials(self.config.ssh))
        self._pool = ThreadPoolExecutor(
            max(1, self.config.max_parallel), thread_name_prefix="nagios"
        )

    def check(self) -> list[Finding]:
        problems = self._problems()
        if any(not f.ok for f in problems):
            return problems
        if self._nodes and self._ssh is None:
            self._ssh = SshPool(credentials(self.config.ssh))
        findings: list[Finding] = []
        for c in self.config.checks:
            if c.node:
                missing = self._remote_missing(c)
                if missing is not None:
                    findings.append(missing)
                    continue
            r = self._run(c)
            findings.append(Finding(c.target, r.state == "up", r.evidence))
        return findings

    def _remote_missing(self, c: NagiosCheck) -> Finding | None:
        assert self._ssh is not None
        node = self._nodes[c.node]
        path = ":".join(self.config.plugin_dirs)
        probe = f"PATH={shlex.quote(path)}:$PATH command -v {shlex.quote(c.command[0])}"
        try:
            result = self._ssh.exec(node.target, probe, timeout_s=c.timeout_s)
        except SshError as exc:
            return Finding(c.target, False, f"{c.node}: {describe(exc)}", exc.hint)
        if result.exit_status != 0:
            return Finding(
                c.target,
                False,
                f"plugin {c.command[0]!r} not found on {c.node}",
                "install it there (apt-get install monitoring-plugins-basic) or give its path",
            )
        return None

    def teardown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._ssh is not None:
            self._ssh.close()
        self._flush()

    def poll(self) -> None:
        if self._pool is None:
            raise PluginError("nagios: poll() before setup()")
        with self._lock:
            for c in self.config.checks:
                running = self._running.get(c.target)
                if running is not None and not running.done():
                    continue  # still running from an earlier turn: never twice at once
                future = self._pool.submit(self._run, c)
                future.add_done_callback(self._record)
                self._running[c.target] = future
        if self.reports.due():
            self._flush()

    def _flush(self) -> None:
        self.aggregator.flush(self.ctx)
        self.metrics.flush(self.ctx)

    # --- one check ------------------------------------------------------------------------

    def _record(self, future: Future[_Result]) -> None:
        if future.cancelled():
            return
        r = future.result()
        self.aggregator.add(r.check.target, ok=r.state == "up", latency_s=r.elapsed_s)
        if r.output is not None:
            for p in r.output.perfdata:
                if p.value is not None:
                    self.metrics.add(r.check.target, p.label, p.value, p.unit)
        self.tracker.emit(r.check.target, r.state, r.started_mono_s, r.evidence)

    def _state(self, out: PluginOutput) -> State:
        if out.status == 0 or (out.status == 1 and not self.config.warning_is_down):
            return State.UP
        if out.status in (1, 2):
            return State.DOWN
        return State.UNKNOWN

    def _run(self, c: NagiosCheck) -> _Result:
        start = time.monotonic()
        if c.node:
            assert self._ssh is not None
            try:
                res = self._ssh.exec(
                    self._nodes[c.node].target,
                    self._remote_command(c.command),
                    timeout_s=c.timeout_s,
                )
                status, text, timed_out = res.exit_status, res.stdout, False
            except SshCommandTimeout:
                status, text, timed_out = -1, "", True
            except SshError as exc:
                return _Result(
                    c,
                    start,
                    time.monotonic() - start,
                    State.UNKNOWN,
                    f"cannot run on {c.node}: {describe(exc)}",
                    None,
                )
        else:
            argv = self._resolve(c.command)
            if argv is None:
                return _Result(
                    c, start, 0.0, State.UNKNOWN, f"plugin {c.command[0]!r} not found", None
                )
            status, text, timed_out = run_local(argv, c.timeout_s)
        elapsed = time.monotonic() - start
        if timed_out:
            return _Result(
                c,
                start,
                elapsed,
                State.DOWN,
                f"CRITICAL: plugin timed out after {c.timeout_s} s (killed)",
                None,
            )
        out = parse_output(status, text)
        if status not in (0, 1, 2, 3):
            detail = out.text or "no output"
            return _Result(
                c, start, elapsed, State.UNKNOWN, f"plugin exited {status}: {detail[:200]}", out
            )
        return _Result(
            c, start, elapsed, self._state(out), f"{out.status_name}: {out.text[:200]}", out
        )
