"""driftlab analysis: exact permutation tests and a report for a finished sweep.

Public surface:
- tables: `table_from_csv`, `table_from_mlflow`, `tidy`, `split_completed`;
- analysis: `analyze` -> `AnalysisResult` (tests.csv, cells.csv, report.md, figures);
- tests: `sign_flip_test`, `spearman_test`, `two_sample_test`, `holm`, `bootstrap_ci`;
- extras: `pareto`, `log_to_mlflow`, `higher_is_better`, `options_from_spec`;
- CLI: `analysis.cli.main(argv)` implements `driftlab analyze`.

Never imports ray or orchestrator; from trainables only the standard-library key module
(`trainables.keys`: metric names, their direction, run tags); mlflow only inside the MLflow functions.
"""

from __future__ import annotations

from analysis.core import AnalysisResult, analyze
from analysis.families import TEST_COLUMNS
from analysis.mlflow_io import log_to_mlflow, table_from_mlflow
from analysis.options import FAMILIES, AnalysisInputError, AnalysisOptions, options_from_spec
from analysis.pareto import pareto
from analysis.permutation import (PermResult, bootstrap_ci, holm, sign_flip_test, spearman_test,
                                  two_sample_test)
from analysis.schema import PARAMETER_COLUMNS
from analysis.table import split_completed, table_from_csv, tidy
from trainables.keys import higher_is_better

__all__ = [
    "AnalysisInputError", "AnalysisOptions", "AnalysisResult", "FAMILIES", "PARAMETER_COLUMNS", "PermResult",
    "TEST_COLUMNS", "analyze", "bootstrap_ci", "higher_is_better", "holm", "log_to_mlflow", "options_from_spec",
    "pareto", "sign_flip_test", "spearman_test", "split_completed", "table_from_csv", "table_from_mlflow",
    "tidy", "two_sample_test",
]
