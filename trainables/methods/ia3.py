"""(IA)³ (Liu et al. 2022, "Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context
Learning") through peft, on the image tower, plus the head.

Learned vectors rescale the attention keys and values (l_k ⊙ k, l_v ⊙ v) and the input of the
MLP's second linear (l_ff ⊙ h), in every image-tower layer, as the paper places them; peft's
`IA3Config` with `fc2` as the feed-forward module. The vectors start at 1: exactly pretrained.
"""

from __future__ import annotations

from trainables.methods.peft_tower import linears_regex, wrap
from trainables.methods.phase import Phase


def prepare(model, config) -> list[Phase]:
    from peft import IA3Config

    ia3_config = IA3Config(target_modules=linears_regex(["k", "v", "fc2"]), feedforward_modules=linears_regex(["fc2"]))
    params = wrap(model, ia3_config) + list(model.head.parameters())
    return [Phase("ia3", params, config.lr, config.epochs, tunes_tower=True, parts=params)]
