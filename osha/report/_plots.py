"""The HTML report's figures, drawn by matplotlib and embedded as inline SVG.

- the **timeline**: one lane per monitored target (up, down/unreachable, unknown), the fault
  windows (inject → revert) as labelled shaded bands across every lane, and each VIP move
  (``monitor.vip_moved``) as a narrow blue band from the old holder's last sighting with the
  address to the new holder's first, with a line at the latter, labelled
  ``VIP 10.0.0.10 ctl-1 → ctl-2``;
- the **runner plot**: each runner's operation durations by start time (failed iterations as
  red crosses), its baseline threshold (mean + k·sd), its degraded stretches, and the same
  fault bands;
- the **soak plot** (a soak only): the time to recover (MTTR) per cycle, the longest of its
  faults' target impacts, with its least-squares trend (cycles with a target that never
  recovered as red triangles on top, failed cycles circled in red), and osha's main-process RSS
  per cycle below it.

Text stays text in the SVG (``svg.fonttype = none``) so lane labels are searchable in the page,
and every band and lane carries an ``id`` (``fault-band-<lease>``, ``vip-move-<n>``,
``lane-<n>-<state>``). The
output is deterministic (fixed hash salt, no date). Large runs are thinned for drawing only
(``AnalysisOptions.max_plot_points`` good iterations per runner, evenly strided; failures kept).
"""

from __future__ import annotations

import io
import re
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from osha.analysis import Analysis, FaultReport, SoakSummary, VipMove

__all__ = ["lane_labels", "runner_svg", "soak_svg", "timeline_svg"]

COLOURS = {"up": "#2e9d4f", "down": "#d62728", "unreachable": "#8b0000", "unknown": "#b0b0b0"}


def _rc() -> Any:
    """Text as text, stable ids, no date: the same analysis draws the same SVG."""
    return plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "osha", "font.size": 9})


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _bands(ax: Axes, faults: tuple[FaultReport, ...], end_s: float, label_y: float) -> None:
    for n, f in enumerate(x for x in faults if x.injected_s is not None):
        start = f.injected_s or 0.0
        stop = f.reverted_s if f.reverted_s is not None else end_s
        band = ax.axvspan(start, max(stop, start + end_s * 0.002), color="#ff7f0e", alpha=0.18,
                          lw=0)  # fmt: skip
        band.set_gid(f"fault-band-{_slug(f.lease_id)}")
        ax.text(start, label_y, f" {f.label}", rotation=0, va="bottom", ha="left", fontsize=8,
                color="#a0522d", clip_on=False,
                transform=ax.get_xaxis_transform(), gid=f"fault-label-{n}")  # fmt: skip


VIP_COLOUR = "#1f5fbf"


def _vip_moves(ax: Axes, moves: tuple[VipMove, ...], end_s: float) -> None:
    """Each VIP move: the span in which it happened (shaded, at least a hair wide so a
    sub-poll move still shows) and a line where the new holder was first seen with it."""
    for n, m in enumerate(moves):
        start, stop = m.last_seen_s, max(m.first_seen_s, m.last_seen_s + end_s * 0.002)
        band = ax.axvspan(start, stop, color=VIP_COLOUR, alpha=0.22, lw=0)
        band.set_gid(f"vip-move-{n}")
        ax.axvline(m.first_seen_s, color=VIP_COLOUR, lw=0.8, ls=":", gid=f"vip-move-line-{n}")
        # a row above the fault labels: a move usually starts where a fault does
        ax.annotate(f" VIP {m.address} {m.from_node} → {m.to_node}", (m.first_seen_s, 1.0),
                    xytext=(0, 11), textcoords="offset points", va="bottom", ha="left",
                    fontsize=8, color=VIP_COLOUR, xycoords=ax.get_xaxis_transform(),
                    annotation_clip=False, gid=f"vip-move-label-{n}")  # fmt: skip


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text)


def lane_labels(a: Analysis) -> list[str]:
    """One label per target lane: the target, with its monitor when several monitor it."""
    names = [t.target for t in a.targets]
    return [
        t.target if names.count(t.target) == 1 else f"{t.target} ({t.monitor})" for t in a.targets
    ]


def timeline_svg(a: Analysis) -> str:
    """The target timeline as an SVG document (``<svg ...>...</svg>``)."""
    end = max(a.run.end_s, 1e-6)
    labels = lane_labels(a)
    with _rc():
        fig, ax = plt.subplots(figsize=(11, 1.2 + 0.45 * max(1, len(labels))))
        for lane, target in enumerate(a.targets):
            segs = list(target.segments)
            bars: dict[str, list[tuple[float, float]]] = {}
            for i, (start, state) in enumerate(segs):
                stop = segs[i + 1][0] if i + 1 < len(segs) else end
                bars.setdefault(state, []).append((start, max(stop - start, 0.0)))
            for state, spans in sorted(bars.items()):
                coll = ax.broken_barh(spans, (lane - 0.35, 0.7), facecolors=COLOURS.get(
                    state, "#b0b0b0"), label=state)  # fmt: skip
                coll.set_gid(f"lane-{lane}-{state}")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_ylim(-0.7, max(len(labels), 1) - 0.3)
        ax.invert_yaxis()
        ax.set_xlim(0, end)
        ax.set_xlabel("run time (s)")
        vips = "; VIP moves blue" if a.vip_moves else ""
        ax.set_title("Targets: up (green), down (red), unreachable (dark red), unknown (grey); "
                     f"faults shaded{vips}", fontsize=9, loc="left",
                     pad=30 if vips else 18)  # fmt: skip
        _bands(ax, a.faults, end, 1.0)
        _vip_moves(ax, a.vip_moves, end)
        if not labels:
            ax.text(0.5, 0.5, "no monitored target", ha="center", transform=ax.transAxes)
        return _svg(fig)


def runner_svg(a: Analysis) -> str:
    """The runner duration scatter as an SVG document (empty string if no runner)."""
    if not a.runners:
        return ""
    end = max(a.run.end_s, 1e-6)
    with _rc():
        fig, axes = plt.subplots(len(a.runners), 1, squeeze=False, sharex=True,
                                 figsize=(11, 0.6 + 2.4 * len(a.runners)))  # fmt: skip
        for ax, r in zip(axes[:, 0], a.runners, strict=True):
            good_t = [t for t, _d, ok in r.points if ok]
            good_d = [d for _t, d, ok in r.points if ok]
            bad_t = [t for t, _d, ok in r.points if not ok]
            bad_d = [d for _t, d, ok in r.points if not ok]
            ax.scatter(good_t, good_d, s=6, color="#1f77b4", label="ok", gid=f"ok-{r.runner}")
            if bad_t:
                ax.scatter(bad_t, bad_d, s=18, marker="x", color="#d62728", label="error",
                           gid=f"errors-{_slug(r.runner)}")  # fmt: skip
            if r.threshold_s is not None:
                ax.axhline(r.threshold_s, color="#555", ls="--", lw=0.8, label="mean + k·sd")
            for s in r.degraded:
                ax.axvspan(s.start_s, s.end_s, ymin=0, ymax=0.06, color="#9467bd", lw=0)
            ax.set_ylabel(f"{r.runner}\nduration (s)")
            ax.set_xlim(0, end)
            _bands(ax, a.faults, end, 1.0)
            ax.legend(loc="upper right", fontsize=7)
        axes[-1, 0].set_xlabel("run time (s); purple ticks: degraded stretches")
        return _svg(fig)


def _fit(ax: Axes, xs: list[float], ys: list[float], slope: float | None, unit: str) -> None:
    """The least-squares line through the points, labelled with its slope."""
    if slope is None or not xs:
        return
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    lo, hi = min(xs), max(xs)
    ax.plot([lo, hi], [my + slope * (lo - mx), my + slope * (hi - mx)], ls="--", lw=1,
            color="#555", label=f"trend {slope:+.3f} {unit}/cycle",
            gid="soak-mttr-trend")  # fmt: skip


def soak_svg(a: Analysis) -> str:
    """MTTR (and osha's RSS) per soak cycle as an SVG document (empty string if not a soak)."""
    s: SoakSummary | None = a.soak
    if s is None:
        return ""
    finished = [r for r in s.cycles if r.end_s is not None]
    rss = [(r.cycle, r.osha_rss_bytes / 2**20) for r in s.cycles if r.osha_rss_bytes is not None]
    with _rc():
        fig, axes = plt.subplots(2 if rss else 1, 1, squeeze=False, sharex=True,
                                 figsize=(11, 2.8 + (2.2 if rss else 0.0)))  # fmt: skip
        ax = axes[0, 0]
        done = [(r.cycle, r.recovery_s) for r in finished if r.recovery_s is not None]
        xs, ys = [float(c) for c, _ in done], [v or 0.0 for _, v in done]
        ax.plot(xs, ys, marker="o", ms=3, lw=1, color="#1f77b4", label="MTTR", gid="soak-mttr")
        _fit(ax, xs, ys, s.mttr_trend_s, "s")
        stuck = [r.cycle for r in finished if r.recovery_s is None]
        if stuck:
            ax.scatter(stuck, [1.0] * len(stuck), marker="v", color="#d62728", clip_on=False,
                       transform=ax.get_xaxis_transform(), label="not recovered",
                       gid="soak-unrecovered")  # fmt: skip
        failed = [(r.cycle, r.recovery_s) for r in finished if r.ok is False]
        failed_done = [(c, v) for c, v in failed if v is not None]
        if failed_done:
            ax.scatter([c for c, _ in failed_done], [v for _, v in failed_done], s=60,
                       facecolors="none", edgecolors="#d62728", label="cycle failed",
                       gid="soak-failed")  # fmt: skip
        ax.set_ylabel("time to recover (s)")
        ax.set_ylim(bottom=0)
        ax.set_title("Soak: time to recover (MTTR) per cycle", fontsize=9, loc="left")
        ax.legend(loc="upper left", fontsize=7)
        if rss:
            ax2 = axes[1, 0]
            ax2.plot([c for c, _ in rss], [m for _, m in rss], marker=".", lw=1,
                     color="#9467bd", gid="soak-rss")  # fmt: skip
            ax2.set_ylabel("osha RSS (MiB)")
        axes[-1, 0].set_xlabel("cycle")
        axes[-1, 0].xaxis.get_major_locator().set_params(integer=True)
        return _svg(fig)
