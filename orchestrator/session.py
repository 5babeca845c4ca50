"""One `driftlab run` session on an initialised Ray: parent run, sweep, reconcile, summary.

Kept apart from the CLI so the order of events reads top to bottom: open (or reopen) the
parent run, run or resume the Tune experiment, bring MLflow in line with Tune's outcome,
print the best trials per method, close the parent run.
"""

from __future__ import annotations

import math
import sys

from orchestrator.configs import method_label, trial_config
from orchestrator.reconcile import reconcile, tune_counts
from orchestrator.spec import Spec
from orchestrator.sweep import can_resume, run_sweep
from orchestrator.trainable import SweepContext
from orchestrator.ui_cli import where_to_browse
from trainables import keys

SUMMARY_KEYS = (keys.VAL_ACC, keys.TEST_ACC, keys.attn_delta("entropy"))

def summary_rows(results) -> list[dict]:
    """Best completed trial (by val/acc) per (dataset, method)."""
    best: dict[tuple, dict] = {}
    for result in results:
        metrics = result.metrics or {}
        if result.error is not None or metrics.get("status") != "completed":
            continue
        config = trial_config(result.config)
        key = (config.dataset, method_label(config))
        if key not in best or metrics.get(keys.VAL_ACC, -1) > best[key][keys.VAL_ACC]:
            row = {"dataset": key[0], "method": key[1], "lr": config.lr, "seed": config.seed}
            row.update({k: v for k, v in metrics.items() if k in SUMMARY_KEYS or keys.is_retention(k)})
            best[key] = row
    return [best[k] for k in sorted(best)]


def print_summary(rows: list[dict]) -> None:
    if not rows:
        print("no completed trials", file=sys.stderr)
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    widths = {c: max(len(c), 10) for c in columns}
    print("best trial per dataset and method (by val/acc):")
    print("  ".join(f"{c:>{widths[c]}}" for c in columns))
    for row in rows:
        cells = []
        for c in columns:
            v = row.get(c, "")
            cells.append(f"{v:>{widths[c]}.4g}" if isinstance(v, float) and math.isfinite(v) else f"{v!s:>{widths[c]}}")
        print("  ".join(cells))


def run_session(spec: Spec, storage: str, tracking_uri: str, local_store: bool) -> int:
    from mlflow import MlflowClient

    from orchestrator.parent import close_parent, open_parent

    client = MlflowClient(tracking_uri)
    resume = can_resume(storage, spec.name)
    total = spec.search.num_samples if spec.search else len(spec.configs())
    experiment_id, parent = open_parent(client, spec, resume, total)
    context = SweepContext(tracking_uri, experiment_id, parent)
    verb = "resuming" if resume else "running"
    print(f"driftlab: {verb} sweep {spec.name!r}: {total} trials; MLflow experiment {spec.name!r} "
          f"(parent run {parent}) at {tracking_uri}", file=sys.stderr, flush=True)
    outcome = run_sweep(spec, storage, context, resume)
    print_summary(summary_rows(outcome.results))
    try:
        counts = reconcile(client, context, outcome.results)
        if spec.search and len(spec.search.objectives) > 1:
            _save_pareto(client, parent, outcome.results, spec.search.objectives)
        close_parent(client, parent, "completed" if not counts.get("failed") else "failed",
                     {"sweep/wall_s": outcome.wall_s, "sweep/trials": float(len(outcome.results)),
                      **{f"sweep/{k}": float(v) for k, v in counts.items()}})
    except Exception as err:  # the tracking server went away: Tune's record stands, sync replays it
        print(f"driftlab: MLflow at {tracking_uri} is unreachable at the end of the sweep "
              f"({type(err).__name__}); run states will be fixed by `driftlab sync`", file=sys.stderr)
        counts = {**tune_counts(outcome.results), "unsynced": len(outcome.results)}
    failed = counts.get("failed", 0)
    print(f"driftlab: sweep {spec.name!r} done in {outcome.wall_s:.0f}s: "
          + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())), file=sys.stderr)
    if counts.get("unsynced"):
        print(f"driftlab: {counts['unsynced']} trial(s) could not log everything to MLflow; Tune kept their "
              f"results: replay them with `driftlab sync {spec.name} --tracking-uri {tracking_uri}"
              f"{' --storage ' + storage if storage else ''}`", file=sys.stderr)
    print(f"driftlab: browse the results at {where_to_browse(tracking_uri, experiment_id, local_store)} "
          f"(experiment {spec.name!r}); "
          f"test hypotheses with `driftlab analyze --experiment {spec.name}`", file=sys.stderr)
    return 1 if failed else 0


def _save_pareto(client, parent: str, results, objectives: dict[str, str]) -> None:
    """Write the Pareto front of a multi-objective search as a CSV + figure on the parent run."""
    import tempfile
    from pathlib import Path

    import pandas as pd

    from analysis import pareto

    rows = [{**trial_config(r.config).to_dict(),
             **{k: v for k, v in (r.metrics or {}).items() if k in objectives}}
            for r in results if r.error is None]
    table = pd.DataFrame(rows).dropna(subset=list(objectives))
    if table.empty:
        return
    with tempfile.TemporaryDirectory() as tmp:
        front, figure = pareto(table, objectives, path=Path(tmp) / "pareto_front.png")
        front.to_csv(Path(tmp) / "pareto_front.csv", index=False)
        client.log_artifacts(parent, tmp, "pareto")
    print(f"driftlab: Pareto front: {len(front)} of {len(table)} trials (artifact pareto/ on the parent run)",
          file=sys.stderr)
