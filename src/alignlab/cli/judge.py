"""``alignlab judge validate``: a red-team judge against hand labels."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from alignlab.cli.common import batch_size_option, ci, judge_mode_option, judge_option, out, quiet_hf, user_errors

app = typer.Typer(help="Judges: validate against hand labels.", no_args_is_help=True)


@app.command("validate")
def judge_validate(
    labels: Path | None = typer.Option(None, help="Labels JSONL (default: the packaged set)."),
    judge: str = judge_option(),
    judge_mode: str = judge_mode_option(),
    split: str = typer.Option("all", help="all, dev (used to design judges) or test (held out)."),
    out_file: Path | None = typer.Option(None, "--out", help="Write the report as JSON here."),
    batch_size: int = batch_size_option(),
) -> None:
    """Agreement of a judge with hand labels: accuracy, Cohen's kappa, precision, recall."""
    quiet_hf()
    from rich.table import Table

    from alignlab.judges.harm import make_judge
    from alignlab.judges.validate import FIELDS, load_labels, validate_judge

    with user_errors(RuntimeError, ValueError):
        rows = load_labels(labels, split)
        j = make_judge(judge, judge_mode=judge_mode, batch_size=batch_size)
    rep = validate_judge(j, rows)
    t = Table("field", "n", "unscorable", "base rate", "accuracy", "95% CI", "kappa", "precision", "recall")
    for f in FIELDS:
        r = rep[f]
        fmt = lambda x: "n/a" if x is None else f"{x:.2f}"  # noqa: E731
        t.add_row(f, str(r["n"]), str(r["n_unscorable"]), fmt(r["base_rate"]), fmt(r["accuracy"]),
                  ci(r.get("accuracy_ci")), fmt(r["kappa"]), fmt(r["precision"]), fmt(r["recall"]))
    out.print(f"judge {rep['judge']} on {rep['n_labels']} labelled responses (split: {split})")
    out.print(t)
    if out_file:
        out_file.write_text(json.dumps(rep, indent=2))
