"""HF backend on a tiny random Llama: batching must not change greedy outputs; scoring is exact."""

import pytest
import torch

from alignlab.models.base import GenerationConfig, msg, user
from alignlab.models.hf import HFModel

PROMPTS = [user("hi"), user("a much longer prompt " * 6), user("mid length prompt here"),
           [msg("system", "be terse"), msg("user", "why?")], user("x" * 40)]


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return HFModel(tiny_model_dir, batch_size=3)


def _reference(model, conv, n):
    ids = torch.tensor([model.encode(conv)])
    with torch.inference_mode():
        g = model.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                                 do_sample=False, pad_token_id=model.tokenizer.pad_token_id)
    new = g[0, ids.shape[1]:].tolist()
    eos = set(model.eos_ids)
    cut = next((i for i, t in enumerate(new) if t in eos), len(new))
    return model.tokenizer.decode(new[:cut], skip_special_tokens=True), cut


def test_batched_greedy_equals_one_at_a_time_hf_generate(model):
    outs = model.generate(PROMPTS, GenerationConfig(max_new_tokens=12))
    assert len(outs) == len(PROMPTS)
    for conv, o in zip(PROMPTS, outs):
        text, n = _reference(model, conv, 12)
        assert o.text == text
        assert o.completion_tokens == n
        assert o.finish_reason in ("stop", "length")
        assert o.prompt_tokens == len(model.encode(conv))


def test_stop_strings_and_length_finish(model):
    full = model.generate([PROMPTS[1]], GenerationConfig(max_new_tokens=10))[0]
    assert full.finish_reason == "length" or full.completion_tokens < 10
    if len(full.text) >= 3:
        stop = full.text[2:4]
        cut = model.generate([PROMPTS[1]], GenerationConfig(max_new_tokens=10, stop=(stop,)))[0]
        assert cut.text == full.text[:full.text.find(stop)]
        assert cut.finish_reason == "stop"


def test_seeded_sampling_is_reproducible_and_logprobs_align(model):
    cfg = GenerationConfig(max_new_tokens=8, temperature=1.0, seed=5, logprobs=True)
    a = model.generate(PROMPTS, cfg)
    b = model.generate(PROMPTS, cfg)
    assert [x.text for x in a] == [x.text for x in b]
    for x in a:
        assert len(x.logprobs) == x.completion_tokens
        assert all(lp <= 0 for lp in x.logprobs)


def test_score_matches_manual_log_likelihood(model):
    conv = user("question")
    cands = ["ab", "zzz"]
    got = model.score([conv], [cands])[0]
    for c, s in zip(cands, got):
        assert s == pytest.approx(manual_ll(model, conv, c), abs=1e-3)


def manual_ll(model, conv, c):
    """Log-likelihood of continuation ``c`` from one unbatched forward pass."""
    p = model.encode(conv)
    cont = model.tokenizer(c, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        lp = torch.log_softmax(model.model(input_ids=torch.tensor([p + cont])).logits[0].float(), -1)
    return sum(lp[len(p) - 1 + i, t].item() for i, t in enumerate(cont))


def test_batched_scoring_of_mixed_lengths_matches_one_at_a_time(model):
    """Left-padded batches with logits for the continuation only give the unbatched figures."""
    convs = [user("q"), user("a much longer question with many more tokens in it"), user("mid length")]
    cands = [["x", "a longer continuation here"], ["yes"], ["no", "maybe so", "z"]]
    batched = model.score(convs, cands)
    for conv, cs, got in zip(convs, cands, batched):
        for c, s in zip(cs, got):
            assert s == pytest.approx(model.score([conv], [[c]])[0][0], abs=1e-3)


def test_single_token_candidates_read_from_one_prompt_pass_match_manual(model):
    """Yes/No-style candidates (one token each) take the one-pass path; figures equal the manual ones."""
    convs = [user("q"), user("a much longer question with many more tokens in it")]
    cands = [["Y", "N"], ["a", "b", "c"]]
    got = model.score(convs, cands)
    for conv, cs, row in zip(convs, cands, got):
        p = model.encode(conv)
        with torch.inference_mode():
            lp = torch.log_softmax(model.model(input_ids=torch.tensor([p])).logits[0, -1].float(), -1)
        for c, s in zip(cs, row):
            (tid,) = model.tokenizer(c, add_special_tokens=False)["input_ids"]
            assert s == pytest.approx(lp[tid].item(), abs=1e-3)


def test_identity_names_path_and_dtype(model, tiny_model_dir):
    assert str(tiny_model_dir) in model.identity and "float32" in model.identity


def test_shared_prefix_candidates_take_one_pass_and_match_manual(model):
    """Candidates equal but for their last token ("(A" / "(B") read the prefix and the last token from
    one pass of prompt + prefix; mixed prompt and prefix lengths in one batch give the manual figures."""
    convs = [user("pick one"), user("a much longer prompt with many more tokens in it"), user("q")]
    cands = [["(A", "(B", "(C"], ["xyz1", "xyz2"], ["ab", "ab c"]]  # the last one takes the general path
    got = model.score(convs, cands)
    for conv, cs, row in zip(convs, cands, got):
        for c, s in zip(cs, row):
            assert s == pytest.approx(manual_ll(model, conv, c), abs=1e-3)
    assert len(model.tokenizer("(A", add_special_tokens=False)["input_ids"]) == 2  # really multi-token


def test_prefill_groups_bound_padding_and_size():
    from alignlab.models.hf_cache import prefill_groups

    assert prefill_groups([]) == []
    assert prefill_groups([10, 10, 10], max_tokens=1024) == [(0, 3)]
    # 2000 tokens exceed the cap on their own: that prompt is a group of one.
    assert prefill_groups([2000, 30, 29], max_tokens=1024) == [(0, 1), (1, 3)]
    # The cap on rows x width splits equal lengths.
    assert prefill_groups([100] * 25, max_tokens=1024) == [(0, 10), (10, 20), (20, 25)]
    lengths = sorted([3, 90, 91, 40, 38, 37, 5, 6, 200, 199], reverse=True)
    groups = prefill_groups(lengths, max_tokens=1024, max_waste=0.1)
    assert groups[0][0] == 0 and groups[-1][1] == len(lengths)
    assert all(a[1] == b[0] for a, b in zip(groups, groups[1:]))  # contiguous, every row once
    for s, e in groups:
        rows, w = e - s, lengths[s]
        assert rows == 1 or rows * w <= 1024
        assert rows * w - sum(lengths[s:e]) <= 0.1 * rows * w


def test_grouped_prefill_of_mixed_lengths_gives_the_stock_unpacked_outputs(tiny_model_dir, monkeypatch):
    """Several prefill groups per batch (a small token cap) and oneDNN-packed linears still give
    stock transformers' greedy tokens and the same per-token log-probabilities, one prompt at a
    time, on a model loaded without packing."""
    import alignlab.models.hf as hf

    monkeypatch.setattr(hf, "PREFILL_TOKENS", 40)
    fast = HFModel(tiny_model_dir, batch_size=8)
    stock = HFModel(tiny_model_dir, batch_size=1, onednn=False)
    assert stock.packed_linears == 0 and (fast.packed_linears > 0 or not hf_onednn_available())
    lengths = sorted((len(fast.encode(c)) for c in PROMPTS), reverse=True)
    assert len(hf.prefill_groups(lengths, 40)) >= 3  # really grouped
    cfg = GenerationConfig(max_new_tokens=12, logprobs=True)
    got = fast.generate(PROMPTS, cfg)
    for conv, o in zip(PROMPTS, got):
        text, n = _reference(stock, conv, 12)
        assert (o.text, o.completion_tokens) == (text, n)
        ref = stock.generate([conv], cfg)[0]
        assert o.logprobs == pytest.approx(ref.logprobs, abs=1e-3)


def hf_onednn_available():
    from alignlab.models import onednn

    return onednn.available()
