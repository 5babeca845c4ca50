"""One contract, every method: what trains, what stays put, identity at start, GTA, LP-FT phases."""

from __future__ import annotations

import pytest
import torch

from trainables.config import TrialConfig
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
}


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
    assert set(METHODS) == {"ft", "lp", "lpft", "lora", "adapter"}
    assert set(TRAINS) == set(METHODS)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_exactly_the_method_parameters_change(tiny_clip_dir, method):
    trial = make_trial(tiny_clip_dir, method=method)
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


@pytest.mark.parametrize("method", ["lora", "adapter"])
def test_wrapped_model_starts_as_the_identity(tiny_clip_dir, method):
    reference = make_trial(tiny_clip_dir, method="lp")
    trial = make_trial(tiny_clip_dir, method=method)
    x, _ = batch(trial)
    with torch.no_grad():
        assert torch.allclose(trial.model.embed(x), reference.model.embed(x), atol=1e-6)


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


def test_gta_penalty_is_zero_at_start_and_positive_after_a_step(tiny_clip_dir):
    trial = make_trial(tiny_clip_dir, method="ft", gta_lambda=1.0)
    phase = trial.phases[0]
    x, y = batch(trial)
    _, logs = phase.loss(trial.model, x, y)
    assert float(logs["train/gta_penalty"]) == pytest.approx(0.0, abs=1e-10)
    one_step(trial, phase)
    _, logs = phase.loss(trial.model, x, y)
    assert float(logs["train/gta_penalty"]) > 1e-8


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


def test_methods_and_regularisers_own_their_options():
    from dataclasses import fields

    from trainables.config import TrialConfig
    from trainables.methods import REGULARISERS

    owners = {**METHODS, **REGULARISERS}
    declared = [key for module in owners.values() for key in getattr(module, "OPTIONS", ())]
    assert len(declared) == len(set(declared)), "an option has one owner"
    assert set(declared) <= {f.name for f in fields(TrialConfig)}
    for name, module in owners.items():
        assert hasattr(module, "check") == bool(getattr(module, "OPTIONS", ())), name


@pytest.mark.parametrize("method", sorted(METHODS))
def test_trained_parts_are_what_the_method_adds_to_the_checkpoint(tiny_clip_dir, method):
    trial = make_trial(tiny_clip_dir, method=method)
    parts = set(trial.trained(added_only=True))
    added = {"ft": lambda n: False, "lp": lambda n: False, "lpft": lambda n: False}.get(method, TRAINS[method])
    assert parts == {n for n, _ in trial.model.named_parameters() if n.startswith("head.") or added(n)}
    assert set(trial.trained()) >= parts  # checkpoints hold everything that trains
