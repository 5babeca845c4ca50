"""One contract, every method: what trains, what stays put, identity at start, GTA, LP-FT phases."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPModel

from trainables.attention import AttentionCapture
from trainables.config import TrialConfig
from trainables.metrics import box_alignment
from trainables.methods import METHODS
from trainables.methods.adapter import adapters_disabled
from trainables.splits import normalise
from trainables.trial import Trial

# Which parameter names each method may train (besides the head, which all train).
TRAINS = {
    "ft": lambda n: "vision_model." in n or "visual_projection." in n,
    "lp": lambda n: False,
    "lpft": lambda n: "vision_model." in n or "visual_projection." in n,
    "lora": lambda n: "lora_" in n,
    "adapter": lambda n: ".adapter." in n,
    "last_block": lambda n: "vision_model.encoder.layers.1." in n or "vision_model.post_layernorm" in n
    or "visual_projection." in n,  # tune_last 1 of 2 layers
    "dwconv": lambda n: ".dwconv." in n,
    "bitfit": lambda n: n.startswith("clip.vision_model.") and n.endswith(".bias"),
    "dora": lambda n: "lora_" in n,  # lora_A, lora_B, lora_magnitude_vector
    "vera": lambda n: "vera_lambda_" in n,
    "ia3": lambda n: ".ia3_l." in n,
    "ln_tuning": lambda n: ".ln_tuning_layers." in n,
}
TRAINS["lora_projection"] = lambda n: "lora_" in n or "visual_projection." in n
# Every method, plus variants whose knobs change what trains.
CASES = {**{name: {"method": name} for name in METHODS},
         "lora_projection": {"method": "lora", "lora_train_projection": "true"}}
# Methods that wrap or extend the tower: they start as the identity.
WRAPPERS = ("lora", "adapter", "dwconv", "dora", "vera", "ia3", "ln_tuning")


def make_trial(model_dir, **overrides) -> Trial:
    values = dict(model=model_dir, zero_shot=[], probe_size=16, epochs=2, lr=1e-2, lp_lr=1e-2)
    return Trial(TrialConfig.from_dict({**values, **overrides}))


def batch(trial: Trial, n: int = 16):
    pixels, labels, _ = next(trial.task.train.batches(n))
    return normalise(pixels, trial.mean, trial.std), labels


def one_step(trial: Trial, phase) -> dict[str, torch.Tensor]:
    before = {n: p.detach().clone() for n, p in trial.model.named_parameters()}
    optimizer, scheduler = trial._start_phase(phase)
    x, y = batch(trial)
    loss, _ = phase.loss(trial.model, x, y)
    loss.backward()
    optimizer.step()
    return before


def test_registry_is_the_documented_set():
    assert set(METHODS) == {"ft", "lp", "lpft", "lora", "adapter", "last_block", "dwconv", "bitfit", "dora", "vera",
                            "ia3", "ln_tuning"}
    assert set(TRAINS) == set(CASES)


@pytest.mark.parametrize("method", sorted(CASES))
def test_exactly_the_method_parameters_change(tiny_clip_dir, method):
    trial = make_trial(tiny_clip_dir, **CASES[method])
    for phase in trial.phases:
        before = one_step(trial, phase)
        names = {n for n, p in trial.model.named_parameters() if any(p is q for q in phase.params)}
        expected = {n for n in before if n.startswith("head.") or (phase.tunes_tower and TRAINS[method](n))}
        assert names == expected, f"{method}/{phase.name}"
        changed = {n for n, p in trial.model.named_parameters() if not torch.equal(p.detach(), before[n])}
        assert changed <= names
        assert "head.linear.weight" in changed
        frozen_text = [n for n in before if "text_model." in n or "text_projection" in n]
        assert frozen_text and not (set(frozen_text) & changed)
    params = dict(trial.model.named_parameters())
    trained = {n for phase in trial.phases for n, p in params.items() if any(p is q for q in phase.params)}
    plain = CLIPModel.from_pretrained(tiny_clip_dir)
    full = sum(p.numel() for p in [*plain.vision_model.parameters(), *plain.visual_projection.parameters(),
                                   *trial.model.head.parameters()])
    assert trial.sizes == {"params/trainable": sum(params[n].numel() for n in trained),
                           "params/trainable_pct": pytest.approx(100 * sum(params[n].numel() for n in trained) / full)}


@pytest.mark.parametrize("method", WRAPPERS)
def test_wrapped_model_starts_as_the_identity(tiny_clip_dir, method):
    reference = make_trial(tiny_clip_dir, method="lp")
    trial = make_trial(tiny_clip_dir, method=method)
    x, _ = batch(trial)
    with torch.no_grad():
        assert torch.allclose(trial.model.embed(x), reference.model.embed(x), atol=1e-6)
        for name, p in trial.model.named_parameters():  # and what it trains is live in the forward
            if TRAINS[method](name):
                p.add_(torch.randn_like(p) * 0.5)
        assert not torch.allclose(trial.model.embed(x), reference.model.embed(x), atol=1e-4)


def test_nonzero_lora_and_adapters_change_outputs_and_disabling_restores_them(tiny_clip_dir):
    reference = make_trial(tiny_clip_dir, method="lp")
    x, _ = batch(reference)
    with torch.no_grad():
        base = reference.model.embed(x)
    lora = make_trial(tiny_clip_dir, method="lora")
    adapter = make_trial(tiny_clip_dir, method="adapter")
    with torch.no_grad():
        for n, p in lora.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
        for n, p in adapter.model.named_parameters():
            if ".adapter.up." in n:
                p.normal_(0, 0.5)
        assert not torch.allclose(lora.model.embed(x), base, atol=1e-4)
        assert not torch.allclose(adapter.model.embed(x), base, atol=1e-4)
        with lora.model.clip.disable_adapter():
            assert torch.allclose(lora.model.embed(x), base, atol=1e-6)
        with adapters_disabled(adapter.model):
            assert torch.allclose(adapter.model.embed(x), base, atol=1e-6)


@pytest.mark.parametrize("name", ["gta", "apr", "entropy_floor"])
def test_source_penalty_is_zero_at_start_and_positive_after_a_step(tiny_clip_dir, name):
    # The entropy floor only bites once a head's entropy falls below rho * its source entropy: rho 1 here.
    trial = make_trial(tiny_clip_dir, method="ft", lr=5e-2, entropy_floor_ratio=1.0, **{f"{name}_lambda": 1.0})
    phase = trial.phases[0]
    x, y = batch(trial)
    _, logs = phase.loss(trial.model, x, y)
    assert float(logs[f"train/{name}_penalty"]) == pytest.approx(0.0, abs=1e-10)
    one_step(trial, phase)
    _, logs = phase.loss(trial.model, x, y)
    assert float(logs[f"train/{name}_penalty"]) > 1e-8


def test_box_supervision_moves_attention_onto_the_boxes(tiny_clip_dir):
    trial = make_trial(tiny_clip_dir, method="ft", lr=1e-2, warmup_frac=0, box_lambda=100.0)
    phase, ev = trial.phases[0], trial.evaluator
    pixels, labels, index = next(trial.task.train.batches(32))
    x, boxes = normalise(pixels, trial.mean, trial.std), trial.task.train.boxes[index]

    def alignment() -> float:
        with torch.no_grad(), AttentionCapture(trial.model.clip_model()) as cap:
            trial.model(x)
        p = torch.softmax(cap.cls_logits()[-1][..., 1:], -1)
        return float(box_alignment(p, boxes, ev.grid, ev.patch).mean())

    before = alignment()
    optimizer, _ = trial._start_phase(phase)
    for _ in range(5):
        optimizer.zero_grad()
        loss, logs = phase.loss(trial.model, x, labels, boxes=boxes)
        loss.backward()
        optimizer.step()
    assert "train/box_penalty" in logs and "train/gta_penalty" not in logs
    after = alignment()
    assert after > before + 0.02, (before, after)  # 0.516 -> 0.546 here; plain ft stays at 0.51


def test_gta_attaches_only_to_phases_that_tune_the_tower(tiny_clip_dir):
    trial = make_trial(tiny_clip_dir, method="lpft", gta_lambda=0.5, epochs=3, lp_epochs=1)
    lp, ft = trial.phases
    x, y = batch(trial)
    assert "train/gta_penalty" not in lp.loss(trial.model, x, y)[1]
    assert "train/gta_penalty" in ft.loss(trial.model, x, y)[1]


def test_lpft_has_a_probe_phase_then_a_full_phase(tiny_clip_dir):
    trial = make_trial(tiny_clip_dir, method="lpft", epochs=3, lp_epochs=1, lr=1e-4, lp_lr=1e-2)
    assert [(p.name, p.epochs, p.lr, p.tunes_tower) for p in trial.phases] == [
        ("lp", 1, 1e-2, False), ("ft", 2, 1e-4, True)]


def test_lora_targets_only_the_image_tower(tiny_clip_dir):
    trial = make_trial(tiny_clip_dir, method="lora", lora_targets="q,k,v,out,fc1,fc2")
    lora_names = [n for n, _ in trial.model.named_parameters() if "lora_A" in n]
    assert lora_names and all("vision_model.encoder.layers." in n for n in lora_names)
    assert len(lora_names) == 2 * 6  # 2 layers x 6 targets


def test_wrapping_with_peft_prints_no_deprecation_noise(tiny_clip_dir):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_trial(tiny_clip_dir, method="lora")
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]


def test_methods_and_regularisers_own_their_options():
    from dataclasses import fields

    from trainables.methods import REGULARISERS

    owners = {**METHODS, **REGULARISERS}
    declared = [key for module in owners.values() for key in getattr(module, "OPTIONS", ())]
    assert len(declared) == len(set(declared)), "an option has one owner"
    assert set(declared) <= {f.name for f in fields(TrialConfig)}
    for name, module in owners.items():
        assert hasattr(module, "check") == bool(getattr(module, "OPTIONS", ())), name


@pytest.mark.parametrize("method", sorted(CASES))
def test_trained_parts_are_the_methods_own_small_parts(tiny_clip_dir, method):
    trial = make_trial(tiny_clip_dir, **CASES[method])
    parts = set(trial.trained(added_only=True))
    # Full fine-tuning exports only its head; every other method all it trains.
    part = {"ft": lambda n: False, "lpft": lambda n: False}.get(method, TRAINS[method])
    assert parts == {n for n, _ in trial.model.named_parameters() if n.startswith("head.") or part(n)}
    assert set(trial.trained()) >= parts  # checkpoints hold everything that trains


def test_dwconv_shortcut_reaches_the_recorded_hidden_states(tiny_clip_dir):
    # CKA reads the tower's hidden_states, which transformers records with its own forward hooks.
    trial = make_trial(tiny_clip_dir, method="dwconv")
    with torch.no_grad():
        for name, p in trial.model.named_parameters():
            if ".dwconv." in name:
                p.normal_(0, 0.5)
    vision = trial.model.clip_model().vision_model
    inputs = []
    vision.encoder.layers[1].register_forward_pre_hook(lambda m, a: inputs.append(a[0]))
    x, _ = batch(trial)
    with torch.no_grad():
        out = vision(pixel_values=x, output_hidden_states=True)
    assert torch.equal(out.hidden_states[1], inputs[0])
