"""One `driftlab run` session on an initialised Ray: parent run, sweep, reconcile, summary.

Kept apart from the CLI so the order of events reads top to bottom: open (or reopen) the
parent run, run or resume the Tune experiment, bring MLflow in line with Tune's outcome,
print the best trials per method, close the parent run.
"""

from __future__ import annotations

import math
import sys

from orchestrator import signals, watchdog
from orchestrator.configs import method_label, trial_config
from orchestrator.reconcile import reconcile, sweep_status, tune_counts
from orchestrator.spec import Spec
from orchestrator.sweep import can_resume, run_sweep
from orchestrator.trainable import SweepContext
from orchestrator.ui_cli import where_to_browse
from trainables import keys

SUMMARY_KEYS = (keys.VAL_ACC, keys.TEST_ACC, keys.attn_delta("entropy"))


def summary_rows(results) -> list[dict]:
    """Best completed (or drift-stopped) trial (by val/acc) per (dataset, method)."""
    best: dict[tuple, dict] = {}
    for result in results:
        metrics = result.metrics or {}
        if result.error is not None or metrics.get("status") not in ("completed", "stopped_drift"):
            continue
        config = trial_config(result.config)
        key = (config.dataset, method_label(config))
        if key not in best or metrics.get(keys.VAL_ACC, -1) > best[key][keys.VAL_ACC]:
            row = {"dataset": key[0], "method": key[1], "lr": config.lr, "seed": config.seed}
            row.update({k: v for k, v in metrics.items()
                        if k in SUMMARY_KEYS or keys.is_retention(k, best=False)})
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


def run_session(spec: Spec, storage: str, tracking_uri: str, local_store: bool, again: str) -> int:
    """Run (or resume) the sweep; returns the exit code. `again` is the command that resumes it."""
    from mlflow import MlflowClient

    from orchestrator.parent import open_parent, upload_spec

    client = MlflowClient(tracking_uri)
    resume = can_resume(storage, spec.name)
    total = spec.search.num_samples if spec.search else len(spec.configs())
    try:
        experiment_id, parent = open_parent(client, spec, resume, total)
    except Exception as err:  # the server broke between the health check and now
        print(f"driftlab: MLflow at {tracking_uri} failed while opening the sweep's parent run "
              f"({type(err).__name__}: {_first_line(err)}); nothing ran", file=sys.stderr)
        return 1
    if spec.source and not resume and not upload_spec(client, parent, spec, storage):
        print(f"driftlab: could not upload the spec to the parent run; `driftlab sync {spec.name}` uploads it later",
              file=sys.stderr)
    # A SIGKILLed driver cannot close its runs: the watchdog does (as KILLED).
    watchdog.note(tracking_uri=tracking_uri, experiment_id=experiment_id, parent_run_id=parent)
    context = SweepContext(tracking_uri, experiment_id, parent)
    verb = "resuming" if resume else "running"
    print(f"driftlab: {verb} sweep {spec.name!r}: {total} trials; MLflow experiment {spec.name!r} "
          f"(parent run {parent}) at {tracking_uri}", file=sys.stderr, flush=True)
    try:
        outcome = run_sweep(spec, storage, context, resume)
    except KeyboardInterrupt:  # a second signal: Tune did not finish stopping
        return _end_early(client, parent, spec.name, "interrupted", again)
    except Exception as err:  # Tune itself failed (storage, the search algorithm, ...)
        print(f"driftlab: the sweep failed: {type(err).__name__}: {_first_line(err)}", file=sys.stderr)
        return _end_early(client, parent, spec.name, "failed", again)
    print_summary(summary_rows(outcome.results))
    status, counts = _close(client, context, spec, outcome, tracking_uri)
    _report(spec.name, status, counts, outcome.wall_s, again, storage, tracking_uri)
    print(f"driftlab: browse the results at {where_to_browse(tracking_uri, experiment_id, local_store)} "
          f"(experiment {spec.name!r}); "
          f"test hypotheses with `driftlab analyze --experiment {spec.name}`", file=sys.stderr)
    return exit_code(status)


def exit_code(status: str) -> int:
    """0 completed, 1 failed, 128 + the signal when interrupted (130 for Ctrl-C, 143 for SIGTERM)."""
    return {"completed": 0, "failed": 1}.get(status, signals.exit_code() or 130)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [""])[0][:300]


def _close(client, context: SweepContext, spec: Spec, outcome, tracking_uri: str) -> tuple[str, dict[str, int]]:
    """Reconcile the trial runs and close the parent run; (sweep status, counts per outcome)."""
    from orchestrator.parent import close_parent, summary

    try:
        counts = reconcile(client, context, outcome.trials)
        status = sweep_status(counts, bool(signals.received))
        if spec.search and len(spec.search.objectives) > 1 and status == "completed":
            _save_pareto(client, context.parent_run_id, outcome.results, spec.search.objectives)
        close_parent(client, context.parent_run_id, status, summary(len(outcome.results), counts, outcome.wall_s))
        watchdog.note(parent_run_id=None)
    except Exception as err:  # the tracking server went away: Tune's record stands, sync replays it
        print(f"driftlab: MLflow at {tracking_uri} is unreachable at the end of the sweep "
              f"({type(err).__name__}); run states will be fixed by `driftlab sync`", file=sys.stderr)
        counts = {**tune_counts(outcome.trials), "unsynced": len(outcome.results)}
        status = sweep_status(counts, bool(signals.received))
    return status, counts


def _report(name: str, status: str, counts: dict[str, int], wall_s: float, again: str, storage: str,
            tracking_uri: str) -> None:
    tally = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    how = {"completed": "done", "failed": "FAILED", "interrupted": f"INTERRUPTED by {signals.name()}"}[status]
    print(f"driftlab: sweep {name!r} {how} after {wall_s:.0f}s: {tally}", file=sys.stderr)
    if status != "completed":
        print(f"driftlab: Tune kept the sweep's state; resume it (unfinished and failed trials run again, "
              f"completed ones are kept) with `{again}`", file=sys.stderr)
    if counts.get("unsynced"):
        print(f"driftlab: {counts['unsynced']} trial(s) could not log everything to MLflow; Tune kept their "
              f"results: replay them with `driftlab sync {name} --tracking-uri {tracking_uri} --storage {storage}`",
              file=sys.stderr)


def _end_early(client, parent: str, name: str, status: str, again: str) -> int:
    """Close the parent run when Tune itself did not return; exit 1 (failed) or 128 + signal."""
    from orchestrator.parent import close_parent

    try:
        close_parent(client, parent, status, {})
        watchdog.note(parent_run_id=None)
    except Exception as err:  # MLflow down as well: the next run or `driftlab sync` closes it
        print(f"driftlab: could not close the parent run ({type(err).__name__})", file=sys.stderr)
    what = f"interrupted by {signals.name()}" if status == "interrupted" else "failed"
    print(f"driftlab: sweep {name!r} {what}; resume it with `{again}`", file=sys.stderr)
    return exit_code(status)


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
