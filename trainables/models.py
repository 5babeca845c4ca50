"""Loading CLIP-family checkpoints and the classifier the trial tunes.

`model` in a trial config is a hub id (`openai/clip-vit-base-patch32`), a local directory
written by `save_pretrained`, or `embedded` (the tiny CLIP shipped in trainables/embedded/).
All three go through the same `from_pretrained` path. The classifier is the CLIP image tower
plus its projection plus a linear head; the text tower stays frozen and is only read for
zero-shot evaluation and the optional zero-shot head initialisation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from trainables.errors import ConfigError

EMBEDDED_DIR = Path(__file__).parent / "embedded"
VISION_LAYER_RE = re.compile(r"(?:^|\.)vision_model\.encoder\.layers\.(\d+)$")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
TEXT_BATCH = 2048  # prompts per text-tower forward when building a zero-shot classifier


@dataclass
class LoadedClip:
    """A CLIPModel with what came with it; tokenizer is None for checkpoints saved without one."""

    model: nn.Module
    tokenizer: object | None
    image_processor: object


def model_path(model: str) -> str:
    """The directory or hub id `from_pretrained` should read for a config's `model` value."""
    return str(EMBEDDED_DIR) if model == "embedded" else model


def _not_found(model: str, err: Exception) -> ConfigError:
    if Path(model).exists():
        return ConfigError(f"model: cannot load {model!r}: {err}".splitlines()[0])
    return ConfigError(
        f"model: {model!r} is not a local directory and is not in the Hugging Face cache "
        f"(offline?); pre-fetch it with `hf download {model}` on a machine with internet, "
        "or pass a directory written by save_pretrained")


def load_clip(model: str) -> LoadedClip:
    """Load a CLIP checkpoint, its tokenizer (if any) and its image processor."""
    import transformers
    from transformers import AutoConfig, AutoTokenizer, CLIPModel

    path = model_path(model)
    transformers.utils.logging.disable_progress_bar()  # trial progress is ours to print
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise _not_found(model, err) from None
    if config.model_type != "clip":
        raise ConfigError(f"model: {model!r} is a {config.model_type!r} checkpoint; "
                          "driftlab needs a CLIP-family checkpoint (model_type 'clip', CLIPModel)")
    clip = CLIPModel.from_pretrained(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, TypeError):
        tokenizer = None
    # transformers 5 builds an empty 2-token CLIPTokenizer when a checkpoint ships no vocabulary.
    if tokenizer is not None and len(tokenizer) <= 2:
        tokenizer = None
    try:
        processor = _processor_class().from_pretrained(path)
    except OSError:
        processor = default_image_processor(config.vision_config.image_size)
    clip.eval()
    return LoadedClip(model=clip, tokenizer=tokenizer, image_processor=processor)


def _processor_class():
    # transformers 5 splits CLIP's processor into a torchvision backend and a PIL one; without
    # torchvision (deliberately not a dependency) use the PIL one directly instead of a warning.
    import transformers

    return getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor


def default_image_processor(size: int):
    """CLIP's preprocessing (resize shortest edge, centre crop, CLIP mean/std) for checkpoints saved without one."""
    return _processor_class()(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                              image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))


def vision_layers(model: nn.Module) -> list[nn.Module]:
    """The image tower's encoder layers in order, found by name so peft/adapter wrapping is transparent."""
    found = {}
    for name, module in model.named_modules():
        m = VISION_LAYER_RE.search(name)
        if m:
            found[int(m.group(1))] = module
    return [found[i] for i in sorted(found)]


def image_tower_parameters(clip: nn.Module) -> list[nn.Parameter]:
    """Parameters of the image tower and its projection (what `ft` trains), whatever the wrapping."""
    return [p for n, p in clip.named_parameters() if "vision_model." in n or "visual_projection." in n]


class Head(nn.Module):
    """Linear classifier on the L2-normalised projected image embedding, scaled by CLIP's logit scale.

    logits = W · (s · e/‖e‖) + b. With W set to normalised class text embeddings and b = 0 this
    is exactly CLIP's zero-shot classifier (the FLYP / WiSE-FT initialisation); the fixed scale s
    keeps a randomly initialised head learning at ordinary learning rates.
    """

    def __init__(self, dim: int, num_classes: int, scale: float):
        super().__init__()
        self.linear = nn.Linear(dim, num_classes)
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.linear(F.normalize(embedding, dim=-1) * self.scale)


class ImageClassifier(nn.Module):
    """The tuned model: CLIP (possibly peft-wrapped) image tower + projection + head."""

    def __init__(self, clip: nn.Module, num_classes: int):
        super().__init__()
        self.clip = clip
        self._pretrained = frozenset(id(p) for p in clip.parameters())
        dim = clip.config.projection_dim
        scale = min(float(clip.logit_scale.detach().exp()), 100.0)
        self.head = Head(dim, num_classes, scale)

    def added_parameters(self, params: list[nn.Parameter]) -> list[nn.Parameter]:
        """Those of `params` the pretrained checkpoint does not hold (head, LoRA, adapters), by identity:
        what a tuned model adds to it. Wrapping keeps the pretrained parameter objects, so this holds after it."""
        return [p for p in params if id(p) not in self._pretrained]

    def clip_model(self) -> nn.Module:
        """The underlying CLIPModel (through a peft wrapper if there is one)."""
        clip = self.clip
        return clip.get_base_model() if hasattr(clip, "get_base_model") else clip

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Projected image embedding from the tuned tower (adapters/LoRA active)."""
        return image_embedding(self.clip_model(), pixel_values)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(pixel_values))


def image_embedding(clip: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """CLIP's projected image embedding (what `get_image_features(...).pooler_output` returns)."""
    return clip.visual_projection(clip.vision_model(pixel_values=pixel_values).pooler_output)


def cls_hidden_states(clip: nn.Module, pixel_values: torch.Tensor) -> list[torch.Tensor]:
    """The [CLS] hidden state after each image-tower layer, [B, D] per layer."""
    out = clip.vision_model(pixel_values=pixel_values, output_hidden_states=True)
    return [h[:, 0] for h in out.hidden_states[1:]]


@torch.no_grad()
def text_classifier(clip: nn.Module, tokenizer, classes, templates, device) -> torch.Tensor:
    """Zero-shot classifier [C, D]: per class, each template's embedding normalised, averaged, renormalised.

    Every class x template prompt goes through the text tower together (as open_clip does), in
    chunks of whole classes of at most TEXT_BATCH prompts; one forward per class is many times slower.
    """
    per_chunk = max(1, TEXT_BATCH // len(templates))
    rows = []
    for start in range(0, len(classes), per_chunk):
        names = classes[start:start + per_chunk]
        prompts = [t.format(name) for name in names for t in templates]
        tokens = tokenizer(prompts, padding=True, truncation=True, return_tensors="pt").to(device)
        text = clip.text_projection(clip.text_model(input_ids=tokens["input_ids"],
                                                  attention_mask=tokens["attention_mask"]).pooler_output)
        text = F.normalize(text, dim=-1).view(len(names), len(templates), -1)
        rows.append(F.normalize(text.mean(1), dim=-1))
    return torch.cat(rows)
