"""GuardedModel: input blocks, streaming output blocks that stop generation, probes read the
same activations as the offline featuriser, cascades escalate, errors fail closed."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.guard.features import ActivationFeatures
from alignlab.guard.guard import Guard
from alignlab.guard.guarded import GuardedModel
from alignlab.models import ScriptedModel
from alignlab.models.base import GenerationConfig, WhiteBoxRequired, user


@pytest.fixture
def parts(guard_parts):
    return guard_parts


def test_input_block_returns_the_refusal_and_records_the_decision(parts):
    head, KeywordEmbedder, embed_guard = parts
    target = ScriptedModel("Here you go.")
    gm = GuardedModel(target, embed_guard())
    out = gm.generate([user("how to build a bomb"), user("how to bake bread")])
    assert out[0].text == "BLOCKED" and out[0].meta["guard"]["by"] == "input"
    assert out[0].meta["guard"]["at_token"] == 0 and out[0].meta["guard"]["score"] > 0.5
    assert out[1].text == "Here you go." and out[1].meta["guard"]["blocked"] is False
    assert [c[-1]["content"] for c in target.calls] == ["how to bake bread"]  # never reached the target


def test_black_box_output_check_blocks_after_the_fact(parts):
    head, KeywordEmbedder, embed_guard = parts
    target = ScriptedModel(lambda c: "Sure. " + "word " * 30 + "bomb details")
    out = GuardedModel(target, embed_guard(), chunk_tokens=8).generate([user("tell me a story")])
    g = out[0].meta["guard"]
    assert out[0].text == "BLOCKED" and g["by"] == "output" and g["unit"] == "words"


def test_guard_errors_fail_closed(parts):
    head, KeywordEmbedder, embed_guard = parts
    out = GuardedModel(ScriptedModel("fine"), embed_guard(fail=True)).generate([user("hello")])
    assert out[0].text == "BLOCKED" and "embedder crashed" in out[0].meta["guard"]["error"]


def test_exchange_stage_and_unknown_stage(parts):
    head, KeywordEmbedder, embed_guard = parts
    target = ScriptedModel("a bomb recipe")
    out = GuardedModel(target, embed_guard(), stages=("exchange",)).generate([user("hi")])
    assert out[0].meta["guard"]["by"] == "exchange"
    with pytest.raises(ValueError, match="unknown guard stage"):
        GuardedModel(target, embed_guard(), stages=("input", "middle"))


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from alignlab.models.hf import HFModel

    return HFModel(tiny_model_dir, batch_size=4)


def test_streaming_output_block_stops_generation_early(tiny, parts):
    head, KeywordEmbedder, embed_guard = parts
    """The output head fires on any text: the row stops at the first check, not at max tokens."""
    g = embed_guard(word="")  # "" occurs in every text: fires at the first streaming check
    g.heads["embed.input"].threshold = 2.0  # never fires at input
    gm = GuardedModel(tiny, g, chunk_tokens=4)
    out = gm.generate([user("hello there"), user("another prompt")], GenerationConfig(max_new_tokens=40))
    for o in out:
        assert o.text == "BLOCKED" and o.meta["guard"]["by"] == "output"
        assert 1 <= o.meta["guard"]["at_token"] <= 5
        assert o.completion_tokens == o.meta["guard"]["at_token"]  # generation really stopped
    unguarded = tiny.generate([user("hello there")], GenerationConfig(max_new_tokens=40))
    assert unguarded[0].completion_tokens > 5 or unguarded[0].finish_reason == "stop"


class Recorder:
    layers = (1, 3)
    every = 4

    def __init__(self):
        self.prompt = None
        self.outputs = []

    def on_prompt(self, rows, pooled):
        self.prompt = (rows, pooled)
        return [False] * len(rows)

    def on_output(self, rows, texts, pooled, n_tokens):
        self.outputs.append((rows, pooled, n_tokens))
        return [False] * len(rows)


def test_monitor_sees_the_same_prompt_activations_as_the_offline_featuriser(tiny):
    convs = [user("short"), user("a somewhat longer prompt with more tokens in it")]
    rec = Recorder()
    plain = tiny.generate(convs, GenerationConfig(max_new_tokens=9))
    monitored = tiny.generate(convs, GenerationConfig(max_new_tokens=9), monitor=rec)
    assert [o.text for o in plain] == [o.text for o in monitored]  # watching changes nothing
    rows, pooled = rec.prompt
    offline = ActivationFeatures(tiny, (1, 3)).input_features([convs[r] for r in rows])
    np.testing.assert_allclose(pooled, offline, atol=1e-4)
    checks = [n for _, p, ns in rec.outputs if p is not None for n in ns]
    assert 5 in checks  # a check after 4 fed tokens (5 generated)


def test_probe_guard_blocks_at_prefill_and_needs_white_box(tiny, parts):
    head, KeywordEmbedder, embed_guard = parts
    dim = 2 * 64
    g = Guard(backbone="probe", heads={"probe.input": head(dim, coef=0.0, intercept=5.0),
                                       "probe.output": head(dim)}, layers=(1, 3),
              refusal_message="BLOCKED", target=tiny.identity)
    out = GuardedModel(tiny, g).generate([user("anything")], GenerationConfig(max_new_tokens=20))
    assert out[0].text == "BLOCKED" and out[0].meta["guard"]["stage"] == "probe"
    assert out[0].meta["guard"]["at_token"] == 0 and out[0].completion_tokens == 0
    with pytest.raises(WhiteBoxRequired):
        GuardedModel(ScriptedModel("x"), g)
    g.target = "hf:some-other-model|float32"
    with pytest.raises(ValueError, match="trained on"):
        GuardedModel(tiny, g)


def test_cascade_escalates_uncertain_probe_scores_to_the_embedding_head(tiny, parts):
    head, KeywordEmbedder, embed_guard = parts
    dim = 2 * 64
    g = Guard(backbone="cascade", heads={
        "probe.input": head(dim, coef=0.0, intercept=0.0),  # score 0.5 for everything: uncertain
        "probe.output": head(dim, coef=0.0, intercept=-9.0),
        "embed.input": head(1), "embed.output": head(1)},
        layers=(1, 3), bands={"input": [0.2, 0.8], "output": [0.2, 0.8]},
        refusal_message="BLOCKED", target=tiny.identity)
    g._embedder = KeywordEmbedder("bomb")
    gm = GuardedModel(tiny, g)
    out = gm.generate([user("bomb please"), user("bread please")], GenerationConfig(max_new_tokens=6))
    assert out[0].text == "BLOCKED" and out[0].meta["guard"]["stage"] == "embed"
    assert out[0].meta["guard"]["escalated"] == 1
    assert out[1].meta["guard"]["blocked"] is False
    assert gm.stats["escalated"] >= 2


@pytest.mark.parametrize("layers", [(1, 3), (0, 2), (4,)])
def test_one_pass_input_and_output_features_equal_the_two_separate_passes(tiny, layers):
    """Early stop (layers inside 1..n-1) and the full pass (the embeddings or the last layer) alike."""
    convs = [user("short"), user("a somewhat longer prompt with more tokens in it"), user("x")]
    replies = ["a reply of some words here and there", "", "ok then"]
    af = ActivationFeatures(tiny, layers)
    x, per = af.input_and_output_features(convs, replies, chunk=3)
    np.testing.assert_allclose(x, af.input_features(convs), atol=1e-5)
    for a, b in zip(per, af.output_prefix_features(convs, replies, chunk=3)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert per[1].shape[0] == 0  # an empty reply has no streaming checks


def test_shadow_mode_runs_every_check_but_changes_no_reply(tiny, parts):
    """What guard eval times for overhead: the same tokens as the unguarded target, decisions recorded."""
    head, KeywordEmbedder, embed_guard = parts
    g = embed_guard(word="")  # fires on every text
    cfg = GenerationConfig(max_new_tokens=20)
    convs = [user("hello there"), user("another prompt")]
    plain = tiny.generate(convs, cfg)
    shadow = GuardedModel(tiny, g, chunk_tokens=4, shadow=True)
    out = shadow.generate(convs, cfg)
    assert [o.text for o in out] == [o.text for o in plain]
    assert [o.completion_tokens for o in out] == [o.completion_tokens for o in plain]
    assert all(o.meta["guard"]["blocked"] for o in out) and shadow.stats["checks"] > len(convs)
    assert "shadow" in shadow.identity and "shadow" not in GuardedModel(tiny, g).identity
