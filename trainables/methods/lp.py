"""Linear probe: only the head trains; the image tower stays exactly pretrained."""

from __future__ import annotations


def prepare(model, config):
    from trainables.methods import Phase

    return [Phase("lp", list(model.head.parameters()), config.lr, config.epochs, tunes_tower=False)]
