"""The test families: one registry, one entry per family (a new family is one file and one line).

Each entry is a `Family` (analysis/families/common.py): the factors it spans, its run, and
optionally its own report section and figure. The order here is the default order of the
report and of tests.csv.
"""

from __future__ import annotations

from analysis.families.association import ASSOCIATION
from analysis.families.common import TEST_COLUMNS, Family, Inputs, Output
from analysis.families.dose import DOSE
from analysis.families.early_warning import EARLY_WARNING
from analysis.families.paired import PAIRED, UNPAIRED
from analysis.families.polarity import POLARITY
from analysis.families.predictors import PREDICTORS
from analysis.families.selection import SELECTION
from analysis.families.stop_rule import STOP_RULE
from analysis.families.wise_frontier import WISE_FRONTIER

REGISTRY: dict[str, Family] = {family.name: family for family in (
    PAIRED, DOSE, ASSOCIATION, UNPAIRED, PREDICTORS, EARLY_WARNING, SELECTION, POLARITY, STOP_RULE, WISE_FRONTIER)}
FAMILIES: tuple[str, ...] = tuple(REGISTRY)

__all__ = ["FAMILIES", "REGISTRY", "TEST_COLUMNS", "Family", "Inputs", "Output"]
