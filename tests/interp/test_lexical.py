"""The lexical explainer/scorer: known answers through the real auto-interp protocol."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from alignlab.interp.autointerp import AutoInterpConfig, run_autointerp  # noqa: E402
from alignlab.interp.lexical import LexicalModel, lexical_margin  # noqa: E402

from .test_autointerp import CFG, make_sources, make_table  # noqa: E402


def test_planted_token_latents_are_labelled_by_their_token_and_detected(tmp_path):
    table = make_table()
    lex = LexicalModel()
    res = run_autointerp(table, make_sources(table), lex, lex, AutoInterpConfig(**CFG), tmp_path)
    rows = map(json.loads, (tmp_path / "latents.jsonl").read_text().splitlines())
    recs = {(r["source"], r["latent"]): r for r in rows}
    for latent, word in ((11, "cat"), (22, "dog")):
        r = recs[("sae", latent)]
        assert r["label"].split(",")[0].strip('"') == word  # the most often marked token first
        assert r["detection"]["bal_acc"] == 1.0 and r["detection"]["auc"] == 1.0
        assert r["fuzzing"]["bal_acc"] == 1.0
    # random latents fire on arbitrary tokens: their token lists do not predict held-out windows well
    rand = [recs[("sae", k)]["detection"]["bal_acc"] for k in (30, 31, 32, 33)]
    assert sum(rand) / 4 <= 0.75
    assert res["detection_bal_acc"]["mean"] > res["baselines"]["shuffled"]["detection_bal_acc"]["mean"]


def test_margins_of_detection_and_fuzzing_prompts():
    det = 'Pattern: "cat", "dog"\n\nText: the cat sat on a cat\n\nDoes the pattern occur anywhere in this text?'
    assert lexical_margin(det) == 2.0
    assert lexical_margin(det.replace("cat sat on a cat", "bird flew")) == -1.0
    fuzz = ('Pattern: "cat"\n\nText: the <<cat>> sat\n\nSome words in the text are marked like <<this>>. '
            'Do the marked words match the pattern?')
    assert lexical_margin(fuzz) > 0
    assert lexical_margin(fuzz.replace("<<cat>> sat", "cat <<sat>>")) < 0
    assert lexical_margin("Name what the marked words have in common") is None
