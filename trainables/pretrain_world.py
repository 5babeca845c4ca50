"""Pretrain the embedded tiny CLIP contrastively on the procedural world and ship it.

    driftlab pretrain-world [--out trainables/embedded] [--steps 2000]

Builds a word-level tokenizer over the world's vocabulary, a small `CLIPModel`, and trains
both towers with the symmetric InfoNCE loss on freshly rendered image-caption pairs.
Identical captions in a batch count as positives of each other (multi-positive targets),
since the world has far fewer distinct captions than images. Writes the checkpoint,
tokenizer and image processor with `save_pretrained`, plus `pretrain_record.json` holding
the settings and the resulting zero-shot accuracy of every world task. Deterministic on
CPU: re-running it reproduces the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from trainables import world
from trainables.models import CLIP_MEAN, CLIP_STD, EMBEDDED_DIR, default_image_processor, image_embedding, text_classifier
from trainables.splits import normalise
from trainables.trial import warmup_cosine

SETTINGS = dict(
    seed=0, steps=2000, batch_size=128, lr=2e-3, weight_decay=0.1, warmup_steps=100, pool_size=16384,
    pool_seed=10_000, eval_size=1024, eval_seed=20_000,
    vision=dict(image_size=world.IMAGE_SIZE, patch_size=8, hidden_size=64, intermediate_size=256,
                num_hidden_layers=4, num_attention_heads=4),
    text=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
              max_position_embeddings=16),
    projection_dim=64,
)


def build_tokenizer():
    """A word-level tokenizer over the world's vocabulary, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "</s>", "<pad>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials + world.vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", model_max_length=SETTINGS["text"]["max_position_embeddings"])


def build_model(vocab_size: int):
    from transformers import CLIPConfig, CLIPModel

    text = dict(SETTINGS["text"], vocab_size=vocab_size, bos_token_id=0, eos_token_id=1, pad_token_id=2)
    config = CLIPConfig(vision_config=SETTINGS["vision"], text_config=text, projection_dim=SETTINGS["projection_dim"])
    return CLIPModel(config)


def zero_shot_accuracies(clip, tokenizer, mean, std) -> dict[str, float]:
    """Zero-shot accuracy of every world task on a held-out render (the same classifier the trial uses)."""
    w = world.generate(SETTINGS["eval_size"], SETTINGS["eval_seed"])
    pixels = normalise(torch.from_numpy(w.images).permute(0, 3, 1, 2), mean, std)
    with torch.no_grad():
        img = F.normalize(image_embedding(clip, pixels), dim=-1)
        out = {}
        for name, task in world.TASKS.items():
            classifier = text_classifier(clip, tokenizer, task.classes, task.templates, "cpu")
            pred = (img @ classifier.T).argmax(-1).numpy()
            out[name] = float((pred == w.labels[task.attribute]).mean())
    return out


def pretrain(out_dir: Path, steps: int) -> dict:
    torch.manual_seed(SETTINGS["seed"])
    torch.use_deterministic_algorithms(True)
    tokenizer = build_tokenizer()
    clip = build_model(len(tokenizer))
    mean, std = torch.tensor(CLIP_MEAN), torch.tensor(CLIP_STD)

    print(f"rendering {SETTINGS['pool_size']} image-caption pairs ...", file=sys.stderr)
    pool = world.generate(SETTINGS["pool_size"], SETTINGS["pool_seed"])
    pixels = normalise(torch.from_numpy(pool.images).permute(0, 3, 1, 2), mean, std)
    tokens = tokenizer(pool.captions, padding="max_length", max_length=SETTINGS["text"]["max_position_embeddings"],
                       return_tensors="pt")
    _, caption_ids = np.unique(pool.captions, return_inverse=True)
    caption_ids = torch.from_numpy(caption_ids)

    opt = torch.optim.AdamW(clip.parameters(), lr=SETTINGS["lr"], weight_decay=SETTINGS["weight_decay"])
    sched = warmup_cosine(opt, SETTINGS["warmup_steps"], steps)
    gen = torch.Generator().manual_seed(SETTINGS["seed"])
    start = time.time()
    clip.train()
    for step in range(steps):
        idx = torch.randint(len(pixels), (SETTINGS["batch_size"],), generator=gen)
        img = F.normalize(image_embedding(clip, pixels[idx]), dim=-1)
        txt = clip.text_projection(clip.text_model(input_ids=tokens["input_ids"][idx],
                                                   attention_mask=tokens["attention_mask"][idx]).pooler_output)
        txt = F.normalize(txt, dim=-1)
        logits = clip.logit_scale.exp().clamp(max=100) * img @ txt.T
        same = (caption_ids[idx, None] == caption_ids[None, idx]).float()
        target = same / same.sum(1, keepdim=True)
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step:5d}/{steps}  loss {loss.item():.3f}  {time.time() - start:5.0f}s", file=sys.stderr)
    clip.eval()
    accuracies = zero_shot_accuracies(clip, tokenizer, mean, std)

    out_dir.mkdir(parents=True, exist_ok=True)
    clip.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    default_image_processor(world.IMAGE_SIZE).save_pretrained(out_dir)
    record = dict(settings=dict(SETTINGS, steps=steps), seconds=round(time.time() - start, 1),
                  zero_shot_accuracy=accuracies,
                  chance={name: 1 / len(task.classes) for name, task in world.TASKS.items()},
                  torch=torch.__version__, threads=torch.get_num_threads(), command="driftlab pretrain-world")
    (out_dir / "pretrain_record.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="driftlab pretrain-world", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=EMBEDDED_DIR, help="output directory (default: the shipped one)")
    parser.add_argument("--steps", type=int, default=SETTINGS["steps"], help="contrastive steps")
    args = parser.parse_args(argv)
    if args.steps < 1:
        print("driftlab: --steps: must be an integer >= 1", file=sys.stderr)
        return 2
    # One thread: the summation order, and so the checkpoint's bytes, do not depend on the core count.
    torch.set_num_threads(1)
    record = pretrain(args.out, args.steps)
    print(json.dumps(record["zero_shot_accuracy"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
