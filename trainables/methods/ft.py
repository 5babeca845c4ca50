"""Full fine-tuning: every weight of the image tower, its projection, and the head."""

from __future__ import annotations

from trainables.methods.phase import Phase
from trainables.models import image_tower_parameters


def prepare(model, config) -> list[Phase]:
    params = image_tower_parameters(model.clip) + list(model.head.parameters())
    return [Phase("ft", params, config.lr, config.epochs, tunes_tower=True)]
