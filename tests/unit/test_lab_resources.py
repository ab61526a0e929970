"""`scripts/lab status --resources` (scripts/labkit/resources.py): the lab's memory and CPU,
read from /proc. The accounting is checked on a hand-made /proc whose figures are known; the
script itself once against this machine's real /proc, on a process tree the test owns."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

RESOURCES = Path(__file__).resolve().parents[2] / "scripts" / "labkit" / "resources.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lab_resources", RESOURCES)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lab_resources"] = module
    spec.loader.exec_module(module)
    return module


res = _load()


def _proc(
    root: Path, pid: int, ppid: int, *, ticks: tuple[int, int, int, int], mem_kib: tuple[int, int]
) -> None:
    d = root / str(pid)
    d.mkdir(parents=True)
    utime, stime, cutime, cstime = ticks
    # fields 3.. of /proc/PID/stat; comm with a space and a ')' as real ones may have
    times = [str(utime), str(stime), str(cutime), str(cstime)]
    rest = ["S", str(ppid), *["0"] * 9, *times, *["0"] * 5]
    (d / "stat").write_text(f"{pid} (we ird) x) {' '.join(rest)}\n")
    rss_kib, pss_kib = mem_kib
    (d / "smaps_rollup").write_text(
        f"00400000-7ffd [rollup]\nRss:            {rss_kib} kB\nPss:            {pss_kib} kB\n"
    )


def test_a_tree_is_its_root_and_descendants_and_its_cpu_survives_a_reaped_child(
    tmp_path: Path,
) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    # node init 10 -> service 11 -> worker 12; 20 is another node's init; 30 is not the lab's
    _proc(before, 10, 1, ticks=(5, 5, 0, 0), mem_kib=(100, 50))
    _proc(before, 11, 10, ticks=(100, 20, 0, 0), mem_kib=(1000, 600))
    _proc(before, 12, 11, ticks=(40, 10, 0, 0), mem_kib=(2000, 900))
    _proc(before, 20, 1, ticks=(1, 1, 0, 0), mem_kib=(10, 10))
    _proc(before, 30, 1, ticks=(999, 999, 0, 0), mem_kib=(5000, 5000))
    # in the window: 11 used 30 more ticks; 12 used 50 more, exited, and 11 reaped it
    # (its 50 + 50 ticks now in 11's cutime + cstime); 13 was born under 10 and used 7
    _proc(after, 10, 1, ticks=(5, 5, 0, 0), mem_kib=(100, 50))
    _proc(after, 11, 10, ticks=(120, 30, 80, 20), mem_kib=(1000, 600))
    _proc(after, 13, 10, ticks=(4, 3, 0, 0), mem_kib=(300, 200))
    _proc(after, 20, 1, ticks=(1, 1, 0, 0), mem_kib=(10, 10))
    _proc(after, 30, 1, ticks=(5000, 5000, 0, 0), mem_kib=(5000, 5000))

    lines = res.report(
        {"ctl-1": 10, "cmp-1": 20, "bmc": 99},
        res.snapshot(before),
        res.snapshot(after),
        proc=after,
        window_s=10.0,
        ticks_per_s=100,
    )
    # ctl-1: (10 + 150 + 100 + 7) - (10 + 120 + 50) = 87 ticks = 0.87 s of 10 s
    assert lines[0] == "    ctl-1: 3 process(es), PSS 0.00 GiB, RSS 0.00 GiB, CPU 8.7 % of a core"
    assert lines[1] == "    cmp-1: 1 process(es), PSS 0.00 GiB, RSS 0.00 GiB, CPU 0.0 % of a core"
    assert lines[2] == "    bmc: gone (pid 99)"
    assert lines[3].startswith(
        "    lab: 4 process(es), PSS 0.00 GiB (budget 8 GiB), RSS 0.00 GiB, CPU 8.7 %"
    )
    rss = res.usage(after, res.snapshot(after), 10, memory=True)
    assert (rss.processes, rss.rss_kib, rss.pss_kib) == (3, 1400, 850)  # 30 is not counted


def test_bad_roots_and_windows_are_refused() -> None:
    with pytest.raises(SystemExit, match="'ctl-1' is not NAME=PID"):
        res.parse_roots(["ctl-1"])
    with pytest.raises(SystemExit, match="'ctl-1=x' is not NAME=PID"):
        res.parse_roots(["ctl-1=x"])
    done = subprocess.run(
        [sys.executable, str(RESOURCES), "0", "a=1"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "WINDOW_S must be > 0" in done.stderr


def test_the_script_measures_a_real_process_tree() -> None:
    # a shell with one child: the tree of the shell is two processes ("started" comes after
    # the fork, so both exist once it is read)
    tree = subprocess.Popen(
        ["sh", "-c", "sleep 60 & echo started; wait"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert tree.stdout is not None
        assert tree.stdout.readline() == "started\n"
        done = subprocess.run(
            [sys.executable, str(RESOURCES), "0.2", f"node={tree.pid}"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        subprocess.run(["pkill", "-P", str(tree.pid)], check=False, timeout=10)
        tree.kill()
        tree.wait(timeout=10)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "resources (CPU over 0.2 s, memory at its end):"
    assert lines[1].startswith("    node: 2 process(es), PSS "), lines
    assert lines[2].startswith("    lab: 2 process(es), PSS "), lines
