"""Interpretability: activation capture, sparse autoencoders, auto-interp, probes and steering.

Public API:
    ActivationStore, ActivationWriter, ActsError: sharded safetensors activation stores.
    capture, CaptureConfig: several layers in one forward pass, early stop, resumable.
    open_corpus, Doc, CorpusError: text files, JSONL, hf: datasets, the offline default.
    SAE, SAEConfig, load_sae: SAELens-format sparse autoencoders.
    train_saes, SAETrainConfig: TopK / BatchTopK training, several layers in one pass.
    reconstruction_metrics, ce_metrics: FVU, L0, dead/dense; CE / KL with the SAE spliced in.
    run_autointerp, AutoInterpConfig, build_sources: explain, detection and fuzzing scoring, baselines.
    train_probes, load_labelled: linear probes with held-out accuracy and AUROC.
    steer, sae_direction, diff_of_means: forward-hook steering on the in-process HF model.

Heavy imports (torch, transformers) happen inside the functions that need them.
"""

from alignlab.interp.acts import ActivationStore, ActivationWriter, ActsError
from alignlab.interp.autointerp import AutoInterpConfig, run_autointerp
from alignlab.interp.capture import CaptureConfig, capture
from alignlab.interp.corpus import CorpusError, Doc, open_corpus
from alignlab.interp.probes import load_labelled, train_probes
from alignlab.interp.sources import build_sources
from alignlab.interp.splice import ce_metrics
from alignlab.interp.steer import diff_of_means, sae_direction, steer
from alignlab.models.whitebox import WhiteBoxRequired

__all__ = [
    "ActivationStore", "ActivationWriter", "ActsError", "AutoInterpConfig", "CaptureConfig", "CorpusError",
    "Doc", "SAE", "SAEConfig", "SAETrainConfig", "WhiteBoxRequired", "build_sources", "capture", "ce_metrics",
    "diff_of_means", "load_labelled", "load_sae", "open_corpus", "reconstruction_metrics", "run_autointerp",
    "sae_direction", "steer", "train_probes", "train_saes",
]


def __getattr__(name: str):
    # sae, train and metrics import torch at module level: load them on first use only.
    if name in ("SAE", "SAEConfig", "load_sae"):
        from alignlab.interp import sae

        return getattr(sae, name)
    if name in ("SAETrainConfig", "train_saes"):
        from alignlab.interp import train

        return getattr(train, name)
    if name == "reconstruction_metrics":
        from alignlab.interp.metrics import reconstruction_metrics

        return reconstruction_metrics
    raise AttributeError(name)
