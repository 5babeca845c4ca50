"""LP-FT (Kumar et al. 2022): a linear-probe phase at `lp_lr`, then full fine-tuning at `lr`.

Training the head first means the full fine-tuning phase starts from a good head, so the
early, large gradients that distort pretrained features are avoided.
"""

from __future__ import annotations

from trainables.errors import require
from trainables.methods.phase import Phase
from trainables.models import image_tower_parameters

OPTIONS = ("lp_epochs", "lp_lr")


def check(config) -> None:
    require("lp_lr", config.lp_lr > 0, "a number > 0")
    require("lp_epochs", 1 <= config.lp_epochs < config.epochs or config.method != "lpft",
            f"an integer in [1, epochs) for lpft (epochs = {config.epochs})")


def prepare(model, config) -> list[Phase]:
    head = list(model.head.parameters())
    return [
        Phase("lp", head, config.lp_lr, config.lp_epochs, tunes_tower=False),
        Phase("ft", image_tower_parameters(model.clip) + head, config.lr, config.epochs - config.lp_epochs,
              tunes_tower=True),
    ]
