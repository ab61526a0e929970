"""Student's t quantiles against published table values (two-sided 95 % and 99 %)."""

from __future__ import annotations

import math

import pytest

from osha.analysis.student import t_cdf, t_half_width, t_quantile


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        (0.975, 1, 12.7062),
        (0.975, 2, 4.3027),
        (0.975, 5, 2.5706),
        (0.975, 9, 2.2622),
        (0.975, 20, 2.0860),
        (0.975, 30, 2.0423),
        (0.995, 10, 3.1693),
        (0.95, 4, 2.1318),
        (0.975, 100_000, 1.9600),
    ],
)
def test_quantile_matches_the_table(p: float, df: int, expected: float) -> None:
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-4)


def test_quantile_is_symmetric_and_inverts_the_cdf() -> None:
    assert t_quantile(0.025, 7) == pytest.approx(-t_quantile(0.975, 7))
    assert t_cdf(t_quantile(0.9, 3), 3) == pytest.approx(0.9, abs=1e-9)
    assert t_cdf(0.0, 12) == pytest.approx(0.5)
    # df = 1 is the Cauchy distribution: P(T <= 1) = 1/2 + atan(1)/pi = 0.75
    assert t_cdf(1.0, 1) == pytest.approx(0.5 + math.atan(1.0) / math.pi)


def test_half_width_of_a_mean() -> None:
    # 6 values with sd 2: 2.5706 * 2 / sqrt(6) = 2.0989
    assert t_half_width(2.0, 6) == pytest.approx(2.5706 * 2 / math.sqrt(6), abs=1e-3)
    assert t_half_width(2.0, 1) is None


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
def test_quantile_refuses_a_probability_outside_0_1(bad: float) -> None:
    with pytest.raises(ValueError, match="p must be between 0 and 1"):
        t_quantile(bad, 3)
