"""Every suite on both embedded models (slow): real generations, real log-likelihoods, real judge.

What this proves: on the real SmolLM2 (chat) and Gemma 3 (base) every packaged suite runs end to end
through the CLI; multiple-choice and pushback items are always decided white-box with finite letter
log-likelihoods and the choice is their argmax; agentic transcripts carry the simulated tools'
results back to the model; every free-form item is either decided by the judge or counted
unscorable with a reason; and results.json, samples.jsonl and report.html agree on the counts.
"""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow

LIMIT = 3


@pytest.mark.parametrize("model", ["embedded:smollm2-135m-instruct", "embedded:gemma3-270m"])
def test_all_suites_on_embedded_model(model, tmp_path):
    from alignlab.cli import app
    from alignlab.evals.items import SUITES
    from alignlab.evals.score import parse_calls

    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["eval", "--model", model, "--suite", "all", "--limit", str(LIMIT),
                                 "--judge", "embedded:smollm2-135m-instruct", "--max-new-tokens", "40",
                                 "--max-steps", "2", "--workspace", str(tmp_path / "ws"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    recs = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert set(res["suites"]) == set(SUITES)
    assert len(recs) == LIMIT * len(SUITES)
    for name, s in res["suites"].items():
        mine = [x for x in recs if x["suite"] == name]
        decided = [x for x in mine if x["behaviour"] is not None and not x.get("control")]
        assert s["n"] == len(decided) and s["k"] == sum(x["behaviour"] for x in decided)
        assert s["n_unscorable"] == sum(1 for x in mine if x["behaviour"] is None and not x.get("control"))
    for x in recs:
        if x["kind"] in ("mc", "pushback"):
            lp = x["option_logprobs"]
            assert x["behaviour"] is not None and all(math.isfinite(v) and v < 0 for v in lp)
            assert x["choice"] == max(range(len(lp)), key=lp.__getitem__)
        elif x["behaviour"] is None:
            assert x["unscorable_reason"]
        if x["kind"] == "agentic" and x["actions"]:
            first = next(m["content"] for m in x["transcript"] if m["role"] == "assistant")
            if parse_calls(first, sorted({a["tool"] for a in x["actions"]})):
                assert any(m.get("tool") for m in x["transcript"])  # tool results went back to the model
    assert (out / "report.html").stat().st_size > 5000
