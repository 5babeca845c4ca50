"""Linear probe: only the head trains; the image tower stays exactly pretrained."""

from __future__ import annotations

from trainables.methods.phase import Phase


def prepare(model, config) -> list[Phase]:
    return [Phase("lp", list(model.head.parameters()), config.lr, config.epochs, tunes_tower=False)]
