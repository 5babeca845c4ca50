"""wise_frontier: each method's WiSE-FT α-frontier against the sweep's own Pareto front.

Per stratum (dataset, backbone, ... held fixed), the sweep's trials are points (target
retention, test accuracy) and its Pareto front is the non-dominated ones. A trial swept with
`wise_alphas` adds one point per α (`alpha<k>_` columns: MLflow's `wise/` metric history).
For each method arm, and for all arms together, the family counts the front points that some
interpolated point dominates (at least as good on both, better on one). The α = 1 point is
the trial's selected (best-validation) model; the sweep's points are its final values, as
the Pareto front reads them.
"""

from __future__ import annotations

import pandas as pd

from analysis.families.common import Family, Inputs, Output, row
from analysis.figures import panel_title, panels, save
from analysis.markdown import capital, markdown_table, where
from analysis.families.stop_rule import STOP_KEYS
from analysis.strata import ARM, LR, SEED, stratify
from trainables import keys

SPANS = (ARM, LR, SEED, *STOP_KEYS)  # one front per dataset: the stop arms are trade-off points too
ALL = "all arms"


def alpha_points(rows: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """One row per (trial, α): arm, alpha, x, y, from the `alpha<k>_<key>` columns."""
    steps = sorted({s for c in rows.columns if (split := keys.split_alpha(str(c))) and split[1] == y
                    for s in [split[0]] if keys.at_alpha(x, s) in rows.columns})
    points = [{"arm": r[ARM], "trial": i, "alpha": s / 100, "x": r[keys.at_alpha(x, s)], "y": r[keys.at_alpha(y, s)]}
              for i, (_, r) in enumerate(rows.iterrows()) for s in steps]
    return pd.DataFrame(points, columns=["arm", "trial", "alpha", "x", "y"]).dropna(subset=["x", "y"])


def dominated(front: pd.DataFrame, points: pd.DataFrame) -> int:
    """How many front points some point of `points` dominates."""
    count = 0
    for fx, fy in front[["x", "y"]].to_numpy(float):
        ge = (points["x"] >= fx) & (points["y"] >= fy)
        gt = (points["x"] > fx) | (points["y"] > fy)
        count += bool((ge & gt).any())
    return count


def _stratum(strata: str, rows: pd.DataFrame, x: str, y: str) -> tuple[list, list]:
    from analysis.pareto import pareto_mask  # analysis.pareto imports the options, which import this registry

    sweep = pd.DataFrame({"arm": rows[ARM].astype(str), "x": pd.to_numeric(rows[x], errors="coerce"),
                          "y": pd.to_numeric(rows[y], errors="coerce")}).dropna()
    points = alpha_points(rows, x, y)
    if sweep.empty or points.empty:
        return [], []
    front = sweep[pareto_mask(sweep[["x", "y"]].to_numpy(float))]
    tests, detail = [], []
    for arm, group in [(ALL, points), *points.groupby("arm", sort=True)]:
        k = dominated(front, group)
        found = {"strata": strata, "arm": arm, "front_points": len(front), "dominated": k,
                 "alphas": len(set(group["alpha"])), "best_alpha_y": float(group.loc[group["y"].idxmax(), "alpha"])}
        detail.append(found)
        tests.append(row("wise_frontier", strata, rows, x, len(front), k / len(front), None, method=str(arm),
                         a=f"{arm} α-frontier", b="sweep Pareto front"))
    shape = pd.concat([sweep.assign(kind="trial", alpha=float("nan")), front.assign(kind="front", alpha=float("nan")),
                       points.assign(kind="alpha")]).assign(strata=strata)
    return tests, [*detail, *shape.to_dict("records")]


def run_wise_frontier(inputs: Inputs) -> Output:
    x, y = inputs.target, keys.TEST_ACC
    if x is None or y not in inputs.table.columns:
        return Output([], notes=["The α-frontier needs test/acc and a zero-shot retention target."])
    tests, detail = [], []
    for strata, stratum in stratify(inputs.table, SPANS):
        found_tests, found_detail = _stratum(strata, stratum, x, y)
        tests += found_tests
        detail += found_detail
    if not tests:
        return Output([], notes=["No trial was swept with wise_alphas (or `driftlab wise`)."])
    return Output(tests, pd.DataFrame(detail), [f"Points are ({x}, {y}); α = 1 is each trial's selected model."])


def section(tests: pd.DataFrame, output: Output, inputs: Inputs) -> list[str]:
    if output.detail is None or output.detail.empty:
        return output.notes
    summary = output.detail[output.detail["kind"].isna()] if "kind" in output.detail else output.detail
    summary = summary[["strata", "arm", "front_points", "dominated", "alphas", "best_alpha_y"]]
    lines = []
    for strata, group in summary.groupby("strata", sort=True):
        whole = group[group["arm"] == ALL].iloc[0]
        arms = "; ".join(f"{r['arm']} {int(r['dominated'])}" for _, r in group.iterrows() if r["arm"] != ALL)
        verdict = "dominates" if whole["dominated"] == whole["front_points"] else "does not dominate"
        lines.append(capital(f"{where(strata)}weight interpolation {verdict} the sweep's own trade-off: its points "
                             f"dominate {int(whole['dominated'])} of the {int(whole['front_points'])} Pareto-front "
                             f"trials (by arm: {arms})."))
    return [*lines, "", markdown_table(summary, 3), "", *output.notes]


def figure(output: Output, path) -> object:
    """Per stratum: the sweep's trials (grey), its Pareto front (black) and each arm's α-curves."""
    detail = output.detail
    if detail is None or detail.empty or "kind" not in detail:
        return None
    shapes = detail[detail["kind"].notna()]
    strata = sorted(shapes["strata"].unique())
    fig, rows, cols = panels(len(strata), 5, 4)
    for i, strata_label in enumerate(strata):
        ax = fig.add_subplot(rows, cols, i + 1)
        s = shapes[shapes["strata"] == strata_label]
        trials, front, points = (s[s["kind"] == k] for k in ("trial", "front", "alpha"))
        ax.scatter(trials["x"], trials["y"], color="0.75", s=14, label="sweep trials")
        front = front.sort_values("x")
        ax.plot(front["x"], front["y"], "k-o", ms=4, label="Pareto front")
        colours = {arm: f"C{j}" for j, arm in enumerate(sorted(points["arm"].unique()))}
        for (arm, trial), curve in points.groupby(["arm", "trial"], sort=True):
            first = trial == points[points["arm"] == arm]["trial"].min()  # one legend entry per arm
            ax.plot(curve["x"], curve["y"], "-", color=colours[arm], lw=1, alpha=0.8,
                    label=f"{arm} (α)" if first else None)
        ax.set_xlabel("retention (%)")
        ax.set_ylabel(keys.TEST_ACC)
        ax.set_title(panel_title(strata_label))
        ax.legend(fontsize=7)
    return save(fig, path)


WISE_FRONTIER = Family("wise_frontier", SPANS, run_wise_frontier,
                       "share of the sweep's Pareto front that an arm's WiSE-FT α-frontier dominates", section,
                       figure)
