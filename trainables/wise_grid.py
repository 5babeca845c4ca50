"""The α grid of a WiSE-FT sweep, and α as an MLflow step.

α = 0 is the pretrained model, α = 1 the trained one. In MLflow each `wise/<key>` metric is
logged with step = round(100·α) (`alpha_step`): one chart per metric then draws the whole
α-curve, and the charts of several runs overlay on one α axis.
"""

from __future__ import annotations

from trainables.errors import ConfigError

DEFAULT_ALPHAS: tuple[float, ...] = tuple(i / 10 for i in range(11))


def check(key: str, alphas: list[float]) -> None:
    """Each α in [0, 1], on the 0.01 grid MLflow steps can hold, no repeats."""
    for alpha in alphas:
        if not 0.0 <= alpha <= 1.0 or abs(alpha * 100 - round(alpha * 100)) > 1e-9:
            raise ConfigError(f"{key}: {alpha:g} is not a weight in [0, 1] with at most two decimals "
                              "(e.g. 0,0.25,0.5,0.75,1)")
    if len({alpha_step(a) for a in alphas}) != len(alphas):
        raise ConfigError(f"{key}: an α is repeated in {','.join(f'{a:g}' for a in alphas)}")


def alpha_step(alpha: float) -> int:
    """α as an integer MLflow step (percent)."""
    return int(round(alpha * 100))


def step_alpha(step: int) -> float:
    return step / 100
