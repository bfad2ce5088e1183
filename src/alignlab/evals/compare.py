"""Paired comparison of two eval runs: the same items, two models (or two settings).

Records are paired by ``(suite, id)``. A pair counts only when both runs could score the item;
items scorable in one run only (``a_only`` / ``b_only``), in neither, or present in one run only
(``missing``) are counted and reported, never folded into the rates. Per suite and overall:

- ``rate_a`` / ``rate_b``: the rate of ``behaviour == True`` on the paired items;
- ``diff`` = ``rate_b - rate_a`` with a 95% paired bootstrap interval (items resampled together);
- ``p_value``: exact two-sided McNemar test on the discordant pairs (A yes / B no against A no /
  B yes), which is the right test for two proportions measured on the same items.

Both runs are read either from the run store (a run id of stage ``evals``, records keyed
``item|<suite>|<id>``) or from an output folder's ``samples.jsonl`` (one record per line).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Record = Mapping[str, Any]

ITEM_PREFIX = "item|"
"""Key prefix of eval records in the run store (``item|<suite>|<id>``)."""


def _index(records: Iterable[Record], label: str) -> tuple[dict[tuple[str, str], bool | None],
                                                            set[tuple[str, str]]]:
    """``({(suite, id): behaviour}, {control items})``; one clear line on a malformed record."""
    out: dict[tuple[str, str], bool | None] = {}
    controls: set[tuple[str, str]] = set()
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise ValueError(f"run {label}: record {i} is a {type(r).__name__}, not a dict")
        for field in ("suite", "id"):
            if r.get(field) in (None, ""):
                raise ValueError(f"run {label}: record {i} has no {field!r}; every eval record needs "
                                 "'suite' and 'id'")
        key = (str(r["suite"]), str(r["id"]))
        b = r.get("behaviour")
        if b is not None and not isinstance(b, bool):
            raise ValueError(f"run {label}: record {key[0]}/{key[1]} has behaviour={b!r}; it must be "
                             "true, false or null (unscorable)")
        if key in out:
            raise ValueError(f"run {label}: item {key[0]}/{key[1]} appears twice; a run holds one "
                             "record per item")
        out[key] = b
        if r.get("control"):
            controls.add(key)
    return out, controls


def _row(pairs: Sequence[tuple[bool, bool]], a_only: int, b_only: int, neither: int,
         missing_a: int, missing_b: int, n_boot: int, seed: int) -> dict[str, Any]:
    """One comparison row from the decided pairs and the counts of everything left out."""
    from alignlab.stats import bootstrap_diff, mcnemar_p

    n = len(pairs)
    a_yes_b_no = sum(1 for a, b in pairs if a and not b)
    a_no_b_yes = sum(1 for a, b in pairs if b and not a)
    row: dict[str, Any] = {
        "rate_a": None, "rate_b": None, "diff": None, "diff_ci": None, "p_value": None,
        "n_pairs": n, "k_a": sum(a for a, _ in pairs), "k_b": sum(b for _, b in pairs),
        "discordant": {"a_yes_b_no": a_yes_b_no, "a_no_b_yes": a_no_b_yes},
        "a_only": a_only, "b_only": b_only, "neither": neither,
        "missing": {"from_a": missing_a, "from_b": missing_b},
    }
    if n:
        xa = [float(a) for a, _ in pairs]
        xb = [float(b) for _, b in pairs]
        diff, ci = bootstrap_diff(xa, xb, paired=True, n_boot=n_boot, seed=seed)
        row.update(rate_a=row["k_a"] / n, rate_b=row["k_b"] / n, diff=diff, diff_ci=list(ci),
                   p_value=mcnemar_p(a_yes_b_no, a_no_b_yes))
    return row


def compare_records(
    records_a: Iterable[Record],
    records_b: Iterable[Record],
    suites: Sequence[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    labels: tuple[str, str] = ("A", "B"),
) -> dict[str, Any]:
    """Compare two runs' records item by item.

    Args:
        records_a: records of run A (one per item; ``suite``, ``id``, ``behaviour``).
        records_b: records of run B.
        suites: only these suites (default: every suite either run holds).
        n_boot: bootstrap resamples for the difference's interval.
        seed: bootstrap seed (the result is deterministic for a given seed).
        labels: names of the two runs, used in error messages.

    Returns:
        ``{"suites": {NAME: row}, "overall": row, "n_shared": int}`` where a row holds
        ``rate_a``, ``rate_b``, ``diff`` (B - A), ``diff_ci``, ``p_value`` (exact McNemar),
        ``n_pairs``, ``k_a``, ``k_b``, ``discordant``, ``a_only``, ``b_only``, ``neither`` and
        ``missing`` (``from_a``: items only B holds; ``from_b``: items only A holds). Rates and
        tests are ``None`` where a suite has no decided pair. Control items (agentic records with
        ``control: true``) are kept out of a suite's row, as the run's rates keep them out, and
        compared in the row's ``control`` entry; ``overall`` pools the suites' rows.

    Raises:
        ValueError: a malformed record, an unknown suite, or runs that share no item.
    """
    (ia, ca), (ib, cb) = _index(records_a, labels[0]), _index(records_b, labels[1])
    present = sorted({s for s, _ in ia} | {s for s, _ in ib})
    if suites is not None:
        unknown = [s for s in suites if s not in present]
        if unknown:
            raise ValueError(f"suite(s) {', '.join(unknown)} not in either run; the runs hold: "
                             f"{', '.join(present) or 'nothing'}")
        present = [s for s in present if s in set(suites)]
    keys_a = {k for k in ia if k[0] in present}
    keys_b = {k for k in ib if k[0] in present}
    shared = keys_a & keys_b
    if not shared:
        sa = sorted({s for s, _ in keys_a})
        sb = sorted({s for s, _ in keys_b})
        raise ValueError(
            f"runs {labels[0]} and {labels[1]} share no items (suite, id): {labels[0]} has "
            f"{len(keys_a)} in [{', '.join(sa)}], {labels[1]} has {len(keys_b)} in "
            f"[{', '.join(sb)}]; compare runs of the same suites")
    controls = ca | cb

    def row_of(keys: set[tuple[str, str]]) -> tuple[list[tuple[bool, bool]], int, int, int, int, int]:
        """(pairs, a_only, b_only, neither, missing from A, missing from B) over ``keys``."""
        sh = sorted(keys & shared)
        pairs = [(a, b) for k in sh if (a := ia[k]) is not None and (b := ib[k]) is not None]
        return (pairs, sum(1 for k in sh if ia[k] is not None and ib[k] is None),
                sum(1 for k in sh if ia[k] is None and ib[k] is not None),
                sum(1 for k in sh if ia[k] is None and ib[k] is None),
                len(keys - keys_a), len(keys - keys_b))

    rows: dict[str, dict[str, Any]] = {}
    main_keys: set[tuple[str, str]] = set()
    for suite in present:
        keys = {k for k in keys_a | keys_b if k[0] == suite}
        main, ctrl = keys - controls, keys & controls
        main_keys |= main
        rows[suite] = _row(*row_of(main), n_boot, seed)
        if ctrl:
            rows[suite]["control"] = _row(*row_of(ctrl), n_boot, seed)
    overall = _row(*row_of(main_keys), n_boot, seed)
    return {"suites": rows, "overall": overall, "n_shared": len(shared)}


def _read_results(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg}); rerun the eval or delete the file") from None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{line_no}: not valid JSON ({e.msg}); samples.jsonl holds "
                                 "one JSON record per line") from None
    return rows


def load_run_records(workspace: Any, run: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Records and identity of one eval run, from the run store or from an output folder.

    Args:
        workspace: a ``Workspace``, the path of one, or None (then ``run`` must be a folder).
        run: a run id in the workspace, an output folder holding ``samples.jsonl``, or the path of
            a ``samples.jsonl`` file.

    Returns:
        ``(records, meta)`` with meta ``{"id", "model", "judge", "config", "created", "results"}``
        (None where unknown; ``results`` is the run's results.json when it can be found).

    Raises:
        ValueError: the run is neither a folder with samples.jsonl nor an eval run in the workspace.
    """
    p = Path(run)
    if p.is_dir() or p.suffix == ".jsonl":
        samples = p / "samples.jsonl" if p.is_dir() else p
        if not samples.is_file():
            raise ValueError(f"{samples} not found; give an eval output folder (with samples.jsonl) "
                             "or a run id from the workspace")
        meta: dict[str, Any] = {"id": str(run), "model": None, "judge": None, "config": None,
                                "created": None, "results": None}
        res = _read_results(samples.parent / "results.json")
        if res is not None:
            meta.update(id=res.get("run_id") or str(run), model=res.get("model"),
                        judge=res.get("judge"), config=res.get("config"),
                        created=res.get("created"), results=res)
        return _read_jsonl(samples), meta
    from alignlab.store.workspace import Workspace

    if workspace is None:
        raise ValueError(f"{run!r} is not a folder with samples.jsonl; to read a run id, give the "
                         "workspace (--workspace W)")
    own = not isinstance(workspace, Workspace)
    if own:
        root = Path(workspace)
        if not (root / "runs.sqlite").is_file():
            raise ValueError(f"{root} is not a workspace (no runs.sqlite); give the folder of "
                             "your runs with --workspace")
        workspace = Workspace(root)
    try:
        return _read_store_run(workspace, str(run))
    finally:
        if own:
            workspace.close()


def _read_store_run(workspace: Any, run_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from alignlab.store.workspace import Run, RunNotFound

    try:
        info = workspace.info(run_id)
    except RunNotFound:
        known = [r.id for r in workspace.runs("evals")][-5:]
        raise ValueError(f"run {run_id!r} not found in {workspace.root}; recent eval runs: "
                         f"{', '.join(known) or 'none'}") from None
    if info.stage != "evals":
        raise ValueError(f"run {info.id!r} is a {info.stage} run, not an eval run; compare two "
                         "runs of `alignlab eval`")
    records = []
    for key, rec in Run(workspace, info.id).records(ITEM_PREFIX):
        if "suite" not in rec or "id" not in rec:  # fall back on the key item|<suite>|<id>
            parts = key.split("|", 2)
            if len(parts) == 3:
                rec = {**rec, "suite": rec.get("suite", parts[1]), "id": rec.get("id", parts[2])}
        records.append(rec)
    cfg, metrics = info.config or {}, info.metrics or {}
    results = None
    for folder in (metrics.get("out_dir"), workspace.root / "artifacts" / info.id):
        if folder and results is None:
            results = _read_results(Path(folder) / "results.json")
            if results is not None and results.get("run_id") not in (None, info.id):
                results = None  # an out_dir reused by a later run
    meta = {"id": info.id, "model": cfg.get("model") or metrics.get("model"),
            "judge": cfg.get("judge") or metrics.get("judge"), "config": cfg,
            "created": datetime.fromtimestamp(info.created, UTC).isoformat(timespec="seconds"),
            "results": results}
    return records, meta


def compare_runs(workspace: Any, run_a: str | Path, run_b: str | Path,
                 suites: Sequence[str] | None = None, n_boot: int = 2000,
                 seed: int = 0) -> dict[str, Any]:
    """Paired comparison of two eval runs (B against A).

    Args:
        workspace: a ``Workspace``, its path, or None when both runs are output folders.
        run_a: run id or output folder (with ``samples.jsonl``) of the baseline.
        run_b: run id or output folder of the run compared with it.
        suites: only these suites (default: all).
        n_boot: bootstrap resamples.
        seed: bootstrap seed.

    Returns:
        ``{"a", "b", "model_a", "model_b", "judge_a", "judge_b", "suites", "overall", "n_shared",
        "warnings"}``; see :func:`compare_records` for the rows. ``warnings`` notes what makes
        the difference harder to read (different judges).

    Raises:
        ValueError: a run cannot be read, or the runs share no items.
    """
    recs_a, meta_a = load_run_records(workspace, run_a)
    recs_b, meta_b = load_run_records(workspace, run_b)
    cmp = compare_records(recs_a, recs_b, suites=suites, n_boot=n_boot, seed=seed,
                          labels=(meta_a["id"], meta_b["id"]))
    warnings = []
    if meta_a["judge"] != meta_b["judge"]:
        warnings.append(f"the runs used different judges ({meta_a['judge']} vs {meta_b['judge']}): "
                        "part of the difference may be the judge's")
    return {"a": meta_a["id"], "b": meta_b["id"], "model_a": meta_a["model"],
            "model_b": meta_b["model"], "judge_a": meta_a["judge"], "judge_b": meta_b["judge"],
            **cmp, "warnings": warnings}
