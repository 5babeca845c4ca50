"""The metric-key module: builders and parsers round-trip, directions, spec short forms, stdlib only."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trainables import keys

BUILT = {
    keys.attn("entropy", 3): ("attn", "entropy", "", 3),
    keys.attn("box_alignment"): ("attn", "box_alignment", "", None),
    keys.attn_delta("mass95"): ("attn_delta", "mass95", "", None),
    keys.attn_delta("entropy_norm", 0): ("attn_delta", "entropy_norm", "", 0),
    keys.cka(11): ("cka", "", "", 11),
    keys.cka(): ("cka", "", "", None),
    keys.zeroshot_acc("embedded_colour"): ("zeroshot", "acc", "embedded_colour", None),
    keys.retention("uoft-cs_cifar100"): ("zeroshot", "retention", "uoft-cs_cifar100", None),
    keys.penalty("entropy_floor"): ("penalty", "", "entropy_floor", None),
    keys.WEIGHT_DRIFT: ("fixed", keys.WEIGHT_DRIFT, "", None),
    keys.EMBEDDING_DRIFT: ("fixed", keys.EMBEDDING_DRIFT, "", None),
    keys.TRAINABLE: ("fixed", keys.TRAINABLE, "", None),
    keys.TRAINABLE_PCT: ("fixed", keys.TRAINABLE_PCT, "", None),
    keys.TRAIN_S: ("fixed", keys.TRAIN_S, "", None),
}


def test_the_grammar_is_what_the_docs_say():
    assert keys.attn("entropy", 3) == "attn/entropy/layer_3" and keys.attn("gini") == "attn/gini/mean"
    assert keys.attn_delta("mass95") == "attn/delta_mass95_pct"
    assert keys.attn_delta("mass95", 2) == "attn/delta_mass95_pct/layer_2"
    assert keys.cka(1) == "repr/cka/layer_1" and keys.cka() == "repr/cka/mean"
    assert keys.retention("t") == "zeroshot/t/retention" and keys.zeroshot_acc("t") == "zeroshot/t/acc"
    assert keys.penalty("gta") == "train/gta_penalty" and keys.best(keys.TEST_ACC) == "best/test/acc"
    assert keys.task_segment("embedded/colour") == "embedded_colour"
    assert keys.task_segment("uoft-cs/cifar100") == "uoft-cs_cifar100"


@pytest.mark.parametrize("key", sorted(BUILT))
def test_builders_and_parser_round_trip(key):
    parsed = keys.parse(key)
    assert (parsed.kind, parsed.metric, parsed.subject, parsed.layer) == BUILT[key]
    assert str(parsed) == key and not parsed.best
    best = keys.parse(keys.best(key))
    assert best.best and str(best) == keys.best(key) and (best.kind, best.layer) == (parsed.kind, parsed.layer)


def test_names_outside_the_grammar_do_not_parse():
    for name in ("epoch", "accuracy", "attn/entropy", "attn/entropy/layer_x", "zeroshot/a/b/acc", "val/f1",
                 "repr/cka/first", "best/"):
        assert keys.parse(name) is None, name
    assert keys.parse(keys.BEST_EPOCH).best


def test_directions():
    up = [keys.VAL_ACC, keys.TEST_ACC, keys.retention("t"), keys.zeroshot_acc("t"), keys.cka(), keys.cka(2),
          keys.attn("box_alignment"), keys.attn_delta("box_alignment"), keys.best(keys.retention("t"))]
    down = [keys.TRAIN_LOSS, keys.TRAINABLE, keys.best(keys.TRAIN_LOSS)]
    neutral = [keys.attn("entropy"), keys.attn_delta("entropy"), keys.attn("mad", 0), keys.WEIGHT_DRIFT,
               keys.EMBEDDING_DRIFT, keys.TRAIN_S, keys.penalty("gta"), keys.BEST_EPOCH]
    assert all(keys.higher_is_better(k) is True for k in up)
    assert all(keys.higher_is_better(k) is False for k in down)
    assert all(keys.higher_is_better(k) is None for k in neutral)
    # Foreign CSV columns fall back to their name: accuracies up, losses down, the rest unknown.
    assert keys.higher_is_better("top1_acc") and keys.higher_is_better("val_loss") is False
    assert keys.higher_is_better("wall_hours") is None


def test_spec_short_forms_name_the_first_zero_shot_task():
    tasks = ["embedded_colour", "cifar100"]
    assert keys.resolve("retention", tasks) == "zeroshot/embedded_colour/retention"
    assert keys.resolve("zeroshot_acc", tasks) == "zeroshot/embedded_colour/acc"
    assert keys.resolve("best/retention", tasks) == "best/zeroshot/embedded_colour/retention"
    assert keys.resolve("val/acc", tasks) == "val/acc" and keys.resolve("zeroshot/cifar100/acc", tasks)
    with pytest.raises(ValueError, match="no zero-shot task"):
        keys.resolve("retention", [])


def test_per_layer_and_retention_predicates():
    assert keys.is_per_layer(keys.attn("gini", 4)) and keys.is_per_layer(keys.cka(0))
    assert not keys.is_per_layer(keys.attn("gini")) and not keys.is_per_layer("layer_3")
    assert keys.is_retention(keys.retention("x")) and not keys.is_retention(keys.zeroshot_acc("x"))
    assert keys.layer_of(keys.attn("entropy", 5), "attn", "entropy") == 5
    assert keys.layer_of(keys.attn("gini", 5), "attn", "entropy") is None


def test_experiment_url_opens_the_runs_table():
    assert keys.experiment_url("http://127.0.0.1:5000/", "7") == \
        "http://127.0.0.1:5000/#/experiments/7?workflowType=machine_learning"


def test_the_module_needs_only_the_standard_library():
    code = "import sys, trainables.keys; print(sorted(m for m in ('torch', 'numpy', 'ray') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_retention_keys_last_or_best():
    last, best = keys.retention("embedded_colour"), keys.best(keys.retention("embedded_colour"))
    assert keys.is_retention(last) and keys.is_retention(best)
    assert keys.is_retention(last, best=False) and not keys.is_retention(best, best=False)
    assert keys.is_retention(best, best=True) and not keys.is_retention(last, best=True)
    assert not keys.is_retention(keys.zeroshot_acc("embedded_colour"))
