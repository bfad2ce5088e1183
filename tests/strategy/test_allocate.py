"""Allocation model: the optimum's invariants, known answers, sensitivity signs, bands and config errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alignlab.strategy.allocate import (
    _objective,
    allocate,
    expected_value,
    harm_given_level,
    optimise,
    success_given_level,
)
from alignlab.strategy.allocate_config import AllocationConfig, AllocationError, load_allocation_config


@pytest.fixture(scope="module")
def cfg() -> AllocationConfig:
    return load_allocation_config()


@pytest.fixture(scope="module")
def result(cfg) -> dict:
    return allocate(cfg, samples=60)


def _random_cases(n: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield (rng.dirichlet(np.ones(10)), np.sort(np.exp(rng.normal(1.0, 1.5, 9))), float(rng.uniform(0, 2)),
               float(rng.uniform(1, 30)))


def test_default_config_loads_with_documented_shape(cfg):
    assert len(cfg.prior) == 10 and abs(sum(cfg.prior) - 1) < 1e-12
    assert len(cfg.cost_scales) == 9
    c = cfg.cost_scales
    assert all(a < b for a, b in zip(c, c[1:])), "cost scales rise with the level"
    ratios = {(j + 1, j + 2): b / a for j, (a, b) in enumerate(zip(c, c[1:]))}
    # the seed's two steep jumps, 5->6 and 7->8, are the two largest steps
    assert set(sorted(ratios, key=ratios.get)[-2:]) == {(5, 6), (7, 8)}


def test_allocation_is_on_the_simplex(cfg, result):
    x = np.array(result["allocation"])
    assert x.min() >= 0 and abs(x.sum() - cfg.budget) < 1e-9
    for p, c, h, B in _random_cases(8):
        x = optimise(p, c, h, B)
        assert x.min() >= 0 and abs(x.sum() - B) < 1e-9 * B


def test_result_is_json_ready_and_deterministic(cfg, result):
    again = allocate(cfg, samples=60)
    assert json.dumps(result) == json.dumps(again)
    parts = result["expected_p_success"] - result["expected_harm"]
    assert abs(parts - result["expected_value"]) < 1e-12


def test_level_10_never_succeeds_and_level_1_has_no_harm():
    rng = np.random.default_rng(0)
    costs = np.exp(rng.normal(size=9))
    for x in rng.dirichlet(np.ones(10), size=50) * 7:
        assert success_given_level(x, costs)[9] == 0.0
        assert harm_given_level(x, costs, 1.3)[0] == 0.0


def test_success_and_harm_match_the_product_formulas():
    rng = np.random.default_rng(1)
    c = np.exp(rng.normal(size=9))
    x = rng.dirichlet(np.ones(10)) * 5
    r = np.r_[1 - np.exp(-x[:9] / c), 0.0]
    h = 0.7
    for D in range(1, 11):
        no_suff = np.prod(1 - r[D - 1:])
        some_insuff = 1 - np.prod(1 - r[:D - 1])
        assert success_given_level(x, c)[D - 1] == pytest.approx(1 - no_suff, abs=1e-12)
        assert harm_given_level(x, c, h)[D - 1] == pytest.approx(h * no_suff * some_insuff, abs=1e-12)


def test_gradient_matches_finite_differences():
    p, c, h, B = next(_random_cases(1, seed=7))
    f = _objective(p, c, h, B)
    y = np.random.default_rng(2).dirichlet(np.ones(10))
    _, g = f(y)
    eps = 1e-6
    fd = [(f(y + eps * e)[0] - f(y - eps * e)[0]) / (2 * eps) for e in np.eye(10)]
    assert np.allclose(g, fd, atol=1e-7)


@pytest.mark.parametrize("L", range(1, 10))
def test_concentrated_prior_and_no_harm_buys_the_cheapest_sufficient_technique(cfg, L):
    # With p = delta_L and h = 0, EV = 1 - exp(-sum_{j>=L} x_j / c_j): the budget goes to the
    # smallest c_j among j >= L. The default costs rise with the level, so that is technique L itself.
    prior = np.eye(10)[L - 1]
    x = optimise(prior, cfg.cost_scales, 0.0, cfg.budget)
    assert x[L - 1] >= 0.999 * cfg.budget


def test_cheapest_sufficient_wins_even_when_it_is_a_later_level(cfg):
    costs = list(cfg.cost_scales)
    costs[5] = costs[3] / 2  # technique 6 now cheaper than technique 4, and it also covers D = 4
    x = optimise(np.eye(10)[3], costs, 0.0, cfg.budget)
    assert x[5] >= 0.999 * cfg.budget


def test_raising_harm_moves_budget_away_from_low_techniques(cfg):
    # Harm comes from insufficient techniques being ready, i.e. from techniques below the true level:
    # the more it weighs, the less goes to the techniques below the bulk of the prior (levels 1-5).
    shares, mean_level = [], []
    for h in (0.0, 0.25, 0.5, 1.0, 2.0):
        x = optimise(cfg.prior, cfg.cost_scales, h, cfg.budget)
        shares.append(x[:5].sum() / cfg.budget)
        mean_level.append(float((np.arange(1, 11) * x).sum() / x.sum()))
    assert all(a >= b - 1e-6 for a, b in zip(shares, shares[1:])), shares
    assert all(a <= b + 1e-6 for a, b in zip(mean_level, mean_level[1:])), mean_level
    assert shares[0] > 0.9 and shares[-1] < 0.1


def test_optimum_beats_uniform_and_many_random_allocations(cfg, result):
    p, c, h, B = np.array(cfg.prior), np.array(cfg.cost_scales), cfg.harm_weight, cfg.budget
    best = result["expected_value"]
    assert best >= result["baselines"]["uniform_all_10"] and best >= result["baselines"]["uniform_1_to_9"]
    assert best >= result["baselines"]["best_single"]["ev"]
    rng = np.random.default_rng(11)
    rand = np.concatenate([rng.dirichlet(np.ones(10), 3000), rng.dirichlet(np.full(10, 0.2), 3000)]) * B
    evs = expected_value(rand, p, c, h)["ev"]
    assert evs.max() <= best + 1e-9
    for p2, c2, h2, B2 in _random_cases(5, seed=21):
        x = optimise(p2, c2, h2, B2)
        evs = expected_value(rng.dirichlet(np.full(10, 0.3), 2000) * B2, p2, c2, h2)["ev"]
        assert evs.max() <= float(expected_value(x, p2, c2, h2)["ev"]) + 1e-9


def test_sensitivity_signs_and_ranking(cfg, result):
    rows = {r["input"]: r for r in result["sensitivity"]}
    assert len(rows) == 10 + 9 + 2
    effects = [r["effect"] for r in result["sensitivity"]]
    assert effects == sorted(effects, reverse=True)
    tol = 1e-9
    # More budget never lowers the optimal EV (the unspent share can always sit at level 10).
    assert rows["budget"]["dev_high"] >= -tol and rows["budget"]["dev_low"] <= tol
    # Dearer techniques or a heavier harm weight shrink what is achievable: the optimum cannot rise.
    for j in range(1, 10):
        r = rows[f"cost_scales[{j}]"]
        assert r["dev_high"] <= tol and r["dev_low"] >= -tol, r["label"]
    assert rows["harm_weight"]["dev_high"] <= tol and rows["harm_weight"]["dev_low"] >= -tol
    # The prior's weight on the impossible level only ever lowers the EV.
    assert rows["prior[10]"]["dev_high"] <= tol


def test_monte_carlo_bands_are_ordered_and_contain_the_central_ev(result):
    mc = result["monte_carlo"]
    assert mc["samples"] == 60 and mc["reoptimised"]
    for key in ("ev_chosen", "ev_reoptimised", "p_success_chosen", "regret"):
        b = mc[key]
        assert b["p5"] <= b["p50"] <= b["p95"], key
    assert mc["ev_chosen"]["p5"] <= result["expected_value"] <= mc["ev_chosen"]["p95"]
    assert mc["regret"]["p5"] >= -1e-12  # re-optimising per sample never does worse than the chosen allocation
    for lo, hi in zip(mc["allocation"]["p5"], mc["allocation"]["p95"]):
        assert 0 <= lo <= hi <= result["inputs"]["budget"] + 1e-9


def test_no_samples_no_bands(cfg):
    res = allocate(cfg, samples=0, with_sensitivity=False)
    assert res["monte_carlo"] is None and res["sensitivity"] == []


def test_prior_override_is_validated(cfg):
    with pytest.raises(ValueError, match="10 weights needed"):
        allocate(cfg, prior=[0.5, 0.5])


BASE = """
budget: 10
harm_weight: 0.5
prior: [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
cost_scales: [1, 2, 3, 4, 5, 20, 30, 150, 600]
"""


@pytest.mark.parametrize("edit, needle", [
    (("prior: [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]",
      "prior: [0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]"),
     "alloc.yaml: prior: 10 weights needed (levels 1-10), got 9"),
    (("prior: [0.1, 0.1,", "prior: [0.2, 0.1,"), "alloc.yaml: prior: weights must sum to 1, got 1.1; rescale them"),
    (("prior: [0.1, 0.1,", "prior: [-0.1, 0.3,"), "alloc.yaml: prior: weights must be >= 0; level(s) [1]"),
    (("cost_scales: [1, 2,", "cost_scales: [2,"), "alloc.yaml: cost_scales: 9 cost scales needed"),
    (("cost_scales: [1, 2,", "cost_scales: [0, 2,"), "alloc.yaml: cost_scales: cost scales must be positive"),
    (("budget: 10", "budget: -1"), "alloc.yaml: budget: Input should be greater than 0"),
    (("budget: 10", "budgt: 10"), "alloc.yaml: budgt: unknown field; known fields: budget"),
    (("harm_weight: 0.5", "harm_weight: lots"), "alloc.yaml: harm_weight: Input should be a valid number"),
    (("budget: 10", "budget: 10\nuncertainty: {samples: -3}"),
     "alloc.yaml: uncertainty.samples: Input should be greater than or equal to 0"),
    (("cost_scales: [1, 2, 3, 4, 5, 20, 30, 150, 600]", ""), "alloc.yaml: cost_scales: missing; add it"),
    (("budget: 10", "budget: [10"), "alloc.yaml: not valid YAML"),
])
def test_config_errors_are_one_line_naming_file_and_field(tmp_path, edit, needle):
    path = tmp_path / "alloc.yaml"
    path.write_text(BASE.replace(*edit))
    with pytest.raises(AllocationError) as e:
        load_allocation_config(path)
    msg = str(e.value)
    assert needle in msg and "\n" not in msg


def test_missing_config_file(tmp_path):
    with pytest.raises(AllocationError, match="nope.yaml: file not found"):
        load_allocation_config(tmp_path / "nope.yaml")
