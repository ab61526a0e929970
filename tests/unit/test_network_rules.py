"""The ``network`` disruptor's generated text, exactly: nft tables for each form (management
protection first, ports, drop vs reject, loss), the table's name, peers, the revert's
idempotence (with a fake ``nft`` that keeps its tables in files), and netem's commands."""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

import pytest

from actors.disruptors import _nft, _tc
from osha.testing import wait_for

MGMT = _nft.Management("10.231.0.1", 22)
T = "osha_cut_0_x"


def test_partition_drop_both_ways_management_and_loopback_first() -> None:
    rules = _nft.Rules(peers=("10.231.0.11", "10.231.0.12"), management=MGMT)
    assert _nft.ruleset(T, rules) == """\
table inet osha_cut_0_x {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tip saddr 10.231.0.1 tcp dport 22 accept
\t\tiifname "lo" accept
\t\tip saddr { 10.231.0.11, 10.231.0.12 } drop
\t}
\tchain output {
\t\ttype filter hook output priority filter; policy accept;
\t\tip daddr 10.231.0.1 tcp sport 22 accept
\t\tip daddr { 10.231.0.11, 10.231.0.12 } drop
\t}
}
"""


def test_partition_reject_on_ports_lets_its_own_replies_out() -> None:
    rules = _nft.Rules(peers=("10.0.0.0/24",), ports=(3306, 4567), reject=True, management=MGMT)
    match_in = "ip saddr 10.0.0.0/24 meta l4proto { tcp, udp }"
    match_out = "ip daddr 10.0.0.0/24 meta l4proto { tcp, udp }"
    tcp, icmp = "meta l4proto tcp reject with tcp reset", "reject with icmpx type admin-prohibited"
    assert _nft.ruleset(T, rules).splitlines()[3:] == [
        "\t\tip saddr 10.231.0.1 tcp dport 22 accept",
        '\t\tiifname "lo" accept',
        f"\t\t{match_in} th dport {{ 3306, 4567 }} {tcp}",
        f"\t\t{match_in} th dport {{ 3306, 4567 }} {icmp}",
        f"\t\t{match_in} th sport {{ 3306, 4567 }} {tcp}",
        f"\t\t{match_in} th sport {{ 3306, 4567 }} {icmp}",
        "\t}",
        "\tchain output {",
        "\t\ttype filter hook output priority filter; policy accept;",
        "\t\tip daddr 10.231.0.1 tcp sport 22 accept",
        "\t\tip daddr 10.0.0.0/24 tcp flags & rst == rst accept",
        "\t\tip daddr 10.0.0.0/24 icmp type destination-unreachable accept",
        f"\t\t{match_out} th dport {{ 3306, 4567 }} {tcp}",
        f"\t\t{match_out} th dport {{ 3306, 4567 }} {icmp}",
        f"\t\t{match_out} th sport {{ 3306, 4567 }} {tcp}",
        f"\t\t{match_out} th sport {{ 3306, 4567 }} {icmp}",
        "\t}",
        "}",
    ]


def test_loss_drops_a_share_of_what_the_node_receives() -> None:
    assert _nft.ruleset(T, _nft.Rules(loss_pct=30, management=MGMT)) == """\
table inet osha_cut_0_x {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tip saddr 10.231.0.1 tcp dport 22 accept
\t\tiifname "lo" accept
\t\tnumgen random mod 100 lt 30 drop
\t}
}
"""
    # per peer and port: a packet from port 3306 to port 3306 is drawn once, not twice
    text = _nft.ruleset(T, _nft.Rules(peers=("10.0.0.5",), ports=(3306,), loss_pct=5))
    assert text.splitlines()[3:6] == [
        '\t\tiifname "lo" accept',
        "\t\tip saddr 10.0.0.5 meta l4proto { tcp, udp } th dport 3306 numgen random mod 100 "
        "lt 5 drop",
        "\t\tip saddr 10.0.0.5 meta l4proto { tcp, udp } th sport 3306 th dport != 3306 "
        "numgen random mod 100 lt 5 drop",
    ]


def test_ipv6_peers_and_management_get_their_own_family() -> None:
    rules = _nft.Rules(peers=("fd00::5", "10.0.0.5"), management=_nft.Management("fd00::1", 2222))
    lines = _nft.ruleset(T, rules).splitlines()
    assert lines[3] == "\t\tip6 saddr fd00::1 tcp dport 2222 accept"
    assert lines[5:7] == ["\t\tip6 saddr fd00::5 drop", "\t\tip saddr 10.0.0.5 drop"]
    assert "\t\tip6 daddr fd00::1 tcp sport 2222 accept" in lines


def test_without_management_protection_nothing_is_accepted_but_loopback() -> None:
    lines = _nft.ruleset(T, _nft.Rules(peers=("10.0.0.5",))).splitlines()
    assert [line for line in lines if line.endswith("accept") and "policy" not in line] == [
        '\t\tiifname "lo" accept'
    ]


def test_a_partition_without_peers_or_a_bad_share_is_refused() -> None:
    with pytest.raises(ValueError, match="needs peers"):
        _nft.ruleset(T, _nft.Rules())
    with pytest.raises(ValueError, match="0-100"):
        _nft.ruleset(T, _nft.Rules(loss_pct=101))


def test_table_names_are_nft_identifiers_unique_per_run() -> None:
    a = _nft.table_name("cut-compute/0/0a1b2c3d4e5f")
    b = _nft.table_name("cut-compute/0/ffffffffffff")
    assert a.startswith("osha_cut_compute_0_")
    assert a != b
    assert all(c.isalnum() or c == "_" for c in a)
    assert len(_nft.table_name("x" * 300 + "/0/aa")) <= 56


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("10.0.0.1/24", "host bits set; did you mean 10.0.0.0/24"),
        ("10.0.0.0/33", "is not a CIDR"),
        ("ctl-1", "is not an IP address"),
        ("300.1.1.1", "is not an IP address"),
    ],
)
def test_bad_peers_say_why(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        _nft.parse_peer(text)


def test_peers_are_canonical() -> None:
    assert _nft.parse_peer(" 10.0.0.0/24 ") == "10.0.0.0/24"
    assert _nft.parse_peer("10.0.0.7/32") == "10.0.0.7"
    assert _nft.parse_peer("FD00:0::1") == "fd00::1"


FAKE_NFT = r"""#!/bin/sh
# A stand-in for nft: each table is a file "FAMILY.NAME" in $dir; every call is logged.
dir=@DIR@
echo "$*" >> "$dir.log"
case "$1 $2" in
"list tables") for f in "$dir"/*; do [ -e "$f" ] || continue; n=${f##*/};
  echo "table ${n%%.*} ${n#*.}"; done ;;
"list table") cat "$dir/$3.$4" 2>/dev/null || { echo "Error: No such file" >&2; exit 1; } ;;
"delete table") rm "$dir/$3.$4" 2>/dev/null || { echo "Error: No such file" >&2; exit 1; } ;;
"-f "*) if [ "$2" = - ]; then text=$(cat); else text=$(cat "$2") || exit 1; fi
  name=$(printf '%s\n' "$text" | sed -n 's/^table \([a-z0-9]*\) \([A-Za-z0-9_]*\) {$/\1.\2/p')
  printf '%s\n' "$text" > "$dir/$name" ;;
"-c -f") grep -q "^table inet [A-Za-z0-9_]* {$" "$3" ;;
"--version ") echo "nftables v0 (fake)" ;;
*) echo "fake nft: unsupported: $*" >&2; exit 2 ;;
esac
"""


def fake_nft(tmp_path: Path) -> tuple[Path, Path]:
    """A fake nft and its table folder (with a foreign table planted in it)."""
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "inet.foreign").write_text("table inet foreign { }\n")
    nft = tmp_path / "nft"
    nft.write_text(FAKE_NFT.replace("@DIR@", str(tables)))
    nft.chmod(0o755)
    return nft, tables


def sh(script: str) -> tuple[int, str]:
    p = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30,
                       check=False)  # fmt: skip
    return p.returncode, p.stdout + p.stderr


def test_apply_replaces_its_own_table_and_revert_is_idempotent(tmp_path: Path) -> None:
    nft, tables = fake_nft(tmp_path)
    text = _nft.ruleset(T, _nft.Rules(peers=("10.0.0.5",), management=MGMT))
    script = _nft.apply_script(T, text, nft=str(nft))
    assert script.splitlines()[2:5] == [f"table inet {T}", f"delete table inet {T}",
                                        f"table inet {T} {{"]  # fmt: skip
    assert sh(script) == (0, "")
    assert (tables / f"inet.{T}").read_text().endswith(text)
    revert = _nft.revert_command(T, nft=str(nft))
    assert sh(revert) == (0, f"deleted table inet {T}\n")
    assert sh(revert) == (0, f"table inet {T} already gone\n")  # again: success, nothing done
    assert sorted(p.name for p in tables.iterdir()) == ["inet.foreign"]
    calls = (tmp_path / "tables.log").read_text().splitlines()
    assert all(T in call or call == "-f -" for call in calls), calls  # never another table


def test_a_deferred_apply_lands_later_unless_the_revert_took_it_back(tmp_path: Path) -> None:
    """``protect_management = false``: the table goes in after the SSH command returned; a
    revert before that takes the pending apply back, so it never lands after the revert."""
    nft, tables = fake_nft(tmp_path)
    pending = tmp_path / "pending"
    text = _nft.ruleset(T, _nft.Rules(peers=("10.0.0.5",)))
    script = _nft.apply_script(T, text, nft=str(nft), defer_s=1.5, pending_dir=str(pending))
    revert = _nft.revert_command(T, nft=str(nft), pending_dir=str(pending))
    assert sh(script) == (0, "applies in 1.5 s\n")
    assert not (tables / f"inet.{T}").exists()  # not yet: the command returned first
    wait_for((tables / f"inet.{T}").exists, timeout_s=10, what="the deferred apply")
    wait_for(lambda: not any(pending.iterdir()), timeout_s=10, what="its files removed")
    assert sh(revert) == (0, f"deleted table inet {T}\n")
    assert sh(script) == (0, "applies in 1.5 s\n")
    assert sh(revert) == (0, f"table inet {T} already gone\n")  # before it applied
    wait_for(lambda: not any(pending.iterdir()), timeout_s=10, what="the applier's end")
    assert sorted(p.name for p in tables.iterdir()) == ["inet.foreign"]  # it never landed
    bad = _nft.apply_script(T, "nonsense\n", nft=str(nft), defer_s=1.5, pending_dir=str(pending))
    assert sh(bad)[0] == 1  # checked now (nft -c): a bad table fails the inject


def test_check_says_what_is_missing(tmp_path: Path) -> None:
    nft, _ = fake_nft(tmp_path)
    assert sh(_nft.check_script(nft=str(nft))) == (0, "nftables v0 (fake)\n")
    rc, out = sh(_nft.check_script(nft=str(tmp_path / "none")))
    assert (rc, out) == (_nft.NFT_MISSING, "nft is missing (install the nftables package)\n")


def test_qdisc_commands_never_replace_a_foreign_qdisc() -> None:
    add = _tc.add_command("eth0", _tc.netem(100, 20))
    assert add.splitlines()[-1] == "tc qdisc replace dev eth0 root handle a5a1: netem delay " \
        "100ms 20ms"
    assert f"exit {_tc.FOREIGN_QDISC}" in add
    assert _tc.add_command("eth 1", _tc.netem(5)).splitlines()[-1].endswith(
        "dev 'eth 1' root handle a5a1: netem delay 5ms")
    assert _tc.tbf(8000) == "tbf rate 8000kbit burst 50000 latency 100ms"
    assert _tc.tbf(64) == "tbf rate 64kbit burst 4096 latency 100ms"  # at least a few MTUs
    assert _tc.del_command("eth0") == (
        'if tc qdisc show dev eth0 root | grep -q "^qdisc [a-z_]* a5a1: root"; then tc qdisc '
        "del dev eth0 root && echo 'removed the qdisc of osha from eth0'; else echo 'no qdisc "
        "of osha on eth0'; fi"
    )


@pytest.mark.parametrize(
    ("root", "rc"),
    [
        ("qdisc noqueue 0: root refcnt 2", 0),
        ("qdisc netem a5a1: root refcnt 2 limit 1000 delay 100ms", 0),
        ("qdisc htb 1: root refcnt 2 r2q 10 default 0", _tc.FOREIGN_QDISC),
    ],
)
def test_netem_add_runs_only_over_the_default_or_its_own_qdisc(
    tmp_path: Path, root: str, rc: int
) -> None:
    tc = tmp_path / "tc"
    tc.write_text(f'#!/bin/sh\n[ "$2" = show ] && echo "{root}"\necho "$*" >> {tmp_path}/log\n')
    tc.chmod(0o755)
    code, _ = sh(f"PATH={tmp_path}:$PATH\n" + _tc.add_command("eth0", _tc.tbf(1000)))
    assert code == rc
    replaced = "replace dev eth0" in (tmp_path / "log").read_text()
    assert replaced is (rc == 0)


@pytest.mark.parametrize(
    ("setup", "rc"),
    [
        ("# CONFIG_NET_SCH_NETEM is not set", _tc.NO_NETEM),  # the lab's kernel
        ("CONFIG_NET_SCH_NETEM=y", 0),
        ("CONFIG_NET_SCH_NETEM=m", 0),
        ("loaded", 0),
        ("module", 0),
    ],
)
def test_netem_check_reads_the_kernel_and_refuses_cleanly(
    tmp_path: Path, setup: str, rc: int
) -> None:
    release = os.uname().release
    (tmp_path / "proc").mkdir()
    config = setup if setup.startswith(("#", "CONFIG")) else "# CONFIG_NET_SCH_NETEM is not set"
    (tmp_path / "proc" / "config.gz").write_bytes(gzip.compress(f"{config}\n".encode()))
    if setup == "loaded":
        (tmp_path / "sys" / "module" / "sch_netem").mkdir(parents=True)
    if setup == "module":
        tree = tmp_path / "lib" / "modules" / release / "kernel" / "net" / "sched"
        tree.mkdir(parents=True)
        (tree / "sch_netem.ko.xz").write_bytes(b"")
    code, out = sh(_tc.check_script(root=str(tmp_path)))
    assert code == rc, out
    if rc:
        assert out == f"netem not available (kernel {release} has no sch_netem)\n"
