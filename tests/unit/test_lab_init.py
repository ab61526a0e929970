"""`scripts/lab up` re-creates the kolla-style container only for a reason it names: not
because it runs from a second checkout of the same commit (the container's spec holds only
paths of the machine and of the lab directory), and with the reason in its log line.
``ensure_containers`` (scripts/labkit/lib/init.sh) runs in bash against a stub node whose
docker remembers the container's label."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INIT = ROOT / "scripts" / "labkit" / "lib" / "init.sh"

STUBS = r"""
set -euo pipefail
log() { echo "log: $*"; }
die() { echo "die: $*"; exit 1; }
wait_until() { return 0; }
build_image_tar() { :; }
node_dir() { echo "$LAB_DIR/nodes/$1"; }
node_ssh() {  # NODE COMMAND...: the node's docker, with the container's label in $LABEL
    shift
    echo "$*" >>"$CALLS"
    case "$1 ${2:-}" in
    "docker run") printf '%s' "${5#osha-lab.spec-args=}" >"$LABEL" ;;
    "docker inspect")
        [ -e "$LABEL" ] || return 1
        case "$*" in *osha-lab.spec-args*) cat "$LABEL" ;; *) echo running ;; esac ;;
    esac
}
source "$INIT"
ensure_containers
"""


def _up(tmp_path: Path, checkout: str, **env: str) -> tuple[str, list[str]]:
    """Run ensure_containers as `up` from ``checkout``; (its output, the docker commands)."""
    calls = tmp_path / "calls"
    calls.unlink(missing_ok=True)
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True, exist_ok=True)
    if not (venv / "python").exists():
        (venv / "python").symlink_to(sys.executable)
    lab = tmp_path / "lab"
    variables = {
        "INIT": str(INIT), "CALLS": str(calls), "LABEL": str(tmp_path / "label"),
        "VENV": str(venv.parent), "LAB_DIR": str(lab), "KIT": f"{lab}/kit",
        "DATA": f"{lab}/data", "LOGS": f"{lab}/logs", "ETC": f"{lab}/etc",
        "CTL_IP": "10.231.0.11", "KNOWN_HOSTS": f"{lab}/known_hosts",
        "LABKIT": f"{checkout}/scripts/labkit", "PATH": "/usr/bin:/bin",
    }  # fmt: skip
    variables.update(env)
    result = subprocess.run(["bash", "-c", STUBS], env=variables, capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    docker = [c for c in calls.read_text().splitlines() if c.startswith("docker r")]
    return result.stdout, docker


def test_a_healthy_container_is_not_re_created_from_a_second_checkout(tmp_path: Path) -> None:
    out, docker = _up(tmp_path, "/src/osha")
    assert "creating nova_compute on cmp-2: it does not exist" in out
    assert [c.split()[1] for c in docker] == ["rm", "run"]
    out, docker = _up(tmp_path, "/home/someone/osha-second-checkout")
    assert docker == []  # same spec: left running
    assert "creating" not in out


def test_a_re_created_container_names_what_changed(tmp_path: Path) -> None:
    _up(tmp_path, "/src/osha")
    out, docker = _up(tmp_path, "/src/osha", CTL_IP="10.231.0.99")
    assert [c.split()[1] for c in docker] == ["rm", "run"]
    assert "creating nova_compute on cmp-2: its spec changed: " in out
    assert "was LAB_CTL_IP=10.231.0.11; now LAB_CTL_IP=10.231.0.99" in out
