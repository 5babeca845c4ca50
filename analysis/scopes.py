"""Confirmatory vs exploratory, and Holm's correction within each Holm family.

The tests a declared contrast matches form one Holm family, `confirmatory`; every other test
is exploratory and corrected within its own test family (paired, dose, ...), as without a
declaration. Each row records its scope, its Holm-adjusted p and how many tests its Holm
family held (`holm_m`), so the report can say how big every correction was.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.confirm import Contrast
from analysis.permutation import holm

CONFIRMATORY, EXPLORATORY = "confirmatory", "exploratory"


def holm_family(row: pd.Series) -> str:
    return CONFIRMATORY if row["scope"] == CONFIRMATORY else f"{EXPLORATORY}: {row['family']}"


def apply_scopes(tests: pd.DataFrame, contrasts: list[Contrast], alpha: float) -> pd.DataFrame:
    """Adds scope, p_adjusted, holm_m and resolvable (p_min <= alpha) to the families' rows."""
    tests = tests.reset_index(drop=True).copy()
    confirmed = [any(c.matches(r) for c in contrasts) for _, r in tests.iterrows()]
    tests["scope"] = [CONFIRMATORY if c else EXPLORATORY for c in confirmed]
    tests["p_adjusted"] = np.nan
    tests["holm_m"] = 0
    if tests.empty:
        return tests.assign(resolvable=pd.Series(dtype=bool))
    for _, index in tests.groupby(tests.apply(holm_family, axis=1), sort=False).groups.items():
        p = tests.loc[index, "p_value"].to_numpy(float)
        tests.loc[index, "p_adjusted"] = holm(p)
        tests.loc[index, "holm_m"] = int(np.isfinite(p).sum())
    tests["resolvable"] = tests["p_min"].astype(float) <= alpha
    return tests


def holm_summary(tests: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """One row per Holm family: its size and how many of its tests are significant."""
    if tests.empty:
        return pd.DataFrame(columns=["Holm family", "tests", f"significant (p < {alpha:g})"])
    named = tests.assign(_holm=tests.apply(holm_family, axis=1))
    rows = [(name, int(np.isfinite(g["p_value"].astype(float)).sum()),
             int((g["p_adjusted"].astype(float) < alpha).sum())) for name, g in named.groupby("_holm", sort=False)]
    return pd.DataFrame(rows, columns=["Holm family", "tests", f"significant (p < {alpha:g})"])
