"""Strata, confirmatory contrasts and foreign run tables, through `analyze` and the CLI.

- two backbones and a GTA arm whose pooled correlations have the opposite sign to every stratum's;
- a declared contrast Holm-corrected on its own, the report opening with it;
- a CSV with another tool's column names (and per-epoch columns, and a long form) through --columns;
- bad input: one line naming the field, exit 2, before anything is written.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import AnalysisInputError, analyze, options_from_spec, parse_confirm
from analysis.cli import main
from analysis.strata import arm_labels, stratum_factors
from tests.test_analysis import RETENTION, synthetic_table
from trainables import keys

DENT = keys.attn_delta("entropy")


def two_backbones() -> pd.DataFrame:
    """Backbone A at low lrs, B at high lrs; within each, Δentropy falls with lr (ρ = -1), but B's
    values are higher, so pooled they rise with lr. Backbone A also has a GTA arm where it rises."""
    rows = []
    plan = {("A", 0.0): ((1e-5, 1e-4, 1e-3), (-10, -20, -30)), ("B", 0.0): ((1e-3, 1e-2, 1e-1), (40, 30, 20)),
            ("A", 0.5): ((1e-5, 1e-4, 1e-3), (5, 6, 7))}
    for (model, lam), (lrs, deltas) in plan.items():
        for (lr, delta), seed in itertools.product(zip(lrs, deltas), (0, 1)):
            rows.append({"model": model, "dataset": "d", "method": "ft", "gta_lambda": lam, "lr": lr, "seed": seed,
                         DENT: delta + 0.1 * seed, RETENTION: 100 - delta - seed, "val/acc": 50 + seed})
    return pd.DataFrame(rows)


def test_pooling_would_flip_the_sign_and_the_strata_do_not(tmp_path):
    table = two_backbones()
    ft = table[table["gta_lambda"] == 0]
    pooled = stats.spearmanr(np.log10(ft["lr"]), ft[DENT]).statistic
    assert pooled > 0.3  # the fixture's point: pooled over backbones, Δentropy seems to rise with lr
    result = analyze(table, tmp_path, families=["dose", "association"], metrics=[DENT, RETENTION])
    dose = result.tests[(result.tests["family"] == "dose") & (result.tests["metric"] == DENT)
                        & (result.tests["a"] == "log10(lr)")]
    by_stratum = dict(zip(dose["strata"], dose["effect"]))
    groups = {"model=A, arm=ft": ("A", 0.0), "model=A, arm=ft+gta0.5": ("A", 0.5), "model=B, arm=ft": ("B", 0.0)}
    expected = {label: stats.spearmanr(np.log10(g["lr"]), g[DENT]).statistic for label, (model, lam) in groups.items()
                if len(g := table[(table["model"] == model) & (table["gta_lambda"] == lam)])}
    assert by_stratum == pytest.approx(expected)
    assert expected["model=A, arm=ft"] < -0.9 and expected["model=B, arm=ft"] < -0.9  # the sign pooling hides
    assert expected["model=A, arm=ft+gta0.5"] > 0.9  # the GTA arm, never pooled with plain FT
    association = result.tests[result.tests["family"] == "association"]
    assert set(association["strata"]) == {"model=A", "model=B"}  # arms pooled, backbones never
    report = (tmp_path / "report.md").read_text()
    assert "model=A, arm=ft+gta0.5" in report and "held fixed" in report


def test_strata_come_from_the_table_not_a_list():
    table = two_backbones().assign(weight_decay=lambda t: np.where(t["seed"] == 0, 0.0, 0.1))
    assert stratum_factors(table, ("arm", "lr", "seed")) == ["model", "weight_decay"]
    assert stratum_factors(table, ("lr", "seed")) == ["model", "weight_decay", "arm"]
    # A dose over λ leaves λ out of the arm: with one method, the arm no longer varies.
    assert stratum_factors(table, ("gta_lambda", "seed")) == ["model", "lr", "weight_decay"]
    lora = pd.DataFrame({"method": ["ft", "lora", "lora"], "lora_r": [8, 4, 8], "gta_lambda": [0.3, 0.0, 0.0]})
    assert list(arm_labels(lora)) == ["ft+gta0.3", "lora[lora_r=4]", "lora[lora_r=8]"]


def test_a_declared_contrast_is_holm_corrected_on_its_own(tmp_path):
    table = synthetic_table()
    confirm = parse_confirm("[{paired: [ft, lora], metric: retention}]")
    from analysis import AnalysisOptions

    result = analyze(table, tmp_path, options=AnalysisOptions(confirm=confirm, families=["paired", "dose"]))
    tests = result.tests
    confirmed = tests[tests["scope"] == "confirmatory"]
    assert len(confirmed) == 2 and set(confirmed["metric"]) == {RETENTION}  # one per dataset (stratum)
    assert (confirmed["holm_m"] == 2).all()
    assert confirmed["p_adjusted"].to_numpy() == pytest.approx(np.minimum(1, 2 * confirmed["p_value"].to_numpy()))
    explored = tests[(tests["scope"] == "exploratory") & (tests["family"] == "paired")]
    assert (explored["holm_m"] == len(explored)).all() and RETENTION not in set(explored["metric"])
    report = (tmp_path / "report.md").read_text()
    first = report.split("\n\n")[1]
    assert first.startswith("ft keeps less zero-shot cifar100 retention than lora at matched lr and seed") \
        and "12 matched cells" in first and "(2 confirmatory tests)" in first
    assert "| confirmatory | 2 | 2 |" in report and f"| exploratory: paired | {len(explored)} |" in report


def test_without_a_declaration_every_holm_family_is_sized(tmp_path):
    result = analyze(synthetic_table(), tmp_path, families=["paired", "association"])
    assert set(result.tests["scope"]) == {"exploratory"}
    report = (tmp_path / "report.md").read_text()
    for family, group in result.tests.groupby("family"):
        assert f"| exploratory: {family} | {len(group)} |" in report
    assert "None declared" in report


def test_spec_confirm_section():
    opts = options_from_spec({"confirm": [{"paired": ["ft", "lora"], "metric": "retention"},
                                          {"dose": "lr", "metric": "val/acc", "where": {"arm": "ft"}}]})
    assert [c.family for c in opts.confirm] == ["paired", "dose"] and opts.confirm[1].where == (("arm", "ft"),)
    for bad, field in (([{"paired": "ft", "metric": "retention"}], "analysis.confirm[0].paired"),
                       ([{"paired": ["ft", "lora"]}], "analysis.confirm[0].metric"),
                       ([{"anova": "x", "metric": "retention"}], "analysis.confirm[0]")):
        with pytest.raises(AnalysisInputError, match=field.replace("[", r"\[").replace("]", r"\]")):
            options_from_spec({"confirm": bad})


# ---- a foreign run table ------------------------------------------------------------------

MAP = ("arch=model,algo=method,learning_rate=lr,rep=seed,cifar100_retention=zeroshot/cifar100/retention,"
       "delta_entropy_pct=attn/delta_entropy_pct,emb_drift=drift/embedding,valid_acc=val/acc")


def foreign_table() -> pd.DataFrame:
    """Another study's run table: its own column names, per-epoch columns `ep<k>_`, two unplaced columns."""
    rng = np.random.default_rng(0)
    rows = []
    for algo, lr, rep in itertools.product(("ft", "lora"), (1e-5, 1e-4, 1e-3), (0, 1, 2)):
        drift = (0.5 if algo == "ft" else 0.1) * (1 + np.log10(lr) + 6) + rng.normal(0, 0.02)
        rows.append({"arch": "vit-b32", "algo": algo, "learning_rate": lr, "rep": rep,
                     "cifar100_retention": 100 - 60 * drift + rng.normal(0, 2), "delta_entropy_pct": -30 * drift,
                     "emb_drift": drift, "ep1_emb_drift": drift / 2, "ep1_delta_entropy_pct": -15 * drift,
                     "valid_acc": 80 + 5 * drift, "gpu_hours": 1.5, "notes": "ok"})
    return pd.DataFrame(rows)


def test_foreign_csv_through_columns(tmp_path, capsys):
    csv, out = tmp_path / "runs.csv", tmp_path / "out"
    foreign_table().to_csv(csv, index=False)
    argv = ["--csv", str(csv), "--columns", MAP, "--epoch-template", "ep{k}_", "--out", str(out),
            "--metrics", "cifar100_retention,attn/delta_entropy_pct",  # a foreign name and a driftlab one
            "--confirm", "[{paired: [ft, lora], metric: cifar100_retention}]"]
    assert main(argv) == 0, capsys.readouterr().err
    tests = pd.read_csv(out / "tests.csv", keep_default_na=False)
    assert {"paired", "predictors", "early_warning", "selection", "polarity"} <= set(tests["family"])
    assert set(tests[tests["family"] == "paired"]["metric"]) == {keys.retention("cifar100"), DENT}
    assert {keys.EMBEDDING_DRIFT, f"|{DENT}|"} <= set(tests[tests["family"] == "predictors"]["a"])
    assert "epoch 1: AUC" in set(tests[tests["family"] == "early_warning"]["b"])
    report = (out / "report.md").read_text()
    assert report.split("\n\n")[1].startswith("ft keeps less zero-shot cifar100 retention than lora")
    assert "## Columns not placed" in report and "gpu_hours" in report and "text, not used: notes" in report


def test_column_map_from_a_yaml_file_and_a_long_table(tmp_path):
    import yaml

    mapping = tmp_path / "map.yaml"
    mapping.write_text(yaml.safe_dump(dict(item.split("=") for item in MAP.split(","))))
    wide = foreign_table()
    final = wide.assign(step=2)
    first = wide.assign(step=1, emb_drift=wide["ep1_emb_drift"], delta_entropy_pct=wide["ep1_delta_entropy_pct"])
    long = pd.concat([first, final]).drop(columns=["ep1_emb_drift", "ep1_delta_entropy_pct"])
    long["run"] = list(range(len(wide))) * 2
    csv = tmp_path / "long.csv"
    long.rename(columns={"step": "epoch", "run": "trial_id"}).to_csv(csv, index=False)
    out = tmp_path / "out"
    assert main(["--csv", str(csv), "--columns", str(mapping), "--out", str(out),
                 "--families", "early_warning"]) == 0
    detail = pd.read_csv(out / "early_warning.csv")
    assert set(detail["epoch"]) == {1, 2} and (detail["n"] == 18).any()


@pytest.mark.parametrize("extra, field", [
    (["--columns", "nope=model"], "--columns: no column 'nope'"),
    (["--columns", "arch=backbone"], "--columns: arch=backbone"),
    (["--columns", MAP, "--target", "notes"], "--target"),
    (["--columns", MAP, "--target", "gpu_hours"], "--target: gpu_hours has no variance"),
    (["--columns", MAP, "--epoch-template", "ep{k}_", "--early-epochs", "3"], "--early-epochs: epoch 3 is beyond"),
    (["--columns", MAP, "--early-epochs", "1"], "--early-epochs: the table has no per-epoch values"),
    (["--columns", MAP, "--confirm", "[{paired: [ft, dora], metric: retention}]"], "confirm[0].paired: no arm"),
    (["--columns", MAP, "--confirm", "[{paired: ft}]"], "--confirm[0].paired"),
    (["--columns", MAP, "--epoch-template", "ep_"], "--epoch-template"),
    (["--columns", MAP, "--signals", "no/such"], "--signals"),
    (["--columns", MAP, "--methods", "dora"], "--methods: no arm or method 'dora'"),
    (["--columns", MAP, "--margins", "-1"], "--margins"),
])
def test_bad_input_exits_2_with_one_line_before_writing(tmp_path, capsys, extra, field):
    csv, out = tmp_path / "runs.csv", tmp_path / "out"
    foreign_table().to_csv(csv, index=False)
    assert main(["--csv", str(csv), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0], err
    assert not out.exists()  # nothing started


def test_columns_only_with_csv(capsys):
    assert main(["--experiment", "x", "--tracking-uri", "http://127.0.0.1:1", "--columns", "a=model"]) == 2
    assert "--columns: only meaningful with --csv" in capsys.readouterr().err


def test_a_contrast_can_name_its_stratum(tmp_path):
    from analysis import AnalysisOptions

    confirm = parse_confirm("[{dose: lr, metric: retention, where: {dataset: eurosat}}]")
    result = analyze(synthetic_table(), tmp_path, options=AnalysisOptions(confirm=confirm, families=["dose"]))
    confirmed = result.tests[result.tests["scope"] == "confirmatory"]
    assert set(confirmed["strata"]) == {"dataset=eurosat, arm=ft", "dataset=eurosat, arm=lora"}
    assert set(confirmed["metric"]) == {RETENTION} and (confirmed["holm_m"] == 2).all()
