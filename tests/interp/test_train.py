"""SAE training: hand-written gradients, BatchTopK selection, feature recovery, resume, bad input."""

import json

import pytest
import torch

from alignlab.interp.acts import ActivationStore, ActivationWriter, ActsError
from alignlab.interp.train import (
    CKPT_FILE,
    DONE_FILE,
    LOG_FILE,
    SAETrainConfig,
    TrainError,
    _Layer,
    _schedule,
    train_saes,
)
from alignlab.interp.train_step import select_batchtopk, select_topk, sparse_step

D, N_FEAT, ACTIVE = 64, 128, 3


def synthetic_store(path, n=65536, seed=0, keys=("resid.0",)):
    """Tokens that are sums of 3 of 128 unit directions (coefficients 0.5..1.5) plus an offset."""
    # data seeds far from the trainer's (0..4): the same seed would make the trainer's random initial
    # decoder rows equal to the ground-truth directions
    g = torch.Generator().manual_seed(9000 + seed)
    feats = torch.randn(N_FEAT, D, generator=g)
    feats /= feats.norm(dim=-1, keepdim=True)
    acts = {}
    for key in keys:
        idx = torch.rand(n, N_FEAT, generator=g).topk(ACTIVE, dim=-1).indices
        coef = torch.rand(n, ACTIVE, generator=g) + 0.5
        x = (coef[..., None] * feats[idx]).sum(1) + torch.randn(D, generator=g) * 0.5
        acts[key] = x
    layers = sorted({int(k.split(".")[1]) for k in keys})
    w = ActivationWriter(path, {"model": "synthetic", "layers": layers, "sites": ["resid"], "context_len": 64,
                                "d_model": D, "dtype": "float32"}, shard_tokens=16384)
    w.add(acts, torch.zeros(n, dtype=torch.int32), torch.arange(n) // 64, torch.arange(n) % 64 + 1)
    w.close()
    return ActivationStore(path), feats


def train_steps(store, batch_size):
    """Steps of one pass over the train split (every 20th 64-token context is held out)."""
    return int(store.split_mask(0, store.n_tokens, "train").sum()) // batch_size


def mean_max_cos(feats, sae):
    return float((feats @ sae.W_dec.detach().t()).max(dim=1).values.mean())


SMALL = dict(width=256, k=3, batch_size=256, lr=0.01, log_every=16, threads=1)


@pytest.mark.parametrize("arch", ["topk", "batchtopk"])
def test_sparse_step_gradients_match_autograd(arch):
    torch.manual_seed(0)
    B, d, F, k, aux_k, coef = 64, 16, 48, 4, 5, 0.5
    init = {"W_enc": torch.randn(d, F) / 4, "b_enc": torch.randn(F) * 0.1,
            "W_dec": torch.randn(F, d) / 4, "b_dec": torch.randn(d) * 0.1}
    x = torch.randn(B, d) + 1
    dead = torch.zeros(F, dtype=torch.bool)
    dead[::3] = True
    select = (lambda p: select_topk(p, k)) if arch == "topk" else (lambda p: select_batchtopk(p, k))
    params = {n: torch.nn.Parameter(v.clone()) for n, v in init.items()}
    with torch.no_grad():
        stats = sparse_step(params, x, select, dead, aux_k=aux_k, aux_coef=coef)
    # the dense formulation, differentiated by autograd
    ref = {n: v.clone().requires_grad_() for n, v in init.items()}
    pre = (x - ref["b_dec"]) @ ref["W_enc"] + ref["b_enc"]
    crow, cols, _ = select(pre.detach())
    mask = torch.zeros(B, F)
    mask[torch.repeat_interleave(torch.arange(B), crow.diff()), cols] = 1
    err = (pre.relu() * mask) @ ref["W_dec"] + ref["b_dec"] - x
    total_var = (x - x.mean(0)).pow(2).sum()
    fvu = err.pow(2).sum() / total_var
    idx = dead.nonzero()[:, 0]
    acts = pre[:, idx].relu()
    keep = torch.zeros_like(acts).scatter_(-1, acts.detach().topk(aux_k, dim=-1).indices, 1.0)
    aux = ((acts * keep) @ ref["W_dec"][idx] + err.detach()).pow(2).sum() / total_var
    (fvu + coef * min(len(idx) / aux_k, 1) * aux).backward()
    assert stats["fvu"] == pytest.approx(float(fvu.detach()), rel=1e-5)
    assert stats["aux"] == pytest.approx(float(aux.detach()), rel=1e-5)
    for n in init:
        torch.testing.assert_close(params[n].grad, ref[n].grad, rtol=1e-4, atol=1e-6)


def test_batchtopk_selection_is_exact_even_when_a_row_takes_many():
    torch.manual_seed(1)
    pre = torch.randn(32, 200)
    pre[5] += 10  # row 5 holds far more than 4k of the batch's top k*B values
    k = 3
    crow, cols, vals = select_batchtopk(pre, k)
    flat = pre.relu().reshape(-1).topk(k * 32)
    want = torch.zeros(32 * 200)
    want[flat.indices] = flat.values
    got = torch.zeros(32, 200)
    got[torch.repeat_interleave(torch.arange(32), crow.diff()), cols] = vals
    torch.testing.assert_close(got.reshape(-1), want)
    assert int(crow.diff()[5]) > 4 * k
    assert all(bool((c.diff() > 0).all()) for c in torch.split(cols, crow.diff().tolist()))


def test_schedule_warms_up_holds_and_decays_to_zero():
    lrs = [_schedule(s, 100, 1.0, 10, 0.2) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == 1.0 and lrs[79] == 1.0
    assert lrs[80] == pytest.approx(1.0) and lrs[99] == pytest.approx(0.05)
    assert all(a >= b for a, b in zip(lrs[80:], lrs[81:]))


@pytest.mark.parametrize("arch", ["topk", "batchtopk"])
def test_recovers_ground_truth_features(tmp_path, arch):
    store, feats = synthetic_store(tmp_path / "acts")
    cfg = SAETrainConfig(arch=arch, **SMALL)
    start = _Layer("resid.0", D, cfg.resolve(D), torch.Generator().manual_seed(cfg.seed)).params["W_dec"]
    assert float((feats @ start.detach().t()).max(dim=1).values.mean()) < 0.7  # the initial decoder is far off
    sae = train_saes(store, ["resid.0"], cfg, tmp_path / "out")["resid.0"]
    assert mean_max_cos(feats, sae) >= 0.9
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(256), atol=1e-5)
    log = [json.loads(l) for l in (tmp_path / "out" / "resid.0" / LOG_FILE).read_text().splitlines()]
    assert set(log[0]) >= {"step", "tokens", "mse", "fvu", "aux_loss", "l0", "dead_frac", "lr"}
    steps = train_steps(store, 256)
    assert log[-1]["step"] == steps and log[-1]["tokens"] == steps * 256 and log[-1]["lr"] < log[0]["lr"]
    assert log[-1]["fvu"] < 0.1 and log[-1]["fvu"] < log[0]["fvu"]
    if arch == "batchtopk":
        assert sae.cfg.arch == "jumprelu" and sae.cfg.training["training_architecture"] == "batchtopk"
        # the learned threshold keeps about k latents per token on the training data
        l0 = (sae.encode(store.load("resid.0", 0, 8192)) > 0).sum(-1).float().mean()
        assert 2 <= float(l0) <= 4.5


def test_trains_several_layers_in_one_pass(tmp_path):
    store, _ = synthetic_store(tmp_path / "acts", n=8192, keys=("resid.0", "resid.1"))
    calls = []
    saes = train_saes(store, ["resid.0", "resid.1"], SAETrainConfig(width=128, k=3, batch_size=512, threads=1),
                      tmp_path / "out", progress=lambda done, total: calls.append((done, total)))
    assert set(saes) == {"resid.0", "resid.1"}
    steps = train_steps(store, 512)
    assert steps == 15 and calls == [(512 * i, 512 * steps) for i in range(1, steps + 1)]
    for key, layer in (("resid.0", 0), ("resid.1", 1)):
        cfg = json.loads((tmp_path / "out" / key / "cfg.json").read_text())
        assert cfg["metadata"]["hook_name"] == f"blocks.{layer}.hook_resid_post"
        assert cfg["architecture"] == "topk" and cfg["k"] == 3 and cfg["d_sae"] == 128


def test_trains_on_the_train_split_only(tmp_path):
    """Held-out contexts filled with NaN never reach the weights."""
    n = 8192
    x = torch.randn(n, D)
    w = ActivationWriter(tmp_path / "acts", {"model": "synthetic", "layers": [0], "sites": ["resid"],
                                             "context_len": 64, "d_model": D, "dtype": "float32"})
    store_rows = torch.arange(n)
    x[(store_rows // 64) % 20 == 19] = float("nan")
    w.add({"resid.0": x}, torch.zeros(n, dtype=torch.int32), store_rows // 64, store_rows % 64)
    w.close()
    store = ActivationStore(tmp_path / "acts")
    sae = train_saes(store, ["resid.0"], SAETrainConfig(width=128, k=3, batch_size=256, threads=1),
                     tmp_path / "out")["resid.0"]
    assert all(bool(p.isfinite().all()) for p in sae.parameters())
    with pytest.raises(TrainError, match="split: 'heldout' is not train or all"):
        train_saes(store, ["resid.0"], SAETrainConfig(width=128, k=3, split="heldout"), tmp_path / "o2")


class _Stop(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    store, _ = synthetic_store(tmp_path / "acts", n=16384)
    cfg = SAETrainConfig(width=128, k=3, batch_size=512, checkpoint_every=10, log_every=1,
                         threads=1)
    full = train_saes(store, ["resid.0"], cfg, tmp_path / "full")["resid.0"]

    def stop_at_15(done, total):
        if done == 15 * 512:
            raise _Stop

    with pytest.raises(_Stop):
        train_saes(store, ["resid.0"], cfg, tmp_path / "resumed", progress=stop_at_15)
    assert (tmp_path / "resumed" / CKPT_FILE).exists() and not (tmp_path / "resumed" / DONE_FILE).exists()
    seen = []
    resumed = train_saes(store, ["resid.0"], cfg, tmp_path / "resumed",
                         progress=lambda done, total: seen.append(done))["resid.0"]
    steps = train_steps(store, 512)
    assert seen[0] == 11 * 512 and seen[-1] == steps * 512  # restarted after the step-10 checkpoint
    for name, p in full.named_parameters():
        torch.testing.assert_close(getattr(resumed, name), p, rtol=0, atol=1e-6)
    logged = [json.loads(l)["step"] for l in (tmp_path / "resumed" / "resid.0" / LOG_FILE).open()]
    assert logged == list(range(1, steps + 1))  # lines 11..15 of the interrupted run were dropped
    done = json.loads((tmp_path / "resumed" / DONE_FILE).read_text())
    assert done["resumed_at_step"] == 10 and done["steps"] == steps and done["tokens"] == steps * 512
    assert not (tmp_path / "resumed" / CKPT_FILE).exists()
    # a finished run is returned as saved; other settings in the same out_dir are refused
    again = train_saes(store, ["resid.0"], cfg, tmp_path / "resumed")["resid.0"]
    torch.testing.assert_close(again.W_enc, resumed.W_enc)
    with pytest.raises(TrainError, match="k=3.*k=4.*new out_dir"):
        train_saes(store, ["resid.0"], SAETrainConfig(width=128, k=4, batch_size=512, checkpoint_every=10,
                                                      log_every=1), tmp_path / "resumed")


@pytest.mark.parametrize("change, match", [
    (dict(arch="gated"), r"SAETrainConfig.arch: 'gated' is not one of topk, batchtopk"),
    (dict(k=300), r"SAETrainConfig.k: 300 must be between 1 and the width \(256\)"),
    (dict(batch_size=10 ** 6), r"fewer than one batch of 1000000"),
])
def test_bad_settings_give_one_clear_line(tmp_path, change, match):
    store, _ = synthetic_store(tmp_path / "acts", n=2048)
    with pytest.raises(TrainError, match=match) as e:
        train_saes(store, ["resid.0"], SAETrainConfig(**{**SMALL, **change}), tmp_path / "out")
    assert "\n" not in str(e.value)


def test_missing_key_gives_one_clear_line(tmp_path):
    store, _ = synthetic_store(tmp_path / "acts", n=2048)
    with pytest.raises(ActsError, match=r"no activations 'resid.7'; it holds resid.0") as e:
        train_saes(store, ["resid.7"], SAETrainConfig(**SMALL), tmp_path / "out")
    assert "\n" not in str(e.value)
