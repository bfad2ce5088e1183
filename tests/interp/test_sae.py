"""SAE format (SAELens round trip both ways), input-scale folding, and reconstruction metrics."""

import json

import pytest
import torch

from alignlab.interp.acts import ActivationStore, ActivationWriter
from alignlab.interp.metrics import reconstruction_metrics
from alignlab.interp.sae import SAE, SAEConfig, SAEError, load_sae
from alignlab.interp.train import SAETrainConfig, fold_input_scale, train_saes

D = 32


def store_of(path, x, positions=None):
    n = len(x)
    w = ActivationWriter(path, {"model": "synthetic", "layers": [3], "sites": ["resid"], "d_model": x.shape[1],
                                "dtype": "float32", "context_len": 50}, shard_tokens=1000)
    pos = torch.arange(n) % 50 + 1 if positions is None else positions
    w.add({"resid.3": x}, torch.zeros(n, dtype=torch.int32), torch.arange(n) // 50, pos)
    w.close()
    return ActivationStore(path)


def sparse_data(n=16384, d=D, n_feat=64, seed=0):
    g = torch.Generator().manual_seed(9000 + seed)  # not the trainer's seed (see test_train.py)
    feats = torch.randn(n_feat, d, generator=g)
    feats /= feats.norm(dim=-1, keepdim=True)
    idx = torch.rand(n, n_feat, generator=g).topk(3, dim=-1).indices
    # large raw scale and offset, so that folding the input scale matters
    return 40 * ((torch.rand(n, 3, generator=g)[..., None] + 0.5) * feats[idx]).sum(1) + 7


def random_sae(arch, d_in=D, d_sae=96, seed=0):
    torch.manual_seed(seed)
    sae = SAE(SAEConfig(d_in=d_in, d_sae=d_sae, arch=arch, k=8 if arch == "topk" else None,
                        hook_name="blocks.3.hook_resid_post", hook_layer=3, model_name="m"))
    with torch.no_grad():
        sae.W_enc.normal_(0, 0.3)
        sae.b_enc.normal_(0, 0.1)
        sae.b_dec.normal_(0, 0.5)
        if arch == "jumprelu":
            sae.threshold.uniform_(0.0, 0.5)
    return sae


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A topk and a batchtopk SAE trained (briefly) on raw-scale synthetic activations."""
    root = tmp_path_factory.mktemp("trained")
    store = store_of(root / "acts", sparse_data())
    out = {}
    for arch in ("topk", "batchtopk"):
        cfg = SAETrainConfig(arch=arch, width=96, k=4, batch_size=256, lr=0.01, threads=1)
        out[arch] = (train_saes(store, ["resid.3"], cfg, root / arch)["resid.3"], root / arch / "resid.3")
    return store, out


@pytest.mark.parametrize("arch", ["topk", "batchtopk"])
def test_saelens_loads_our_sae_and_reconstructs_the_same(trained, arch):
    sae_lens = pytest.importorskip("sae_lens")
    store, saes = trained
    ours, path = saes[arch]
    theirs = sae_lens.SAE.load_from_disk(path)
    assert type(theirs).__name__ == ("TopKSAE" if arch == "topk" else "JumpReLUSAE")
    x = store.load("resid.3", 0, 2000)
    with torch.no_grad():
        torch.testing.assert_close(theirs.encode(x), ours.encode(x), rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(theirs(x), ours(x), rtol=1e-5, atol=1e-4)
        # and they reconstruct raw activations (an unfolded input scale of ~0.04 would give FVU ~1)
        assert float((ours(x) - x).pow(2).sum() / (x - x.mean(0)).pow(2).sum()) < 0.4
    assert theirs.cfg.metadata.hook_name == "blocks.3.hook_resid_post"


def test_cfg_json_has_saelens_keys(trained):
    sae_lens = pytest.importorskip("sae_lens")
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig

    _, saes = trained
    ref = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=D, d_sae=96, k=4))
    ref.save_inference_model(saes["topk"][1].parent / "saelens_ref")
    want = json.loads((saes["topk"][1].parent / "saelens_ref" / "cfg.json").read_text())
    got = json.loads((saes["topk"][1] / "cfg.json").read_text())
    assert set(got) == set(want)
    assert got["architecture"] == "topk" and got["normalize_activations"] == "none"
    assert sae_lens.__version__ >= got["metadata"]["sae_lens_version"]


@pytest.mark.parametrize("arch", ["topk", "jumprelu", "standard"])
def test_we_load_saelens_written_saes(tmp_path, arch):
    pytest.importorskip("sae_lens")
    from sae_lens.saes.jumprelu_sae import JumpReLUSAE, JumpReLUSAEConfig
    from sae_lens.saes.standard_sae import StandardSAE, StandardSAEConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig

    torch.manual_seed(0)
    if arch == "topk":  # trained with rescale_acts_by_decoder_norm and a decoder far from unit norm
        theirs = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=D, d_sae=80, k=6))
    elif arch == "jumprelu":
        theirs = JumpReLUSAE(JumpReLUSAEConfig(d_in=D, d_sae=80))
    else:
        theirs = StandardSAE(StandardSAEConfig(d_in=D, d_sae=80))
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_(0, 0.3)
        if arch == "jumprelu":
            theirs.threshold.uniform_(0, 0.3)
    if arch == "topk":
        theirs.save_inference_model(tmp_path)
    else:
        theirs.save_model(tmp_path)
    ours = load_sae(tmp_path)
    assert ours.cfg.arch == arch
    x = torch.randn(500, D)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ["topk", "jumprelu"])
def test_folded_sae_on_raw_inputs_equals_trained_sae_on_scaled_inputs(arch):
    sae, scale = random_sae(arch), 0.037
    folded = fold_input_scale(sae, scale)
    x = torch.randn(300, D) * 30 + 5
    with torch.no_grad():
        torch.testing.assert_close(folded(x), sae(x * scale) / scale, rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(folded.encode(x), sae.encode(x * scale) / scale, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(folded.W_dec, sae.W_dec)


@pytest.mark.parametrize("arch", ["topk", "jumprelu", "standard"])
def test_save_load_round_trip(tmp_path, arch):
    sae = random_sae(arch)
    load = load_sae(sae.save(tmp_path))
    assert load.cfg == sae.cfg
    for name, p in sae.named_parameters():
        torch.testing.assert_close(getattr(load, name), p, rtol=0, atol=0)


def test_metrics_known_answers(tmp_path):
    """An SAE that reconstructs exactly has FVU 0; latents that never fire are dead."""
    d = 8
    x = torch.randn(1000, d) * 3 + 1
    store = store_of(tmp_path / "acts", x)
    # identity-like: latent i = x_i - b_dec_i (and its negative), decoded back exactly
    sae = SAE(SAEConfig(d_in=d, d_sae=3 * d, arch="standard"))
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye, torch.zeros(d, d)], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye, torch.zeros(d, d)], dim=0))
        sae.b_enc.zero_()
        sae.b_enc[2 * d:] = -1.0  # the last d latents never fire
        sae.b_dec.copy_(x.mean(0))
    m = reconstruction_metrics(sae, store, "resid.3", split="all")
    assert m["tokens"] == 1000
    assert m["fvu"] == pytest.approx(0.0, abs=1e-9) and m["explained_variance"] == pytest.approx(1.0)
    assert m["dead_frac"] == pytest.approx(1 / 3)
    assert m["l0"] == pytest.approx(d, abs=0.01)  # one of each +/- pair fires per dimension
    assert m["l0_quantiles"]["0.5"] == d and sum(m["l0_hist"]["counts"]) == 1000
    assert m["dense_10pct_frac"] == pytest.approx(2 / 3) and len(m["density"]) == 3 * d
    assert sum(m["fire_counts"]) == pytest.approx(m["l0"] * 1000)

    # a decoder that returns only b_dec = the mean: FVU exactly 1 on the pooled budget
    with torch.no_grad():
        sae.b_enc.fill_(-1e6)
    m = reconstruction_metrics(sae, store, "resid.3", max_tokens=600, split="all")
    assert m["tokens"] == 600 and m["dead_frac"] == 1.0 and m["l0"] == 0.0
    mean_600 = x[:600].mean(0)
    want = float((x[:600] - x.mean(0)).pow(2).sum() / (x[:600] - mean_600).pow(2).sum())
    assert m["fvu"] == pytest.approx(want, rel=1e-6)


def test_fvu_typical_leaves_out_massive_activation_tokens(tmp_path):
    """A few huge-norm tokens dominate pooled FVU; fvu_typical measures the ordinary ones alone."""
    d = 8
    x = torch.randn(1000, d)
    x[::250] *= 500.0  # 4 "massive activation" tokens
    store = store_of(tmp_path / "acts", x)
    sae = SAE(SAEConfig(d_in=d, d_sae=2 * d, arch="standard"))
    eye = torch.eye(d)
    with torch.no_grad():  # exact: latent pairs (+x_i, -x_i) decoded back
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    m = reconstruction_metrics(sae, store, "resid.3", split="all")
    assert m["outlier_tokens"] == 4 and m["fvu"] == pytest.approx(0.0, abs=1e-9)
    assert m["fvu_typical"] == pytest.approx(0.0, abs=1e-9)
    with torch.no_grad():  # a decoder at half scale: every token off by half of itself
        sae.W_dec.mul_(0.5)
    m = reconstruction_metrics(sae, store, "resid.3", split="all")
    typ = x.norm(dim=-1) <= 10 * x.norm(dim=-1).median()
    want = float((0.5 * x[typ]).pow(2).sum() / (x[typ] - x[typ].mean(0)).pow(2).sum())
    assert m["fvu_typical"] == pytest.approx(want, rel=1e-6)
    assert m["fvu"] == pytest.approx(0.25, rel=1e-2)  # pooled: the outliers' error dominates


def test_metrics_skip_bos_positions_and_budget(tmp_path):
    x = torch.randn(300, 4)
    store = store_of(tmp_path / "acts", x, positions=torch.arange(300) % 10)  # every 10th is BOS
    sae = SAE(SAEConfig(d_in=4, d_sae=8, arch="topk", k=2))
    assert reconstruction_metrics(sae, store, "resid.3", split="all")["tokens"] == 270
    assert reconstruction_metrics(sae, store, "resid.3", split="all", start=100, stop=200)["tokens"] == 90


def test_metrics_default_to_the_held_out_split(tmp_path):
    """Train contexts filled with NaN do not touch held-out metrics (every 20th 50-token context)."""
    x = torch.randn(2000, 4)
    held = (torch.arange(2000) // 50) % 20 == 19
    x[~held] = float("nan")
    store = store_of(tmp_path / "acts", x)
    sae = SAE(SAEConfig(d_in=4, d_sae=8, arch="topk", k=2))
    m = reconstruction_metrics(sae, store, "resid.3")
    assert m["split"] == "heldout" and m["tokens"] == 100 and m["fvu"] == m["fvu"]  # not NaN


@pytest.mark.parametrize("kwargs, match", [
    (dict(d_in=4, d_sae=8, arch="gated"), r"SAEConfig.arch: 'gated' is not one of topk, jumprelu, standard"),
    (dict(d_in=4, d_sae=8, arch="topk", k=9), r"SAEConfig.k: topk needs 1 <= k <= d_sae=8 \(got 9\)"),
    (dict(d_in=4, d_sae=8, arch="batchtopk", k=2), r"'batchtopk' is a training architecture"),
])
def test_bad_config_gives_one_clear_line(kwargs, match):
    with pytest.raises(SAEError, match=match) as e:
        SAEConfig(**kwargs)
    assert "\n" not in str(e.value)


def test_bad_files_give_one_clear_line(tmp_path):
    with pytest.raises(SAEError, match=r"cfg.json: missing; an SAE directory holds") as e:
        load_sae(tmp_path)
    assert "\n" not in str(e.value)
    random_sae("topk").save(tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    (tmp_path / "cfg.json").write_text(json.dumps({**cfg, "architecture": "gated"}))
    with pytest.raises(SAEError, match=r"architecture 'gated' is not supported"):
        load_sae(tmp_path)
    (tmp_path / "cfg.json").write_text(json.dumps({**cfg, "normalize_activations": "expected_average_only_in"}))
    with pytest.raises(SAEError, match=r"normalize_activations is 'expected_average_only_in'; fold"):
        load_sae(tmp_path)
    (tmp_path / "cfg.json").write_text(json.dumps({**cfg, "d_sae": 50}))
    with pytest.raises(SAEError, match=r"W_dec has shape \(96, 32\), cfg.json implies \(50, 32\)"):
        load_sae(tmp_path)
