"""Every installed plugin, checked at once: a kebab-case name, a docstring with a profile
example that validates, a typed frozen config, and the right base class."""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path

import pytest

from osha import profile, registry
from osha.errors import PluginError, UnknownPluginError
from osha.messages import Sample
from osha.plugin import (
    EmptyConfig,
    Finding,
    Kind,
    Plugin,
    RequestTimeout,
    check_offline,
    offline,
)

ALL = [(kind, name) for kind in registry.GROUPS for name in sorted(registry.available(kind))]


def _example(doc: str) -> str:
    match = re.search(r"Profile::\n\n((?:[ \t]+.*\n?|\n)+)", doc)
    assert match, "the docstring needs a 'Profile::' block with an indented TOML example"
    return textwrap.dedent(match.group(1))


def test_each_kind_has_a_builtin_plugin() -> None:
    for kind in registry.GROUPS:
        assert registry.available(kind), f"no {kind} plugin is installed"


@pytest.mark.parametrize(("kind", "name"), ALL, ids=[f"{k}:{n}" for k, n in ALL])
def test_plugin_is_documented_typed_and_its_example_validates(
    kind: Kind, name: str, tmp_path: Path
) -> None:
    cls = registry.load(kind, name)
    assert cls.__doc__, f"{name} has no docstring"
    assert cls.__name__.endswith(kind.capitalize()), (
        f"{cls.__name__} should end in {kind.capitalize()}"
    )
    config_type = cls.config_type
    assert dataclasses.is_dataclass(config_type)
    assert config_type.__dataclass_params__.frozen, f"{name}'s config must be frozen"  # type: ignore[attr-defined]
    example = _example(cls.__doc__)
    prof = profile.parse(example, path=tmp_path / "example.toml")
    assert [a.plugin for a in prof.actors] == [name]


def test_unknown_plugin_error_lists_known_plugins() -> None:
    with pytest.raises(UnknownPluginError) as info:
        registry.load("monitor", "no-such-monitor")
    assert "ticker" in str(info.value)
    assert info.value.exit_code == 2


def test_duplicate_plugin_names_name_both_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    eps = [
        EntryPoint("twin", "pkg_a.mod:TwinMonitor", "osha.monitors"),
        EntryPoint("twin", "pkg_b.mod:TwinMonitor", "osha.monitors"),
    ]
    # Stand-in for two installed distributions: installing two packages in a unit test is
    # slow, and the check only reads entry-point metadata.
    monkeypatch.setattr(registry, "entry_points", lambda group: eps)
    registry.available.cache_clear()
    try:
        with pytest.raises(PluginError) as info:
            registry.available("monitor")
    finally:
        registry.available.cache_clear()
    text = str(info.value)
    assert "pkg_a.mod:TwinMonitor" in text
    assert "pkg_b.mod:TwinMonitor" in text


class _Probe(Plugin[EmptyConfig]):
    """Records what the offline context gives it; its check raises on demand."""

    kind = "monitor"
    torn_down = 0

    def check(self) -> list[Finding]:
        sample = self.ctx.emit(Sample, target="t", count=1, failures=0)
        if self.ctx.actor_id == "raises":
            raise PluginError("the target is gone")
        return [Finding(sample.target, True, f"{sample.sender} seed {self.ctx.seed}")]

    def teardown(self) -> None:
        type(self).torn_down += 1


def test_check_offline_builds_checks_and_tears_down_even_when_the_check_raises() -> None:
    _Probe.torn_down = 0
    [finding] = check_offline(_Probe, EmptyConfig(), actor_id="api", seed=7)
    assert (finding.target, finding.message) == ("t", "api seed 7")
    with pytest.raises(PluginError, match="the target is gone"):
        check_offline(_Probe, EmptyConfig(), actor_id="raises", seed=7)
    assert _Probe.torn_down == 2


def test_an_offline_plugin_records_nothing_and_cannot_request() -> None:
    plugin = offline(_Probe, EmptyConfig(), actor_id="api", seed=3)
    assert isinstance(plugin, _Probe)
    assert not plugin.ctx.stopping.is_set()
    with pytest.raises(RequestTimeout, match="cannot send requests"):
        plugin.ctx.request(Sample, timeout_s=0.1, target="t")
