"""Evidence from the lab's own runs → an update of the prior over the difficulty level.

Each evidence type in ``files/evidence.yaml`` gives ``P(observation | D)`` for D = 1..10, with its
trigger, rationale and source. An observation enters with a transfer weight ``w`` in [0, 1] and its
likelihood is tempered as ``L(D)^w``: ``w = 1`` treats it as if made on transformative AI itself,
``w = 0`` ignores it (the lab's toy models say little about transformative AI; the default is the
file's ``default_transfer``). The posterior is

    posterior(D) ∝ prior(D) * prod_k L_k(D)^{w_k}.

Per observation, applied in the order given, the table reports the *Bayes factor* of each level:
``BF_k(d) = L_k(d)^{w_k} / sum_D pi_{k-1}(D) L_k(D)^{w_k}``, the factor by which that observation
multiplies the probability of level ``d`` (``pi_{k-1}`` is the belief before it), so that
``posterior(d) = prior(d) * prod_k BF_k(d)`` exactly. The final posterior does not depend on the order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alignlab.errors import AlignlabError
from alignlab.strategy.allocate import allocate, allocation_inputs, expected_value, optimise
from alignlab.strategy.allocate_config import N_LEVELS, AllocationConfig, normalise_prior

DEFAULT_EVIDENCE = Path(__file__).parent / "files" / "evidence.yaml"


class EvidenceError(AlignlabError, ValueError):
    """An evidence file or observation that cannot be used; the message is one line."""


@dataclass(frozen=True)
class EvidenceType:
    """One kind of observation and its likelihood over the ladder."""

    id: str
    """What to pass as an observation."""
    description: str
    """What was seen, in a sentence."""
    trigger: str
    """The metric and threshold that make it observed, in words."""
    likelihood: tuple[float, ...]
    """P(observation | D) for D = 1..10, each in (0, 1]."""
    rationale: str
    """Why the likelihood has this shape."""
    source: str
    """What it rests on."""
    metric: str = ""
    """The lab metric the trigger reads."""
    comparison: str = ""
    """'>=' or '<': how the metric is compared with ``threshold``."""
    threshold: float | None = None
    """The cut on ``metric``."""
    transfer: float | None = None
    """This type's own default transfer weight (else the file's ``default_transfer``)."""
    complement_of: str | None = None
    """The entry whose likelihood this one is ``1 -`` of."""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "description": self.description, "trigger": self.trigger,
                "metric": self.metric, "comparison": self.comparison, "threshold": self.threshold,
                "likelihood": list(self.likelihood), "complement_of": self.complement_of,
                "rationale": self.rationale, "source": self.source, "transfer": self.transfer}


@dataclass(frozen=True)
class EvidenceSet:
    """The parsed evidence file."""

    types: dict[str, EvidenceType]
    default_transfer: float
    path: str = ""

    def get(self, eid: str) -> EvidenceType:
        """The evidence type ``eid``; EvidenceError listing the known ids otherwise."""
        try:
            return self.types[eid]
        except KeyError:
            raise EvidenceError(f"unknown evidence id {eid!r}; known: {', '.join(self.types)}") from None


@dataclass(frozen=True)
class Observation:
    """An observed evidence type and the transfer weight it enters with (None: the type's default)."""

    id: str
    transfer: float | None = None


def _check_transfer(w: Any, where: str) -> float:
    try:
        v = float(w)
    except (TypeError, ValueError):
        raise EvidenceError(f"{where}: transfer must be a number in [0, 1], got {w!r}") from None
    if not 0.0 <= v <= 1.0:
        raise EvidenceError(f"{where}: transfer must be in [0, 1], got {v:g}")
    return v


def _parse(data: Any, name: str) -> EvidenceSet:
    if not isinstance(data, dict) or not isinstance(data.get("evidence"), list):
        raise EvidenceError(f"{name}: expected a mapping with default_transfer and an 'evidence' list")
    default = _check_transfer(data.get("default_transfer", 0.25), f"{name}: default_transfer")
    raw: dict[str, dict] = {}
    for i, e in enumerate(data["evidence"]):
        if not isinstance(e, dict) or not isinstance(e.get("id"), str) or not e["id"]:
            raise EvidenceError(f"{name}: evidence[{i}]: each entry needs an id")
        if e["id"] in raw:
            raise EvidenceError(f"{name}: {e['id']}: duplicate id")
        for key in ("description", "trigger", "rationale", "source"):
            if not isinstance(e.get(key), str) or not e[key].strip():
                raise EvidenceError(f"{name}: {e['id']}: {key}: missing; every entry documents it")
        if ("likelihood" in e) == ("complement_of" in e):
            raise EvidenceError(f"{name}: {e['id']}: give exactly one of likelihood or complement_of")
        raw[e["id"]] = e
    types: dict[str, EvidenceType] = {}
    for eid, e in raw.items():
        if "complement_of" in e:
            base = raw.get(e["complement_of"])
            if base is None or "likelihood" not in base:
                raise EvidenceError(f"{name}: {eid}: complement_of: {e['complement_of']!r} is not an entry "
                                    "with a likelihood")
            lik = [1.0 - float(v) for v in base["likelihood"]]
        else:
            lik = e["likelihood"]
            if not isinstance(lik, list) or len(lik) != N_LEVELS:
                got = len(lik) if isinstance(lik, list) else type(lik).__name__
                raise EvidenceError(f"{name}: {eid}: likelihood: {N_LEVELS} values needed (D = 1..10), got {got}")
            try:
                lik = [float(v) for v in lik]
            except (TypeError, ValueError):
                raise EvidenceError(f"{name}: {eid}: likelihood: values must be numbers") from None
        if not all(0.0 < v <= 1.0 for v in lik):
            raise EvidenceError(f"{name}: {eid}: likelihood: each P(observation | D) must be in (0, 1] "
                                "(0 would rule a level out for good)")
        w = e.get("transfer")
        types[eid] = EvidenceType(
            id=eid, description=e["description"].strip(), trigger=e["trigger"].strip(),
            likelihood=tuple(lik), rationale=e["rationale"].strip(), source=e["source"].strip(),
            metric=str(e.get("metric", "")), comparison=str(e.get("comparison", "")),
            threshold=None if e.get("threshold") is None else float(e["threshold"]),
            transfer=None if w is None else _check_transfer(w, f"{name}: {eid}"),
            complement_of=e.get("complement_of"))
    return EvidenceSet(types, default, name)


def load_evidence(path: str | Path | None = None) -> EvidenceSet:
    """Load and validate an evidence file (the packaged ``files/evidence.yaml`` when None).

    Args:
        path: a YAML file in the packaged file's format.

    Returns:
        The evidence types by id and the default transfer weight.

    Raises:
        EvidenceError: a missing file, bad YAML or a bad entry, in one line naming file and entry.
    """
    from alignlab.config import read_yaml

    p = Path(path) if path is not None else DEFAULT_EVIDENCE
    return _parse(read_yaml(p, EvidenceError, "evidence file"), p.name)


def _observation(o: Any) -> Observation:
    if isinstance(o, Observation):
        return o
    if isinstance(o, str):
        eid, _, w = o.partition(":")
        return Observation(eid.strip(), _check_transfer(w, eid.strip()) if w.strip() else None)
    if isinstance(o, (tuple, list)) and len(o) == 2:
        return Observation(str(o[0]), None if o[1] is None else _check_transfer(o[1], str(o[0])))
    if isinstance(o, dict) and "id" in o:
        t = o.get("transfer")
        return Observation(str(o["id"]), None if t is None else _check_transfer(t, str(o["id"])))
    raise EvidenceError(f"an observation is an id, 'ID:W', (id, transfer) or {{'id', 'transfer'}}; got {o!r}")


def update_prior(prior: Sequence[float], observations: Sequence[Any],
                 evidence: EvidenceSet | str | Path | None = None) -> dict[str, Any]:
    """The posterior over D = 1..10 after tempered observations, and each one's Bayes factors.

    Args:
        prior: p_D for D = 1..10 (non-negative, sum 1).
        observations: each an id, ``"ID:W"``, ``(id, transfer)``, a ``{"id", "transfer"}`` mapping or an
            :class:`Observation`; a transfer of None takes the type's, else the file's default.
        evidence: an :class:`EvidenceSet`, a path to an evidence YAML, or None for the packaged one.

    Returns:
        JSON-ready ``{"prior", "posterior", "observations": [{"id", "description", "transfer",
        "likelihood", "tempered_likelihood", "bayes_factors"}], "evidence_file"}``.

    Raises:
        EvidenceError: an unknown id (the message lists the known ids), a transfer outside [0, 1], or
            a prior that the observations leave with no mass.
    """
    try:
        p = np.asarray(normalise_prior(prior), float)
    except ValueError as e:
        raise EvidenceError(str(e)) from None
    ev = evidence if isinstance(evidence, EvidenceSet) else load_evidence(evidence)
    belief = p.copy()
    rows = []
    for o in map(_observation, observations):
        t = ev.get(o.id)
        w = o.transfer if o.transfer is not None else (t.transfer if t.transfer is not None else ev.default_transfer)
        tempered = np.asarray(t.likelihood) ** w
        evidence_prob = float((belief * tempered).sum())
        if evidence_prob <= 0:
            raise EvidenceError(f"{o.id}: the belief has no mass where this observation is possible")
        bf = tempered / evidence_prob
        belief = belief * bf
        rows.append({"id": o.id, "description": t.description, "transfer": w,
                     "likelihood": list(t.likelihood), "tempered_likelihood": tempered.tolist(),
                     "bayes_factors": bf.tolist()})
    belief = belief / belief.sum()
    return {"prior": p.tolist(), "posterior": belief.tolist(), "observations": rows, "evidence_file": ev.path}


def allocate_with_evidence(config: AllocationConfig, observations: Sequence[Any],
                           evidence_path: str | Path | None = None, **kwargs: Any) -> dict[str, Any]:
    """Update the prior with observations and show the allocation under the prior and the posterior.

    Args:
        config: the allocation config (its prior is the one updated).
        observations: as :func:`update_prior` takes them.
        evidence_path: an evidence YAML replacing the packaged one.
        **kwargs: passed to :func:`allocate` for the posterior (the full answer).

    Returns:
        The posterior's :func:`allocate` result, with ``"evidence"`` added: the update table,
        ``allocation_under_prior`` and its EV (under the prior, and under the posterior: what
        ignoring the evidence would cost), and ``allocation_under_posterior``.
    """
    upd = update_prior(config.prior, observations, evidence_path)
    post = allocate(config, upd["posterior"], **kwargs)
    p0, c, h, B = allocation_inputs(config, None)
    x0 = optimise(p0, c, h, B, config.starts)
    post["evidence"] = {
        **upd,
        "allocation_under_prior": x0.tolist(),
        "ev_under_prior": float(expected_value(x0, p0, c, h)["ev"]),
        "ev_prior_allocation_under_posterior": float(expected_value(x0, upd["posterior"], c, h)["ev"]),
        "allocation_under_posterior": post["allocation"],
        "ev_under_posterior": post["expected_value"],
    }
    return post
