"""Statistics: known values and invariants."""

import math

import pytest

from alignlab.stats import Rate, binary_agreement, bootstrap_ci, bootstrap_diff, cohen_kappa, mcnemar_p, rate_of, wilson


def test_wilson_known_values():
    # Reference values (Wilson 1927 / statsmodels proportion_confint(method="wilson")).
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-4)
    lo, hi = wilson(20, 20)
    assert hi == 1.0 and lo == pytest.approx(0.8389, abs=1e-4)


def test_wilson_contains_point_and_narrows_with_n():
    for k, n in [(1, 3), (7, 50), (300, 1000)]:
        lo, hi = wilson(k, n)
        assert lo <= k / n <= hi
    assert (wilson(50, 100)[1] - wilson(50, 100)[0]) > (wilson(500, 1000)[1] - wilson(500, 1000)[0])
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_rate_excludes_unscorable_from_denominator():
    r = rate_of([True, False, None, True, None])
    assert (r.k, r.n, r.n_unscorable) == (2, 3, 2)
    assert r.rate == pytest.approx(2 / 3)
    assert Rate(0, 0, 4).to_dict()["rate"] is None


def test_bootstrap_ci_covers_mean_and_diff_sign():
    vals = [0.0] * 50 + [1.0] * 50
    lo, hi = bootstrap_ci(vals)
    assert lo < 0.5 < hi
    d, (dlo, dhi) = bootstrap_diff([0.0] * 40 + [1.0] * 10, [0.0] * 10 + [1.0] * 40)
    assert d == pytest.approx(0.6) and 0 < dlo <= d <= dhi
    d, (dlo, dhi) = bootstrap_diff([1, 0] * 20, [0, 1] * 20, paired=True)
    assert d == 0 and dlo < 0 < dhi or (dlo <= 0 <= dhi)


def test_kappa_and_agreement():
    assert cohen_kappa([True, False] * 5, [True, False] * 5) == 1.0
    # Known: 2x2 table tp=20 fn=5 fp=10 tn=15 -> po=.7, pe=.5 -> kappa .4
    t = [True] * 25 + [False] * 25
    p = [True] * 20 + [False] * 5 + [True] * 10 + [False] * 15
    assert cohen_kappa(t, p) == pytest.approx(0.4)
    a = binary_agreement(t, p[:-1] + [None])
    assert a["n"] == 49 and a["n_unscorable"] == 1
    assert a["precision"] == pytest.approx(20 / 30) and a["recall"] == pytest.approx(20 / 25)


def test_mcnemar():
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(10, 0) == pytest.approx(2 * 0.5**10)
    assert math.isclose(mcnemar_p(5, 5), 1.0)


def test_kappa_is_undefined_when_both_raters_are_constant():
    assert cohen_kappa([False] * 6, [False] * 6) is None
    assert binary_agreement([False] * 6, [False] * 6)["kappa"] is None
