"""oneDNN-packed linears: same outputs as nn.Linear, same parameters, safe fallbacks.

What these prove: packing swaps modules without changing the model's parameters (count, objects,
tied embeddings) or its outputs beyond fp32 summation order; training and in-place weight edits
use the current weights (no stale packed copy); bf16 models and ALIGNLAB_ONEDNN=0 are left alone.
"""

import pytest
import torch
from transformers import AutoModelForCausalLM

from alignlab.models import onednn

pytestmark = pytest.mark.skipif(not onednn.available(), reason="this torch build has no oneDNN")


def _load(path, dtype=torch.float32):
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval()


def test_packed_model_matches_stock_and_keeps_its_parameters(tiny_model_dir):
    stock, packed = _load(tiny_model_dir), _load(tiny_model_dir)
    n_linear = sum(type(m) is torch.nn.Linear for m in packed.modules())
    before = {k: v for k, v in packed.named_parameters()}
    assert onednn.pack_linears(packed) == n_linear > 0
    assert not any(type(m) is torch.nn.Linear for m in packed.modules())
    after = dict(packed.named_parameters())
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)
    assert packed.state_dict().keys() == stock.state_dict().keys()  # the packed copy is not saved
    ids = torch.randint(0, stock.config.vocab_size, (3, 17))
    with torch.inference_mode():
        a, b = stock(input_ids=ids).logits, packed(input_ids=ids).logits
    assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_tied_lm_head_stays_tied(tiny_model_dir):
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(tiny_model_dir)
    cfg.tie_word_embeddings = True
    m = AutoModelForCausalLM.from_config(cfg).eval()
    m.tie_weights()
    assert m.lm_head.weight is m.get_input_embeddings().weight
    onednn.pack_linears(m)
    assert m.lm_head.weight is m.get_input_embeddings().weight


def test_gradients_and_in_place_edits_use_the_current_weights(tiny_model_dir):
    m = _load(tiny_model_dir)
    onednn.pack_linears(m)
    lin = m.lm_head
    x = torch.randn(4, lin.in_features, requires_grad=True)
    y = lin(x)
    y.sum().backward()  # falls back to F.linear: gradients flow to both input and weight
    assert x.grad is not None and lin.weight.grad is not None
    with torch.no_grad():
        lin.weight.mul_(2.0)  # an optimiser step or an ablation edits the weight in place
        assert torch.allclose(lin(x), x @ lin.weight.T, atol=1e-4, rtol=1e-4)


def test_bf16_models_and_the_switch_leave_linears_alone(tiny_model_dir, monkeypatch):
    assert onednn.pack_linears(_load(tiny_model_dir, torch.bfloat16)) == 0
    monkeypatch.setenv("ALIGNLAB_ONEDNN", "0")
    m = _load(tiny_model_dir)
    assert onednn.pack_linears(m) == 0
    assert any(type(x) is torch.nn.Linear for x in m.modules())


def test_too_large_models_are_not_packed(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(onednn, "MAX_PACKED_BYTES", 1000)
    assert onednn.pack_linears(_load(tiny_model_dir)) == 0


def test_reassigned_weights_conversions_and_copies_stay_correct(tiny_model_dir):
    import copy

    m = _load(tiny_model_dir)
    onednn.pack_linears(m)
    lin = m.lm_head
    x = torch.randn(4, lin.in_features)
    with torch.inference_mode():
        lin.weight.data = torch.randn_like(lin.weight)  # .data reassigned: no version bump
        assert torch.allclose(lin(x), x @ lin.weight.T, atol=1e-4, rtol=1e-4)
    twin = copy.deepcopy(m)  # a packed module copies like a stock one
    ids = torch.randint(0, m.config.vocab_size, (2, 9))
    with torch.inference_mode():
        assert torch.allclose(twin(input_ids=ids).logits, m(input_ids=ids).logits, atol=1e-5)
        m64 = m.to(torch.float64)  # other dtypes take the stock path
        y = m64.lm_head(x.double())
    assert y.dtype == torch.float64 and torch.allclose(y, x.double() @ m64.lm_head.weight.T, atol=1e-6)
