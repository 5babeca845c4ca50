"""Real-data loading on tiny local datasets built in tmp_path: parquet, image folder, save_to_disk, registry.

Nothing here touches the network: the Hugging Face cache is redirected into tmp_path and offline mode
is forced, so a hub id can only come from the (empty) cache.

Every image is a uniform colour whose red channel is the item's id and whose green channel encodes
its class, so after resize + centre crop each pixel tensor still tells which item it came from.
"""

from __future__ import annotations

import io
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before `datasets` / `huggingface_hub` read them
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets  # noqa: E402
import huggingface_hub.constants  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import CLIPImageProcessor  # noqa: E402

from trainables import real_data  # noqa: E402
from trainables.config import ConfigError  # noqa: E402
from trainables.real_data import REAL_DATASETS, RealDataset, check_label_names, load_real_task  # noqa: E402

NAMES = ["cat_face", "dog", "bird"]


@pytest.fixture(autouse=True)
def _offline_and_isolated(tmp_path, monkeypatch):
    """Point the datasets cache into tmp_path, force offline mode, and start with an empty task cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets-cache")
    datasets.disable_progress_bars()
    real_data._load_cached.cache_clear()
    yield
    real_data._load_cached.cache_clear()


@pytest.fixture(scope="module")
def processor():
    return CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


def _image(item: int, label: int) -> Image.Image:
    # Not square, so the processor really resizes and crops; uniform, so the colour survives both.
    return Image.new("RGB", (40, 36), (item, 40 + 60 * label, 128))


def _png(item: int, label: int) -> bytes:
    buffer = io.BytesIO()
    _image(item, label).save(buffer, format="PNG")
    return buffer.getvalue()


def _items(pixels: torch.Tensor) -> np.ndarray:
    """Item ids back from the red channel."""
    return pixels[:, 0].float().mean(dim=(1, 2)).round().long().numpy()


def _classes_of(pixels: torch.Tensor) -> np.ndarray:
    return ((pixels[:, 1].float().mean(dim=(1, 2)) - 40) / 60).round().long().numpy()


def _labelled(first_item: int, per_class: int, n_classes: int = 3) -> tuple[list[int], list[int]]:
    labels = [c for c in range(n_classes) for _ in range(per_class)]
    return list(range(first_item, first_item + len(labels))), labels


def _image_dataset(items: list[int], labels: list[int], names=NAMES) -> datasets.Dataset:
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names),
                                  "note": datasets.Value("string")})
    rows = {"image": [{"bytes": _png(i, y), "path": None} for i, y in zip(items, labels)],
            "label": labels, "note": [f"item {i}" for i in items]}
    return datasets.Dataset.from_dict(rows, features=features)


def _saved_dict(tmp_path, train_per_class: int = 20, test_per_class: int = 5) -> tuple[str, list[int], list[int]]:
    train_items, train_labels = _labelled(0, train_per_class)
    test_items, test_labels = _labelled(100, test_per_class)
    path = tmp_path / "saved"
    datasets.DatasetDict({"train": _image_dataset(train_items, train_labels),
                          "test": _image_dataset(test_items, test_labels)}).save_to_disk(str(path))
    return str(path), train_items, test_items


def _check_common(task, n_total: int) -> None:
    for split in (task.train, task.val, task.test):
        assert split.pixels.dtype == torch.uint8
        assert tuple(split.pixels.shape[1:]) == (3, 32, 32)
        assert split.labels.dtype == torch.int64
        assert split.boxes is None
        # Labels travel with their images through preprocessing and carving.
        assert np.array_equal(split.labels.numpy(), _classes_of(split.pixels))
    assert len(task.train) + len(task.val) + len(task.test) == n_total
    assert task.augment is True


def _per_class(split, n_classes: int = 3) -> list[int]:
    return np.bincount(split.labels.numpy(), minlength=n_classes).tolist()


# --- local sources -----------------------------------------------------------------------------------

def test_parquet_file_with_one_split_carves_test_then_val_from_train(tmp_path, processor):
    items, labels = _labelled(0, 20)
    path = tmp_path / "pets.parquet"
    _image_dataset(items, labels).to_parquet(str(path))

    task = load_real_task(str(path), processor)

    _check_common(task, 60)
    assert task.classes == ("cat face", "dog", "bird")
    assert task.templates == ("a photo of a {}.",)
    assert _per_class(task.test) == [4, 4, 4]  # 20% of every class
    assert _per_class(task.val) == [2, 2, 2]  # 10% of what is left (16 per class)
    ids = [set(_items(s.pixels)) for s in (task.train, task.val, task.test)]
    assert ids[0].isdisjoint(ids[1]) and ids[0].isdisjoint(ids[2]) and ids[1].isdisjoint(ids[2])
    assert set().union(*ids) == set(items)


def test_image_folder_with_class_subfolders(tmp_path, processor):
    root = tmp_path / "folder"
    for label, name in enumerate(["apple", "banana", "cherry"]):
        (root / name).mkdir(parents=True)
        for k in range(10):
            _image(label * 10 + k, label).save(root / name / f"{k}.png")

    task = load_real_task(str(root), processor)

    _check_common(task, 30)
    assert task.classes == ("apple", "banana", "cherry")
    assert _per_class(task.test) == [2, 2, 2]
    assert _per_class(task.val) == [1, 1, 1]


def test_saved_dataset_dict_keeps_test_and_carves_val_from_train(tmp_path, processor):
    path, train_items, test_items = _saved_dict(tmp_path)

    task = load_real_task(path, processor)

    _check_common(task, 75)
    assert sorted(_items(task.test.pixels)) == sorted(test_items)  # test is the source's test, untouched
    val_ids, train_ids = set(_items(task.val.pixels)), set(_items(task.train.pixels))
    assert val_ids <= set(train_items) and val_ids.isdisjoint(test_items)
    assert val_ids | train_ids == set(train_items) and not val_ids & train_ids
    assert _per_class(task.val) == [2, 2, 2]
    assert len(task.train) + len(task.val) == 60


def test_source_val_split_is_used_as_is(tmp_path, processor):
    splits = {"train": _labelled(0, 8), "val": _labelled(50, 2), "test": _labelled(100, 3)}
    path = tmp_path / "with_val"
    datasets.DatasetDict({s: _image_dataset(*v) for s, v in splits.items()}).save_to_disk(str(path))

    task = load_real_task(str(path), processor)

    _check_common(task, 39)
    for role in ("train", "val", "test"):
        assert sorted(_items(getattr(task, role).pixels)) == splits[role][0]


def test_carving_is_deterministic(tmp_path, processor):
    path, _, _ = _saved_dict(tmp_path)
    first = load_real_task(path, processor)
    real_data._load_cached.cache_clear()
    second = load_real_task(path, processor)
    assert first is not second
    assert np.array_equal(_items(first.val.pixels), _items(second.val.pixels))


def test_parquet_directory_with_string_labels_uses_sorted_values(tmp_path, processor):
    names = ["zebra", "ant", "moose"]
    root = tmp_path / "pq"
    root.mkdir()
    for split, first, per_class in (("train", 0, 10), ("test", 100, 3)):
        items, labels = _labelled(first, per_class)
        table = datasets.Dataset.from_dict(
            {"picture": [{"bytes": _png(i, y), "path": None} for i, y in zip(items, labels)],
             "label": [names[y] for y in labels]},
            features=datasets.Features({"picture": datasets.Image(), "label": datasets.Value("string")}))
        table.to_parquet(str(root / f"{split}.parquet"))

    task = load_real_task(str(root), processor)

    assert task.classes == ("ant", "moose", "zebra")
    assert len(task.test) == 9 and len(task.train) + len(task.val) == 30
    # Class k in the source ("zebra" = 0) is index 2 after sorting: map the colour code through the names.
    for split in (task.train, task.val, task.test):
        assert [task.classes[i] for i in split.labels] == [names[c] for c in _classes_of(split.pixels)]


def test_missing_columns_is_one_clear_config_error(tmp_path, processor):
    path = tmp_path / "table.parquet"
    datasets.Dataset.from_dict({"text": ["a", "b"], "score": [1.0, 2.0]}).to_parquet(str(path))
    with pytest.raises(ConfigError) as err:
        load_real_task(str(path), processor)
    message = str(err.value)
    assert "\n" not in message and "table.parquet" in message and "text" in message and "score" in message


# --- caching -----------------------------------------------------------------------------------------

class _CountingProcessor:
    """Delegates to a real processor and counts the images it preprocesses."""

    def __init__(self, inner) -> None:
        self.inner, self.images = inner, 0

    def __call__(self, images, **kwargs):
        self.images += len(images)
        return self.inner(images=images, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_preprocessing_is_cached_in_process_and_on_disk(tmp_path, processor):
    path, _, _ = _saved_dict(tmp_path)
    counting = _CountingProcessor(processor)
    task = load_real_task(path, counting)
    assert counting.images == 75

    # Same settings, another processor object: the in-process cache answers.
    again = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    assert load_real_task(path, again) is task
    # Same sizes, another resampling filter: other pixels, so another cache entry.
    nearest = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, resample=0)
    assert load_real_task(path, nearest) is not task

    # A fresh process (simulated by clearing the in-process cache) reuses the Arrow cache on disk.
    real_data._load_cached.cache_clear()
    counting.images = 0
    reloaded = load_real_task(path, counting)
    assert counting.images == 0
    assert torch.equal(reloaded.train.pixels, task.train.pixels)


# --- the registry ------------------------------------------------------------------------------------

def test_registry_entries():
    assert set(REAL_DATASETS) == {"eurosat", "oxford_pets", "cifar100"}
    cifar = REAL_DATASETS["cifar100"]
    assert cifar.hub_id == "uoft-cs/cifar100" and cifar.label_column == "fine_label"
    assert len(cifar.templates) == 18 and len(set(cifar.templates)) == 18
    assert len(cifar.classes) == 100 and len(set(cifar.classes)) == 100
    assert "crab" in cifar.classes and "cra" not in cifar.classes
    assert not any("_" in c for c in cifar.classes)
    assert cifar.classes[26] == "crab" and cifar.hub_label_names[26] == "cra"
    assert len(REAL_DATASETS["oxford_pets"].classes) == 37
    assert REAL_DATASETS["oxford_pets"].templates == ("a photo of a {}, a type of pet.",)
    assert len(REAL_DATASETS["eurosat"].classes) == 10 and len(REAL_DATASETS["eurosat"].templates) == 3
    assert REAL_DATASETS["eurosat"].classes[2] == "brushland or shrubland"
    for entry in REAL_DATASETS.values():
        assert all(t.count("{}") == 1 for t in entry.templates)
        assert len(entry.hub_label_names) == len(entry.classes)


def test_label_name_check_ignores_case_and_underscores_but_not_order():
    cifar = REAL_DATASETS["cifar100"]
    check_label_names("cifar100", cifar, [n.upper().replace("_", " ") for n in cifar.hub_label_names])
    swapped = list(cifar.hub_label_names)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    with pytest.raises(ConfigError, match=r"label 0 is 'aquarium_fish' in the data but 'apple'"):
        check_label_names("cifar100", cifar, swapped)
    with pytest.raises(ConfigError, match="99 labels"):
        check_label_names("cifar100", cifar, list(cifar.hub_label_names[:99]))


def _fake_entry(hub_id: str, hub_names) -> RealDataset:
    return RealDataset(hub_id=hub_id, image_column="image", label_column="label", train_split="train",
                       val_split=None, test_split="test", hub_label_names=tuple(hub_names),
                       classes=("kitten face", "puppy", "sparrow"), templates=("a photo of my {}.", "a {}."))


def test_registry_entry_loads_with_clean_names_and_rejects_reordered_mirror(tmp_path, processor, monkeypatch):
    path, _, _ = _saved_dict(tmp_path)
    monkeypatch.setitem(REAL_DATASETS, "fake", _fake_entry(path, ["Cat Face", "DOG", "bird"]))
    task = load_real_task("fake", processor)
    assert task.classes == ("kitten face", "puppy", "sparrow")
    assert task.templates == ("a photo of my {}.", "a {}.") and task.augment is True
    _check_common(task, 75)

    monkeypatch.setitem(REAL_DATASETS, "reordered", _fake_entry(path, ["dog", "cat_face", "bird"]))
    with pytest.raises(ConfigError, match=r"'reordered'.*label 0 is 'cat_face' in the data but 'dog'"):
        load_real_task("reordered", processor)


# --- offline -----------------------------------------------------------------------------------------

def test_uncached_hub_id_offline_names_dataset_and_prefetch_command(processor):
    name = "driftlab-tests/never-published"
    with pytest.raises(ConfigError) as err:
        load_real_task(name, processor)
    message = str(err.value)
    assert "\n" not in message
    assert f"{name!r} is not in the local Hugging Face cache" in message
    assert f"datasets.load_dataset('{name}')" in message and "HF_DATASETS_CACHE" in message


def test_uncached_registry_key_names_key_and_hub_id(processor, monkeypatch):
    monkeypatch.setitem(REAL_DATASETS, "fake", _fake_entry("driftlab-tests/never-published", NAMES))
    with pytest.raises(ConfigError, match=r"'fake' is not in the local Hugging Face cache.*"
                                          r"load_dataset\('driftlab-tests/never-published'\)"):
        load_real_task("fake", processor)


def test_zero_shot_loading_holds_only_the_test_split(tmp_path, processor):
    path, _, test_items = _saved_dict(tmp_path)
    task = load_real_task(path, processor, test_only=True)
    assert len(task.train) == 0 and len(task.val) == 0
    assert sorted(_items(task.test.pixels)) == sorted(test_items)
    assert task.classes == ("cat face", "dog", "bird")
