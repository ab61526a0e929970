"""A test role (``test-named``): the node named in the file ``role.file``, as a real resolver
would find it by asking the nodes; no file, or an empty one, is a cloud without the role."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from osha.inventory import Host
from osha.roles import Resolution, RoleError
from osha.ssh import SshConfig

__all__ = ["named"]


def named(candidates: Sequence[Host], options: Mapping[str, str], ssh: SshConfig) -> Resolution:
    path = Path(options.get("file", ""))
    node = path.read_text().strip() if path.is_file() else ""
    if not node:
        raise RoleError(f"no node has the role: {path} names none",
                        hint="write a node's name into it")  # fmt: skip
    return Resolution(node, f"named in {path.name}")
