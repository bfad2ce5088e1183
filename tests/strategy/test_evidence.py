"""Evidence → prior update: Bayes by hand, tempering, complements, directions, and error messages."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.strategy.allocate_config import load_allocation_config
from alignlab.strategy.evidence import EvidenceError, Observation, allocate_with_evidence, load_evidence, update_prior

PRIOR = [0.04, 0.08, 0.12, 0.14, 0.14, 0.14, 0.12, 0.10, 0.07, 0.05]
REQUIRED = ("guard_broken_adaptive", "guard_holds_adaptive", "sleeper_defect_persists", "rlhf_sycophancy_high",
            "judge_human_disagree")


@pytest.fixture(scope="module")
def ev():
    return load_evidence()


def test_packaged_evidence_is_documented(ev):
    for eid in REQUIRED:
        t = ev.get(eid)
        assert len(t.likelihood) == 10 and all(0 < v <= 1 for v in t.likelihood)
        assert t.description and t.trigger and t.rationale and t.source
    assert 0 <= ev.default_transfer <= 1
    assert "Hubinger" in ev.get("sleeper_defect_persists").source


def test_complements_sum_to_one_level_by_level(ev):
    pairs = [(t.id, t.complement_of) for t in ev.types.values() if t.complement_of]
    assert len(pairs) >= 4
    for a, b in pairs:
        assert np.allclose(np.add(ev.get(a).likelihood, ev.get(b).likelihood), 1.0)
        assert ev.get(a).metric == ev.get(b).metric and ev.get(a).threshold == ev.get(b).threshold


def test_posterior_is_normalised_prior_times_tempered_likelihood(ev):
    w = 0.4
    L = np.array(ev.get("guard_broken_adaptive").likelihood)
    by_hand = np.array(PRIOR) * L ** w
    by_hand /= by_hand.sum()
    upd = update_prior(PRIOR, [Observation("guard_broken_adaptive", w)])
    assert np.allclose(upd["posterior"], by_hand, atol=1e-12)
    row = upd["observations"][0]
    assert row["transfer"] == w and np.allclose(row["tempered_likelihood"], L ** w)


def test_transfer_zero_leaves_the_prior_unchanged():
    upd = update_prior(PRIOR, [("sleeper_defect_persists", 0.0), "guard_broken_adaptive:0"])
    assert np.allclose(upd["posterior"], PRIOR, atol=1e-12)
    assert all(np.allclose(o["bayes_factors"], 1.0) for o in upd["observations"])


def test_bayes_factors_multiply_to_the_posterior_and_order_does_not_matter():
    obs = ["guard_broken_adaptive:1", "rlhf_sycophancy_high:0.5", "judge_human_disagree"]
    upd = update_prior(PRIOR, obs)
    prod = np.array(PRIOR) * np.prod([o["bayes_factors"] for o in upd["observations"]], axis=0)
    assert np.allclose(prod, upd["posterior"], atol=1e-12)
    assert np.allclose(update_prior(PRIOR, obs[::-1])["posterior"], upd["posterior"], atol=1e-12)


def test_default_transfer_is_the_files(ev):
    upd = update_prior(PRIOR, ["judge_human_disagree"])
    assert upd["observations"][0]["transfer"] == ev.default_transfer


def _mass(p, levels):
    return sum(p[d - 1] for d in levels)


@pytest.mark.parametrize("eid, levels, up", [
    ("guard_broken_adaptive", range(4, 11), True),
    ("guard_holds_adaptive", range(4, 11), False),
    ("sleeper_defect_persists", range(6, 11), True),
    ("sleeper_defect_removed", range(6, 11), False),
    ("rlhf_sycophancy_high", range(2, 11), True),
    ("rlhf_sycophancy_high", range(3, 11), True),
    ("judge_human_disagree", range(5, 11), True),
])
def test_each_observation_moves_mass_the_documented_way(eid, levels, up):
    post = update_prior(PRIOR, [Observation(eid, 1.0)])["posterior"]
    before, after = _mass(PRIOR, levels), _mass(post, levels)
    assert (after > before) if up else (after < before)


def test_judge_disagreement_is_only_a_slight_shift():
    post = update_prior(PRIOR, [Observation("judge_human_disagree", 1.0)])["posterior"]
    mean = lambda p: sum((d + 1) * v for d, v in enumerate(p))  # noqa: E731
    assert 0 < mean(post) - mean(PRIOR) < 0.5


def test_bad_ids_and_transfers_fail_with_one_line(ev):
    with pytest.raises(EvidenceError) as e:
        update_prior(PRIOR, ["nope"])
    msg = str(e.value)
    assert msg.startswith("unknown evidence id 'nope'; known: ") and all(i in msg for i in REQUIRED)
    assert "\n" not in msg
    with pytest.raises(EvidenceError, match=r"transfer must be in \[0, 1\], got 1.5"):
        update_prior(PRIOR, ["guard_broken_adaptive:1.5"])
    with pytest.raises(EvidenceError, match="10 weights needed"):
        update_prior(PRIOR[:9], ["guard_broken_adaptive"])


@pytest.mark.parametrize("body, needle", [
    ("evidence:\n  - id: a\n    description: d\n    trigger: t\n    rationale: r\n    source: s\n"
     "    likelihood: [0.1, 0.2]\n", "ev.yaml: a: likelihood: 10 values needed (D = 1..10), got 2"),
    ("evidence:\n  - id: a\n    description: d\n    trigger: t\n    rationale: r\n"
     "    likelihood: [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]\n", "ev.yaml: a: source: missing"),
    ("evidence:\n  - id: a\n    description: d\n    trigger: t\n    rationale: r\n    source: s\n"
     "    likelihood: [0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]\n", "ev.yaml: a: likelihood: each P"),
    ("evidence:\n  - id: a\n    description: d\n    trigger: t\n    rationale: r\n    source: s\n"
     "    complement_of: b\n", "ev.yaml: a: complement_of: 'b' is not an entry"),
    ("evidence: 3\n", "ev.yaml: expected a mapping"),
])
def test_bad_evidence_files_name_file_and_entry(tmp_path, body, needle):
    p = tmp_path / "ev.yaml"
    p.write_text(body)
    with pytest.raises(EvidenceError) as e:
        load_evidence(p)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_allocation_shows_the_update():
    cfg = load_allocation_config()
    res = allocate_with_evidence(cfg, [Observation("sleeper_defect_persists", 1.0),
                                       Observation("guard_broken_adaptive", 1.0)], samples=0)
    e = res["evidence"]
    assert np.allclose(e["prior"], cfg.prior) and np.allclose(res["inputs"]["prior"], e["posterior"])
    assert e["allocation_under_posterior"] == res["allocation"]
    # Re-optimising for the posterior is at least as good, under the posterior, as keeping the prior's allocation.
    assert e["ev_under_posterior"] >= e["ev_prior_allocation_under_posterior"] - 1e-12
    # Evidence for harder worlds moves budget up the ladder.
    lvl = np.arange(1, 11)
    mean = lambda x: float((lvl * np.array(x)).sum() / np.sum(x))  # noqa: E731
    assert mean(e["allocation_under_posterior"]) > mean(e["allocation_under_prior"])
    same = allocate_with_evidence(cfg, [Observation("sleeper_defect_persists", 0.0)], samples=0,
                                  with_sensitivity=False)["evidence"]
    assert np.allclose(same["allocation_under_prior"], same["allocation_under_posterior"])
