"""association: Spearman ρ between attention-support change and zero-shot retention.

Across the arms, learning rates and seeds of one stratum (backbone, dataset, ... fixed): do
runs whose attention support changed more keep less zero-shot skill?
"""

from __future__ import annotations

from analysis.families.common import Family, Inputs, Output, spearman_row
from analysis.schema import SUPPORT_CHANGE_METRICS
from analysis.strata import ARM, LR, SEED, stratify
from trainables.keys import is_retention

SPANS = (ARM, LR, SEED)


def run_association(inputs: Inputs) -> Output:
    support = [m for m in SUPPORT_CHANGE_METRICS if m in inputs.metrics]
    retention = [m for m in inputs.metrics if is_retention(m)]
    rows = []
    for strata, stratum in stratify(inputs.table, SPANS):
        for change in support:
            for kept in retention:
                found = spearman_row("association", strata, stratum, kept, stratum[change].to_numpy(float),
                                     stratum[kept].to_numpy(float), a=change)
                rows.extend([found] if found else [])
    return Output(rows)


ASSOCIATION = Family("association", SPANS, run_association,
                     "Spearman ρ of attention-support change with retention across arms, lrs and seeds")
