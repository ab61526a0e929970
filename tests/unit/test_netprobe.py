"""The arithmetic of the lab's network figures (``tests/lab/netprobe.py``): what a loss and a
rate are made of, so a lab test cannot pass on a wrong sum."""

from __future__ import annotations

import itertools

import pytest

from tests.lab import netprobe


def test_loss_is_what_the_receiver_did_not_take_in_of_what_the_sender_sent() -> None:
    figure = netprobe.EchoLoss(sent=500, arrived=350, transmitted=500, replies=348)
    assert figure.loss_pct == pytest.approx(30.0)
    assert netprobe.EchoLoss(sent=0, arrived=0, transmitted=0, replies=0).loss_pct == 100.0


def test_a_rate_is_the_median_slice_and_a_late_read_widens_its_range() -> None:
    # reads at t = 0, 1, 2, 3 s (each instant), 250 kB a slice: 2000 kbit/s, but the third
    # slice stalled (25 kB) and one read took 0.5 s (it began at 2.0 s and ended at 2.5 s)
    values = iter([0, 250_000, 500_000, 525_000, 775_000])
    reads = [(0.0, next(values), 0.0), (1.0, next(values), 1.0), (2.0, next(values), 2.5),
             (3.0, next(values), 3.0), (4.0, next(values), 4.0)]  # fmt: skip
    slices = tuple(netprobe._slice(a, b) for a, b in itertools.pairwise(reads))
    figure = netprobe.RateFigure(slices, 4.0, 775_000 * 8 / 1000 / 4.0)
    assert [round(s.kbit_s) for s in slices] == [2000, 1600, 267, 2000]
    assert slices[1].low_kbit_s == pytest.approx(2000 / 1.5)  # the read ended at 2.5 s
    assert slices[1].high_kbit_s == pytest.approx(2000.0)  # it began at 2.0 s
    assert figure.kbit_s == pytest.approx((1600 + 2000) / 2)  # the stall is not the figure
    low, high = figure.kbit_s_range
    assert low <= figure.kbit_s <= high
    assert figure.mean_kbit_s == pytest.approx(1550.0)
