"""Sparse autoencoders in SAELens's on-disk format (``cfg.json`` + ``sae_weights.safetensors``).

An :class:`SAE` encodes ``z = act((x - b_dec) @ W_enc + b_enc)`` and decodes ``x_hat = z @ W_dec + b_dec``,
with ``W_enc`` ``[d_in, d_sae]`` and ``W_dec`` ``[d_sae, d_in]`` as in SAELens. ``act`` is:

- ``topk``: keep the ``k`` largest pre-activations of each token, then ReLU;
- ``jumprelu``: ``pre * (pre > threshold)`` with a per-latent threshold (a BatchTopK SAE is saved as
  one, with its learned threshold);
- ``standard``: ReLU (read from SAELens files only; alignlab does not train it).

Saved SAEs take raw activations and return raw reconstructions: the trainer folds its input scale
into the biases and threshold, so decoder rows stay unit-norm and a latent's activation is the
length (in raw units) of its direction in the reconstruction.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from alignlab.errors import AlignlabError

ARCHS = ("topk", "jumprelu", "standard")
CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
# The SAELens cfg.json layout we write; SAELens treats configs older than 6.0 as a legacy format.
SAELENS_FORMAT_VERSION = "6.0.0"


class SAEError(AlignlabError, ValueError):
    """A malformed SAE config or file."""


@dataclass
class SAEConfig:
    """Shape, activation and provenance of an SAE (maps one to one onto SAELens's cfg.json)."""

    d_in: int
    """Width of the activations the SAE reads (d_model for the residual stream)."""
    d_sae: int
    """Number of latents."""
    arch: str = "topk"
    """Activation: "topk", "jumprelu" or "standard" (a BatchTopK-trained SAE is a "jumprelu" one)."""
    k: int | None = None
    """Latents kept per token (topk only)."""
    hook_name: str | None = None
    """TransformerLens hook the activations come from, e.g. "blocks.15.hook_resid_post"."""
    hook_layer: int | None = None
    """Decoder block of that hook (layer L = residual stream after block L)."""
    model_name: str | None = None
    """Model the activations come from."""
    dtype: str = "float32"
    """Parameter dtype as SAELens names it."""
    apply_b_dec_to_input: bool = True
    """Subtract b_dec from the input before encoding (SAELens's default)."""
    context_size: int | None = None
    """Context length the activations were captured at, if known."""
    training: dict[str, Any] = field(default_factory=dict)
    """Provenance written into the SAELens metadata block (training_architecture, details, ...)."""

    def __post_init__(self) -> None:
        if self.arch == "batchtopk":
            raise SAEError("SAEConfig.arch: 'batchtopk' is a training architecture; its SAE is a "
                           "'jumprelu' one (train with SAETrainConfig(arch='batchtopk'))")
        if self.arch not in ARCHS:
            raise SAEError(f"SAEConfig.arch: {self.arch!r} is not one of {', '.join(ARCHS)}")
        if self.d_in < 1 or self.d_sae < 1:
            raise SAEError(f"SAEConfig: d_in and d_sae must be positive (got {self.d_in}, {self.d_sae})")
        if self.arch == "topk":
            if self.k is None or not 1 <= self.k <= self.d_sae:
                raise SAEError(f"SAEConfig.k: topk needs 1 <= k <= d_sae={self.d_sae} (got {self.k})")

    def to_saelens(self) -> dict[str, Any]:
        """The cfg.json dict SAELens 6 writes for this architecture."""
        metadata = {"sae_lens_version": SAELENS_FORMAT_VERSION, "sae_lens_training_version": None,
                    "model_name": self.model_name, "hook_name": self.hook_name,
                    "hook_layer": self.hook_layer, "hook_head_index": None,
                    "context_size": self.context_size, "prepend_bos": True,
                    "trained_with": "alignlab", **self.training}
        cfg: dict[str, Any] = {"architecture": self.arch, "d_in": self.d_in, "d_sae": self.d_sae,
                               "dtype": self.dtype, "device": "cpu",
                               "apply_b_dec_to_input": self.apply_b_dec_to_input,
                               "normalize_activations": "none", "reshape_activations": "none",
                               "metadata": metadata}
        if self.arch == "topk":
            cfg["k"] = self.k
            cfg["rescale_acts_by_decoder_norm"] = False
        return cfg

    @classmethod
    def from_saelens(cls, cfg: dict[str, Any], where: str = CFG_FILE) -> SAEConfig:
        """Read a SAELens cfg.json dict (6.x, or the older flat layout)."""
        meta = dict(cfg.get("metadata") or {})
        arch = cfg.get("architecture", "standard")
        k = cfg.get("k")
        if cfg.get("activation_fn") == "topk" or cfg.get("activation_fn_str") == "topk":
            arch, k = "topk", (cfg.get("activation_fn_kwargs") or {}).get("k", k)
        if arch not in ARCHS:
            raise SAEError(f"{where}: architecture {arch!r} is not supported (alignlab reads "
                           f"{', '.join(ARCHS)})")
        norm = cfg.get("normalize_activations", "none")
        if norm not in (None, False, "none"):
            raise SAEError(f"{where}: normalize_activations is {norm!r}; fold the scaling into the "
                           "weights first (SAELens: fold_activation_norm_scaling_factor) and save again")
        if cfg.get("reshape_activations", "none") not in (None, "none"):
            raise SAEError(f"{where}: reshape_activations {cfg['reshape_activations']!r} (hook_z SAEs) "
                           "is not supported")
        get = lambda key, old=None: meta.get(key, cfg.get(key, cfg.get(old) if old else None))  # noqa: E731
        extra = {key: meta[key] for key in ("training_architecture", "training_architecture_details")
                 if key in meta}
        return cls(d_in=int(cfg["d_in"]), d_sae=int(cfg["d_sae"]), arch=arch,
                   k=int(k) if arch == "topk" and k is not None else None,
                   hook_name=get("hook_name", "hook_point"), hook_layer=get("hook_layer"),
                   model_name=get("model_name"), dtype=str(cfg.get("dtype", "float32")).replace("torch.", ""),
                   apply_b_dec_to_input=bool(cfg.get("apply_b_dec_to_input", True)),
                   context_size=get("context_size"), training=extra)


class SAE(torch.nn.Module):
    """A sparse autoencoder with SAELens's parameter names and shapes.

    Args:
        cfg: shape and activation.
    """

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dtype = getattr(torch, cfg.dtype)
        w_dec = torch.randn(cfg.d_sae, cfg.d_in, dtype=dtype)
        w_dec /= w_dec.norm(dim=-1, keepdim=True)
        self.W_dec = torch.nn.Parameter(w_dec)
        self.W_enc = torch.nn.Parameter(w_dec.t().clone())
        self.b_enc = torch.nn.Parameter(torch.zeros(cfg.d_sae, dtype=dtype))
        self.b_dec = torch.nn.Parameter(torch.zeros(cfg.d_in, dtype=dtype))
        if cfg.arch == "jumprelu":
            self.threshold = torch.nn.Parameter(torch.zeros(cfg.d_sae, dtype=dtype))

    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder pre-activations ``(x - b_dec) @ W_enc + b_enc``."""
        x = x.to(self.W_enc.dtype)
        if self.cfg.apply_b_dec_to_input:
            x = x - self.b_dec
        return torch.addmm(self.b_enc, x.reshape(-1, x.shape[-1]), self.W_enc).reshape(
            *x.shape[:-1], self.cfg.d_sae)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent activations ``[..., d_sae]`` (dense, mostly zeros)."""
        pre = self.pre_acts(x)
        if self.cfg.arch == "topk":
            assert self.cfg.k is not None  # SAEConfig requires k for topk
            vals, idx = pre.topk(self.cfg.k, dim=-1, sorted=False)
            return torch.zeros_like(pre).scatter_(-1, idx, vals.relu())
        if self.cfg.arch == "jumprelu":
            return pre.relu() * (pre > self.threshold)
        return pre.relu()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``z @ W_dec + b_dec``."""
        return z.to(self.W_dec.dtype) @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``x``."""
        return self.decode(self.encode(x))

    def save(self, path: str | Path) -> Path:
        """Write ``cfg.json`` and ``sae_weights.safetensors`` (SAELens 6 format) into ``path``."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {name: p.detach().contiguous().cpu() for name, p in self.named_parameters()}
        tmp = path / (WEIGHTS_FILE + ".tmp")
        save_file(tensors, str(tmp))
        os.replace(tmp, path / WEIGHTS_FILE)
        tmp = path / (CFG_FILE + ".tmp")
        tmp.write_text(json.dumps(self.cfg.to_saelens(), indent=1))
        os.replace(tmp, path / CFG_FILE)
        return path


def load_sae(path: str | Path) -> SAE:
    """Read an SAE written by :meth:`SAE.save` or by SAELens (topk, jumprelu or standard).

    A SAELens topk SAE trained with ``rescale_acts_by_decoder_norm`` has its decoder norms folded
    into the encoder (as SAELens does at save time), which leaves its outputs unchanged.

    Raises:
        SAEError: the directory lacks a file, or the config asks for something not supported.
    """
    from safetensors.torch import load_file

    path = Path(path)
    cfg_file, weights_file = path / CFG_FILE, path / WEIGHTS_FILE
    for f in (cfg_file, weights_file):
        if not f.exists():
            raise SAEError(f"{f}: missing; an SAE directory holds {CFG_FILE} and {WEIGHTS_FILE}")
    try:
        raw = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as e:
        raise SAEError(f"{cfg_file}: not valid JSON ({e.msg}, line {e.lineno})") from None
    try:
        cfg = SAEConfig.from_saelens(raw, where=str(cfg_file))
    except KeyError as e:
        raise SAEError(f"{cfg_file}: missing key {e.args[0]!r}") from None
    state = load_file(str(weights_file))
    if "log_threshold" in state and "threshold" not in state:
        state["threshold"] = state.pop("log_threshold").exp()
    scale = state.pop("scaling_factor", None)
    if scale is not None and not torch.allclose(scale, torch.ones_like(scale)):
        raise SAEError(f"{weights_file}: a finetuning scaling_factor other than 1 is not supported")
    sae = SAE(cfg)
    want = {name: tuple(p.shape) for name, p in sae.named_parameters()}
    for name, shape in want.items():
        if name not in state:
            raise SAEError(f"{weights_file}: no tensor {name!r} (a {cfg.arch} SAE needs "
                           f"{', '.join(want)})")
        if tuple(state[name].shape) != shape:
            raise SAEError(f"{weights_file}: {name} has shape {tuple(state[name].shape)}, "
                           f"cfg.json implies {shape}")
    with torch.no_grad():
        for name, p in sae.named_parameters():
            p.copy_(state[name].to(p.dtype))
        if cfg.arch == "topk" and raw.get("rescale_acts_by_decoder_norm"):
            norms = sae.W_dec.norm(dim=-1).clamp(min=1e-8)
            sae.W_dec.div_(norms[:, None])
            sae.W_enc.mul_(norms[None, :])
            sae.b_enc.mul_(norms)
    return sae
