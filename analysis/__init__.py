"""driftlab analysis: exact permutation tests, drift-signal studies and a report for a finished sweep.

Public surface:
- tables: `table_from_csv` (foreign column names through a map, per-epoch columns or long form),
  `table_from_mlflow` (with metric history), `tidy`, `split_completed`;
- analysis: `analyze` -> `AnalysisResult` (tests.csv, cells.csv, each family's table, report.md,
  figures); the families are one registry, `REGISTRY` (paired, dose, association, unpaired,
  predictors, early_warning, selection, polarity), each stratified by every factor it does not span;
- tests: `sign_flip_test`, `spearman_test`, `two_sample_test`, `rank_sum_test`, `holm`, `bootstrap_ci`;
- options: `AnalysisOptions`, `options_from_spec`, `parse_confirm` (confirmatory contrasts), `parse_column_map`;
- extras: `pareto`, `log_to_mlflow`, `higher_is_better`;
- CLI: `analysis.cli.main(argv)` implements `driftlab analyze`.

Never imports ray or orchestrator; from trainables only the standard-library key module
(`trainables.keys`: metric names, their direction, run tags); mlflow only inside the MLflow functions.
"""

from __future__ import annotations

from analysis.columns import parse_column_map
from analysis.confirm import Contrast, parse_confirm
from analysis.core import AnalysisResult, analyze
from analysis.families import REGISTRY, TEST_COLUMNS
from analysis.mlflow_io import log_to_mlflow, table_from_mlflow
from analysis.options import FAMILIES, AnalysisInputError, AnalysisOptions, options_from_spec
from analysis.pareto import pareto
from analysis.permutation import (PermResult, bootstrap_ci, holm, rank_sum_test, sign_flip_test, spearman_test,
                                  two_sample_test)
from analysis.schema import PARAMETER_COLUMNS
from analysis.table import split_completed, table_from_csv, tidy
from trainables.keys import higher_is_better

__all__ = [
    "AnalysisInputError", "AnalysisOptions", "AnalysisResult", "Contrast", "FAMILIES", "PARAMETER_COLUMNS",
    "PermResult", "REGISTRY", "TEST_COLUMNS", "analyze", "bootstrap_ci", "higher_is_better", "holm",
    "log_to_mlflow", "options_from_spec", "pareto", "parse_column_map", "parse_confirm", "rank_sum_test",
    "sign_flip_test", "spearman_test", "split_completed", "table_from_csv", "table_from_mlflow", "tidy",
    "two_sample_test",
]
