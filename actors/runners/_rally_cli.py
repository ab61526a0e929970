"""The Rally command line, driven as a subprocess (never Rally's internals).

Every call passes ``--config-file`` files: the operator's own (optional) and then the one the
runner writes (later files win), which pins the database and ``raw_result_chunk_size = 1``.
The environment is made from a clouds.yaml entry: its credentials go to ``rally env create
--from-sysenv`` as ``OS_*`` variables of that one subprocess (never a file, never a log).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from osha.errors import PluginError
from osha.redaction import redact_text
from osha.rundir import PRIVATE_UMASK

__all__ = ["RallyCli", "RallyTask", "cloud_environ"]

_UUID = re.compile(r"Task .*?([0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}): started")
_TAIL_LINES = 40


def cloud_environ(cloud: str, clouds_yaml: str | None) -> dict[str, str]:
    """``OS_*`` variables for a clouds.yaml entry (openstacksdk reads the file, so every
    clouds.yaml feature works: secure.yaml, profiles, env overrides)."""
    from openstack import config as os_config  # noqa: PLC0415 - optional dependency
    from openstack import exceptions as os_exc  # noqa: PLC0415 - optional dependency

    files = [clouds_yaml] if clouds_yaml else None
    try:
        region = os_config.OpenStackConfig(config_files=files).get_one(cloud=cloud)
    except os_exc.ConfigException as exc:
        raise PluginError(
            f"cloud {cloud!r}: {exc}", hint="check the cloud name and clouds_yaml in [cloud]"
        ) from exc
    auth: Mapping[str, Any] = region.config.get("auth", {})
    env = {f"OS_{key.upper()}": str(value) for key, value in auth.items() if value is not None}
    if region.region_name:
        env["OS_REGION_NAME"] = region.region_name
    env["OS_IDENTITY_API_VERSION"] = str(region.config.get("identity_api_version", "3"))
    env["OS_INTERFACE"] = str(region.config.get("interface", "public"))
    if region.config.get("cacert"):
        env["OS_CACERT"] = str(region.config["cacert"])
    if not region.config.get("verify", True):
        env["OS_INSECURE"] = "True"
    return env


@dataclass(slots=True)
class RallyTask:
    """A running ``rally task start``: its process, its task uuid once Rally printed it, and
    the tail of its output."""

    proc: subprocess.Popen[str]
    uuid: str = ""
    tail: list[str] | None = None
    started: threading.Event | None = None

    def output_tail(self) -> str:
        return redact_text("".join(self.tail or [])[-4000:])


class RallyCli:
    """``rally`` with fixed config files and environment name."""

    def __init__(
        self, binary: str, config_files: Sequence[Path], env_name: str, log: IO[str] | None
    ) -> None:
        self.binary = binary
        self.config_files = list(config_files)
        self.env_name = env_name
        self._log = log

    def _argv(self, *args: str) -> list[str]:
        argv = [self.binary]
        for path in self.config_files:
            argv += ["--config-file", str(path)]
        return [*argv, *args]

    def call(
        self, *args: str, timeout_s: float, extra_env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run one rally command to its end. PluginError if it cannot be run at all."""
        env = {**os.environ, **(extra_env or {})}
        try:
            return subprocess.run(
                self._argv(*args),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env=env,
                check=False,
                stdin=subprocess.DEVNULL,
                umask=PRIVATE_UMASK,  # Rally's database and log: private files
            )
        except FileNotFoundError:
            raise PluginError(
                f"the Rally binary {self.binary!r} is not there",
                hint="install rally and rally-openstack, or set rally_bin = \"/path/to/rally\"",
            ) from None
        except subprocess.TimeoutExpired as exc:
            raise PluginError(
                f"`rally {' '.join(args[:2])}` did not finish within {timeout_s:g} s",
                hint="is the cloud (or Rally's database) answering?",
            ) from exc

    def check(self, result: subprocess.CompletedProcess[str], what: str) -> str:
        """The output of a successful call; PluginError with its tail otherwise."""
        out = result.stdout + result.stderr
        if result.returncode != 0:
            tail = redact_text("\n".join(out.strip().splitlines()[-8:]))
            raise PluginError(
                f"{what} failed (rally exit code {result.returncode}): {tail}",
                hint="run the same rally command by hand to see everything",
            )
        return out

    def env_exists(self, timeout_s: float) -> bool:
        result = self.call("env", "show", "--env", self.env_name, "--json", timeout_s=timeout_s)
        return result.returncode == 0

    def validate(self, task: Path, args: Mapping[str, Any], timeout_s: float) -> str:
        result = self.call(
            "task", "validate", "--task", str(task), "--task-args", json.dumps(dict(args)),
            "--env", self.env_name, timeout_s=timeout_s,
        )  # fmt: skip
        return self.check(result, f"rally task validate {task.name}")

    def start(self, task: Path, args: Mapping[str, Any], tag: str) -> RallyTask:
        """``rally task start`` in the background; its uuid is read from its output."""
        argv = self._argv(
            "task", "start", "--task", str(task), "--task-args", json.dumps(dict(args)),
            "--env", self.env_name, "--tag", tag, "--no-use",
        )  # fmt: skip
        try:
            proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                start_new_session=True,  # our signals are ours; rally gets its own group
                umask=PRIVATE_UMASK,
            )
        except FileNotFoundError:
            raise PluginError(
                f"the Rally binary {self.binary!r} is not there",
                hint="install rally and rally-openstack, or set rally_bin = \"/path/to/rally\"",
            ) from None
        task_run = RallyTask(proc, tail=[], started=threading.Event())
        threading.Thread(
            target=self._read_output, args=(task_run,), name="rally-output", daemon=True
        ).start()
        return task_run

    def _read_output(self, task_run: RallyTask) -> None:
        assert task_run.proc.stdout is not None
        assert task_run.tail is not None
        assert task_run.started is not None
        for line in task_run.proc.stdout:
            task_run.tail.append(line)
            del task_run.tail[:-_TAIL_LINES]
            if self._log is not None:
                self._log.write(redact_text(line))
                self._log.flush()
            if not task_run.uuid:
                match = _UUID.search(line)
                if match:
                    task_run.uuid = match.group(1)
                    task_run.started.set()
        task_run.started.set()  # the process ended: nobody waits for a uuid any more

    def abort(self, uuid: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
        """``rally task abort`` (waits until Rally has stopped the task)."""
        return self.call("task", "abort", "--uuid", uuid, timeout_s=timeout_s)
