"""Model specs and the completion cache."""

import pytest

from alignlab.models import (
    CachedModel,
    CompletionCache,
    GenerationConfig,
    ScriptedModel,
    SpecError,
    load_model,
    parse_spec,
    user,
)


def test_parse_specs():
    assert parse_spec("embedded:smollm2-135m-instruct") == ("embedded", "smollm2-135m-instruct", None)
    assert parse_spec("openai:gpt-4o-mini") == ("openai", "gpt-4o-mini", None)
    assert parse_spec("openai:m@http://127.0.0.1:8000/v1") == ("openai", "m", "http://127.0.0.1:8000/v1")
    assert parse_spec("hf:/tmp/x") == ("hf", "/tmp/x", None)


@pytest.mark.parametrize("bad,needle", [
    ("gpt4", "unknown model spec 'gpt4'"),
    ("ollama:llama3", "unknown model spec 'ollama:llama3'"),
    ("openai:m@127.0.0.1", "must be an http(s) URL"),
    ("embedded:nope", "unknown embedded model 'nope'"),
    ("hf:/does/not/exist", "does not exist"),
])
def test_bad_specs_fail_with_one_line(bad, needle):
    with pytest.raises(SpecError) as e:
        load_model(bad)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_cache_hits_for_deterministic_requests_only(tmp_path):
    inner = ScriptedModel(lambda c: c[-1]["content"].upper())
    m = CachedModel(inner, CompletionCache(tmp_path / "c.sqlite"))
    convs = [user("a"), user("b")]
    first = m.generate(convs, GenerationConfig())
    again = m.generate(convs + [user("c")], GenerationConfig())
    assert [c.text for c in again] == ["A", "B", "C"]
    assert [c.cached for c in again] == [True, True, False]
    assert len(inner.calls) == 3  # a, b, then only c
    m.generate(convs, GenerationConfig(temperature=0.7))  # unseeded sampling bypasses the cache
    assert len(inner.calls) == 5
    # A new process (new cache object on the same file) sees the stored completions.
    m2 = CachedModel(ScriptedModel("never"), CompletionCache(tmp_path / "c.sqlite"))
    assert [c.text for c in m2.generate(convs, GenerationConfig())] == [c.text for c in first]


def test_cache_key_includes_config_and_never_stores_errors(tmp_path):
    inner = ScriptedModel("x y z", fail_on=("boom",))
    m = CachedModel(inner, CompletionCache(tmp_path / "c.sqlite"))
    m.generate([user("q")], GenerationConfig(max_new_tokens=5))
    m.generate([user("q")], GenerationConfig(max_new_tokens=6))
    assert len(inner.calls) == 2
    m.generate([user("boom")], GenerationConfig())
    m.generate([user("boom")], GenerationConfig())
    assert len(inner.calls) == 4


def test_can_score_probes_each_model_once():
    from alignlab.models.base import can_score
    from alignlab.models.scripted import ScriptedModel

    calls = []
    m = ScriptedModel(score_fn=lambda conv, c: calls.append(c) or 0.0)
    assert can_score(m) and can_score(m) and len(calls) == 1

    class BlackBox(ScriptedModel):
        def score(self, conversations, continuations):
            raise NotImplementedError("no logprobs")

    assert can_score(BlackBox()) is False
