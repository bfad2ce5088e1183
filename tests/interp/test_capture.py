"""Capture, the activation store, corpora: known answers on the tiny random Llama."""

from __future__ import annotations

import json

import pytest

from alignlab.interp.acts import HOLDOUT_EVERY, ActivationStore, ActivationWriter, ActsError
from alignlab.interp.capture import CaptureConfig, capture, pack
from alignlab.interp.corpus import CorpusError, Doc, interleave, open_corpus

TEXTS = [f"Document {i}: " + " ".join(f"word{j % 17} alpha beta" for j in range(i * 7 + 5)) for i in range(40)]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from alignlab.models.hf import HFModel

    return HFModel(str(tiny_model_dir), name="tiny")


def docs():
    return [Doc(t, "test") for t in TEXTS]


def test_pack_fixed_contexts_each_segment_starts_with_bos(tiny):
    tok = tiny.tokenizer
    ctxs = list(pack(docs(), tok, 32))
    assert ctxs and all(len(c[0]) == 32 for c in ctxs)
    bos = tok.bos_token_id
    for ids, doc_ids, pos, _ in ctxs:
        assert ids[0] == bos and pos[0] == 0
        for i in range(1, 32):
            # a new segment (pos 0) is exactly where the document changes or a context starts
            assert (pos[i] == 0) == (doc_ids[i] != doc_ids[i - 1])
            assert (ids[i] == bos) == (pos[i] == 0)
    # the text survives packing: document 3's tokens, concatenated over contexts, decode back
    seg = [t for ids, d, p, _ in ctxs for t, dd, pp in zip(ids, d, p) if dd == 3 and pp > 0]
    assert tok.decode(seg) == TEXTS[3]


def test_capture_equals_hidden_states_and_stops_early(tiny, tmp_path):
    import torch

    from alignlab.models.whitebox import decoder_layers

    calls = []
    handle = decoder_layers(tiny.model)[3].register_forward_hook(lambda *a: calls.append(1))
    try:
        store = capture(tiny, docs(), tmp_path / "acts",
                        CaptureConfig(layers=(0, 2), sites=("resid", "mlp_out"), tokens=300,
                                      context_len=32, batch_size=4, dtype="float32"))
    finally:
        handle.remove()
    assert calls == []  # block 3 never ran: the forward stopped after block 2
    assert store.n_tokens >= 300 and store.meta["complete"] and store.n_tokens % 32 == 0
    ids, doc_ids, pos = store.tokens()
    ctx = ids[:64].view(2, 32)
    with torch.inference_mode():
        hs = tiny.model(input_ids=ctx, output_hidden_states=True).hidden_states
    for layer in (0, 2):
        got = store.load(f"resid.{layer}", 0, 64)
        assert torch.allclose(got, hs[layer + 1].reshape(64, -1), atol=1e-5)
    assert store.load("mlp_out.2", 0, 64).shape == (64, 64)
    assert set(store.meta["tokens_by_source"]) == {"test"}


def test_capture_resumes_to_the_same_store(tiny, tmp_path):
    import torch

    cfg = dict(layers=(1,), tokens=256, context_len=32, batch_size=2, dtype="float16", shard_tokens=64)
    whole = capture(tiny, docs(), tmp_path / "whole", CaptureConfig(**cfg))
    part = capture(tiny, docs(), tmp_path / "part", CaptureConfig(**{**cfg, "tokens": 128}))
    assert not part.meta["complete"] or part.n_tokens == 128
    resumed = capture(tiny, docs(), tmp_path / "part", CaptureConfig(**cfg))
    assert resumed.n_tokens == whole.n_tokens
    assert torch.equal(resumed.tokens()[0], whole.tokens()[0])
    assert torch.equal(resumed.load("resid.1"), whole.load("resid.1"))


def test_resume_with_other_settings_is_one_clear_error(tiny, tmp_path):
    capture(tiny, docs(), tmp_path / "a", CaptureConfig(layers=(1,), tokens=64, context_len=32))
    with pytest.raises(ActsError, match=r"layers is \[1\] on disk but \[2\] was asked"):
        capture(tiny, docs(), tmp_path / "a", CaptureConfig(layers=(2,), tokens=128, context_len=32))


def test_bad_layer_and_site(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"outside 0..3"):
        capture(tiny, docs(), tmp_path / "x", CaptureConfig(layers=(9,), tokens=64))
    with pytest.raises(ValueError, match="unknown"):
        capture(tiny, docs(), tmp_path / "x", CaptureConfig(layers=(1,), sites=("attn",), tokens=64))


def _store(tmp_path, n_ctx=40, t=8):
    import torch

    w = ActivationWriter(tmp_path / "s", {"model": "m", "layers": [0], "sites": ["resid"], "d_model": 2,
                                          "dtype": "float32", "context_len": t}, shard_tokens=3 * t)
    for c in range(n_ctx):
        rows = torch.arange(c * t, (c + 1) * t, dtype=torch.float32)
        w.add({"resid.0": torch.stack([rows, rows], 1)}, [5] * t, [c] * t, list(range(t)))
    w.close()
    return ActivationStore(tmp_path / "s")


def test_splits_partition_contexts_and_batches_share_rows(tmp_path):
    import torch

    s = _store(tmp_path)
    t = 8
    train = s.load("resid.0", split="train")[:, 0].long()
    held = s.load("resid.0", split="heldout")[:, 0].long()
    assert len(train) + len(held) == s.n_tokens
    assert set((held // t).tolist()) == {c for c in range(40) if c % HOLDOUT_EVERY == HOLDOUT_EVERY - 1}
    seen = torch.cat([b["resid.0"][:, 0] for b in s.batches(["resid.0"], 4, shuffle_buffer=16,
                                                            split="heldout", skip_positions=1)]).long()
    assert set(seen.tolist()) <= set(held.tolist())
    assert all(v % t != 0 for v in seen.tolist())  # position-0 rows skipped
    no_bos = s.load("resid.0", skip_positions=1)
    assert len(no_bos) == s.n_tokens - 40


def test_store_errors_name_the_problem(tmp_path):
    with pytest.raises(ActsError, match="no meta.json"):
        ActivationStore(tmp_path)
    s = _store(tmp_path)
    with pytest.raises(ActsError, match=r"no activations 'resid.9'; it holds resid.0"):
        s.load("resid.9")


def test_corpus_files_and_errors(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text(json.dumps({"body": "hello there"}) + "\n" + json.dumps({"body": 3}) + "\n")
    with pytest.raises(CorpusError, match=r"c.jsonl, row 1: no string field 'text'"):
        list(open_corpus(str(p)))
    with pytest.raises(CorpusError, match=r"row 2: no string field 'body'"):
        list(open_corpus(f"{p}:body"))
    with pytest.raises(CorpusError, match="no such file"):
        open_corpus(str(tmp_path / "missing.txt"))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("first")
    (tmp_path / "d" / "b.md").write_text("second")
    assert [d.text for d in open_corpus(str(tmp_path / "d"))] == ["first", "second"]


def test_default_corpus_mixes_its_sources_offline():
    from itertools import islice

    head = list(islice(open_corpus("default"), 400))
    sources = {d.source for d in head}
    assert {"stdlib-docstrings", "python-reference", "stdlib-source"} <= sources
    merged = list(interleave([[Doc("a" * 10, "x")] * 3, [Doc("b" * 30, "y")] * 3]))
    # drawn by characters given so far: x's three 10-char docs balance y's first 30-char doc
    assert [d.source for d in merged] == ["x", "y", "x", "x", "y", "y"]


def test_hf_corpus_reads_a_datasets_folder_offline(tmp_path):
    """`hf:` goes through datasets.load_dataset; a local folder exercises it without a hub."""
    pytest.importorskip("datasets")
    d = tmp_path / "ds"
    d.mkdir()
    (d / "train.jsonl").write_text("\n".join(json.dumps({"text": f"doc {i}"}) for i in range(5)))
    docs = list(open_corpus(f"hf:{d}"))
    assert [x.text for x in docs] == [f"doc {i}" for i in range(5)]
    with pytest.raises(CorpusError, match="cannot load"):
        list(open_corpus(f"hf:{tmp_path / 'nothing-here'}"))
