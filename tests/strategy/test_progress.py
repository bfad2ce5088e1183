"""Field progress: the seed's back-of-envelope, closed forms, monotonicity, needed growth, errors."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from alignlab.strategy.progress import (
    ProgressError,
    ProgressInputs,
    completion_time,
    fixed_deadline,
    needed_growth,
    p_done_by_deadline,
    p_done_within,
    parse_deadline,
    progress_model,
    progress_report,
    remaining_work,
    work_by,
)


def P(t, **kw):
    return float(p_done_within(t, ProgressInputs(**kw)))


def test_reproduces_the_seed_back_of_envelope():
    # Seed 001: ~10% done, the field growing ~20%/yr: "very likely not done in time if your timelines are
    # 5 years, and probably not even if they're 10"; at 50%/yr "at least some chance in 5 years, and
    # probably would be OK at 10". Default uncertainty: f0's 90% interval is x/÷ 2.5.
    at20 = dict(done=0.1, done_factor=2.5, growth=0.2)
    assert P(5, **at20) < 0.02  # close to 0
    assert P(10, **at20) < 0.5
    # Reading 1 (the library default): the past grew at the same rate as the future.
    assert P(5, done=0.1, growth=0.5) > 0.05
    assert P(10, done=0.1, growth=0.5) > 0.5
    # Reading 2 (the what-if: the field grew at 20% so far and speeds up to 50% from now): the 5-year
    # chance is small but real, several times the 20% figure; 10 years is likely.
    at50 = dict(done=0.1, growth=0.5, historical_growth=0.2)
    assert P(5, **at50) > 0.03 and P(5, **at50) > 5 * P(5, **at20)
    assert P(10, **at50) > 0.5
    # At the wide end of the seed's "factor of two or three" the 5-year chance passes 5%.
    assert P(5, done_factor=3.0, **at50) > 0.05


@pytest.mark.parametrize("f0, g", [(0.1, 0.2), (0.1, 0.5), (0.3, 0.05), (0.01, 1.0)])
def test_closed_form_without_uncertainty(f0, g):
    inp = ProgressInputs(done=f0, done_factor=1.0, growth=g)
    T = math.log(1 / f0) / math.log1p(g)
    assert float(completion_time(f0, inp)) == pytest.approx(T, rel=1e-10)
    assert progress_model(inp, samples=0)["central"] == pytest.approx(T, rel=1e-10)
    assert P(T * 0.999, done=f0, done_factor=1.0, growth=g) == 0.0
    assert P(T * 1.001, done=f0, done_factor=1.0, growth=g) == 1.0


def test_closed_form_with_a_constant_ai_multiplier():
    f0, g, m0 = 0.1, 0.2, 2.0
    inp = ProgressInputs(done=f0, done_factor=1.0, growth=g, ai_multiplier=m0)
    # F(T) = m0 ((1+g)^T - 1) / ln(1+g) = R = (1/f0 - 1) / ln(1+g)
    T = math.log(1 + (1 / f0 - 1) / m0) / math.log1p(g)
    assert float(completion_time(f0, inp)) == pytest.approx(T, rel=1e-10)


@pytest.mark.parametrize("kw", [
    dict(ai_multiplier=1.5, ai_growth=0.3, ai_cap=5.0),
    dict(ai_multiplier=6.0, ai_growth=-0.2, ai_cap=3.0),
    dict(ai_multiplier=8.0, ai_growth=0.1, ai_cap=4.0),
    dict(ai_multiplier=1.0, ai_growth=0.5),
    dict(growth=-0.1, historical_growth=0.2),
])
def test_work_integral_matches_quadrature_and_completion_inverts_it(kw):
    from scipy.integrate import quad

    inp = ProgressInputs(growth=kw.pop("growth", 0.2), **kw)

    def m(t):
        v = inp.ai_multiplier * (1 + inp.ai_growth) ** t
        return min(v, inp.ai_cap) if inp.ai_cap is not None else v

    for t in (0.5, 3.0, 7.0, 15.0):
        num = quad(lambda s: m(s) * (1 + inp.growth) ** s, 0, t, points=[1, 2, 4, 6, 8])[0]
        assert float(work_by(t, inp)) == pytest.approx(num, rel=1e-7)
    f0 = np.array([0.05, 0.1, 0.3, 0.8])
    T = completion_time(f0, inp)
    fin = np.isfinite(T)
    assert np.allclose(work_by(T[fin], inp), remaining_work(f0[fin], inp.g_hist), rtol=1e-9)


def test_shrinking_effort_can_never_finish():
    # Effort falling 50%/yr adds at most 1/ln 2 = 1.44 years of today's effort: too little for 90% of the work.
    inp = ProgressInputs(done=0.1, done_factor=1.0, growth=-0.5, historical_growth=0.2)
    assert math.isinf(float(completion_time(0.1, inp)))
    assert progress_model(inp, samples=0)["central"] is None


def test_monotone_in_growth_and_in_fraction_done():
    gs = [0.0, 0.1, 0.2, 0.35, 0.5, 1.0]
    ps = [p_done_by_deadline(ProgressInputs(growth=g, historical_growth=0.2)) for g in gs]
    assert all(a < b for a, b in zip(ps, ps[1:])), ps
    fs = [0.02, 0.05, 0.1, 0.2, 0.4]
    ps = [p_done_by_deadline(ProgressInputs(done=f)) for f in fs]
    assert all(a < b for a, b in zip(ps, ps[1:])), ps
    curve = progress_model(ProgressInputs(), samples=0)["curve"]["p_done"]
    assert all(a <= b + 1e-15 for a, b in zip(curve, curve[1:])) and curve[0] < 1e-3 and curve[-1] > 0.99


def test_median_completion_time_has_half_the_mass():
    inp = ProgressInputs(done=0.1, growth=0.3, historical_growth=0.2, ai_multiplier=1.2, ai_growth=0.1)
    q = progress_model(inp, samples=0)["completion_time"]
    assert float(p_done_within(q["p50"], inp)) == pytest.approx(0.5, abs=1e-9)
    assert float(p_done_within(q["p95"], inp)) == pytest.approx(0.95, abs=1e-9)


def test_deadline_distributions():
    base = ProgressInputs()
    fixed = p_done_by_deadline(replace(base, deadline=fixed_deadline(10)))
    assert p_done_by_deadline(replace(base, deadline=parse_deadline("lognormal:10:0"))) == pytest.approx(fixed)
    pts = parse_deadline("points:5=0.25,10=0.5,20=0.25")
    expect = 0.25 * P(5) + 0.5 * P(10) + 0.25 * P(20)
    assert p_done_by_deadline(replace(base, deadline=pts)) == pytest.approx(expect, abs=1e-12)
    # A wide timeline distribution puts weight on both tails: between P(within 5y) and P(within 40y).
    wide = p_done_by_deadline(replace(base, deadline=parse_deadline("lognormal:10:0.8")))
    assert P(5) < wide < P(40) and wide != pytest.approx(fixed, abs=0.01)


@pytest.mark.parametrize("spec", ["10", "lognormal:10:0.6", "points:5=0.3,10=0.5,20=0.2"])
def test_monte_carlo_check_agrees_with_the_exact_answer(spec):
    res = progress_model(ProgressInputs(growth=0.3, historical_growth=0.2, deadline=parse_deadline(spec)),
                         samples=20000, seed=1)
    mc = res["monte_carlo"]
    assert abs(mc["p_done_by_deadline"] - res["p_done_by_deadline"]) < 4 * mc["se"] + 1e-3


@pytest.mark.parametrize("target, years", [(0.5, 10), (0.9, 10), (0.2, 5), (0.5, 7)])
def test_needed_growth_round_trips(target, years):
    inp = ProgressInputs(done=0.1, growth=0.2)
    ng = needed_growth(inp, target, deadline=fixed_deadline(years))
    assert ng["achievable"] and ng["growth"] > 0
    back = p_done_by_deadline(replace(inp, growth=ng["growth"], historical_growth=0.2,
                                      deadline=fixed_deadline(years)))
    assert back == pytest.approx(target, abs=1e-5)


def test_needed_growth_says_when_no_rate_suffices_or_none_is_needed():
    ng = needed_growth(ProgressInputs(), 0.99, deadline=fixed_deadline(1), cap=2.0)
    assert ng["growth"] is None and not ng["achievable"]
    assert ng["message"].startswith("no growth rate up to 200%/yr suffices")
    easy = needed_growth(ProgressInputs(done=0.6, done_factor=1.2), 0.5, deadline=fixed_deadline(20))
    assert easy["growth"] == 0.0 and easy["message"].startswith("no growth needed")


def test_report_keeps_one_past_for_all_growth_rates():
    rep = progress_report(ProgressInputs(), [0.2, 0.5], samples=0)
    assert rep["historical_growth"] == 0.2
    assert [s["inputs"]["historical_growth"] for s in rep["scenarios"]] == [0.2, 0.2]
    assert rep["scenarios"][1]["p_done_within"]["10"] == pytest.approx(P(10, growth=0.5, historical_growth=0.2))


@pytest.mark.parametrize("kw, needle", [
    (dict(done=1.5), "done: the fraction already done must be in (0, 1)"),
    (dict(done=0.0), "done: the fraction already done must be in (0, 1)"),
    (dict(done_factor=0.5), "done factor: must be >= 1"),
    (dict(growth=-1.5), "growth: must be > -1"),
    (dict(growth=20.0), "growth: 20 is 2000%/yr; give rates as fractions"),
    (dict(growth=-0.1), "historical growth: defaults to growth"),
    (dict(historical_growth=0.0), "historical growth: must be > 0"),
    (dict(ai_multiplier=0.0), "AI multiplier: must be > 0"),
])
def test_bad_inputs_fail_clearly(kw, needle):
    with pytest.raises(ProgressError) as e:
        progress_model(ProgressInputs(**kw), samples=0)
    assert needle in str(e.value)


@pytest.mark.parametrize("spec, needle", [
    ("soon", "deadline 'soon' not understood; accepted: YEARS"),
    ("-3", "must be > 0 years"),
    ("lognormal:10", "not understood"),
    ("lognormal:-1:0.5", "the median must be > 0"),
    ("points:5=0.5,10=0.4", "the probabilities must sum to 1, got 0.9"),
])
def test_bad_deadlines_fail_clearly(spec, needle):
    with pytest.raises(ProgressError, match=None) as e:
        parse_deadline(spec)
    assert needle in str(e.value)


def test_bad_target_probability():
    with pytest.raises(ProgressError, match="target probability: must be in"):
        needed_growth(ProgressInputs(), 1.0)
