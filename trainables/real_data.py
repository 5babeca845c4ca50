"""Real datasets through `datasets`: a registry of named tasks, hub ids, image folders, parquet, saved datasets.

`load_real_task(name, image_processor)` accepts
  * a registry key (`eurosat`, `oxford_pets`, `cifar100`): a pinned hub mirror with clean class names
    and CLIP's zero-shot templates;
  * any `datasets` hub id with an image column and a label column;
  * a local image folder (one sub-folder per class, optionally under train/ and test/ folders);
  * a local parquet file or a directory of parquet files (split names taken from the file names);
  * a directory written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk`.

Every source ends up as the same `TaskData` the embedded tasks produce: train / val / test splits of
uint8 [N, 3, H, W] pixels, already resized and centre-cropped by the model's own image processor.

Splits. A source's own val split is used when it has one (validation / val / valid / dev); otherwise
val is carved from train: 10% of every class, seed 0. Val is never taken from test, so test numbers
stay comparable with published ones. A source with no test split (an image folder with a single
split, a single parquet file) gets test carved from train first (20% of every class, seed 0), and
val is then carved from what remains. Carving is deterministic, so every trial sees the same splits.

Offline use. Nothing is downloaded at import time, and this module never imports `datasets` until a
real task is loaded. Loading a hub dataset that is not in the local cache while offline (or without
network) raises a one-line `ConfigError` naming the dataset and the command that pre-fetches it.

Memory. Splits are held in memory as uint8 tensors. That is small for EuroSAT (27k x 3x224x224 bytes
~ 4 GB at 224 px) and Pets (7.3k ~ 1.1 GB), but CIFAR-100's train split at 224 px is
50k x 3 x 224 x 224 bytes ~ 7.5 GB (10k test ~ 1.5 GB more). Acceptable on the 24 GB machines for now;
a streaming `Split` backed by the cached Arrow file is the way out if bigger datasets are added. The
tensors are filled chunk by chunk from the Arrow cache so the peak is the final tensors plus one chunk.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainables.errors import ConfigError
from trainables.splits import Split, TaskData, balanced_indices

DEFAULT_TEMPLATES = ("a photo of a {}.",)
VAL_FRACTION = 0.10  # of every class of train, when the source has no val split
TEST_FRACTION = 0.20  # of every class of train, when the source has no test split
CARVE_SEED = 0
PREPROCESS_VERSION = 1  # bump when the preprocessing changes, so on-disk caches are not reused
MAP_BATCH_SIZE = 256  # images per `Dataset.map` batch: ~40 MB of uint8 pixels at 224 px
TENSOR_CHUNK = 2048  # rows copied from Arrow into the split tensor at a time

TRAIN_NAMES = ("train",)
VAL_NAMES = ("validation", "val", "valid", "dev")
TEST_NAMES = ("test",)
LABEL_NAMES = ("label", "labels", "fine_label")
IMAGE_NAMES = ("image", "img")


@dataclass(frozen=True)
class RealDataset:
    """A registered real dataset: where it lives on the hub and how to prompt for its classes.

    `hub_label_names` is the mirror's own ClassLabel list, in its label order; it is checked against
    the loaded data so that a mirror that reorders (or renames) labels fails loudly instead of silently
    mislabelling every zero-shot prompt. `classes` are the clean names used in prompts, same order.
    """

    hub_id: str
    image_column: str
    label_column: str
    train_split: str
    test_split: str
    val_split: str | None
    hub_label_names: tuple[str, ...]
    classes: tuple[str, ...]
    templates: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.hub_label_names) != len(self.classes):
            raise ValueError(f"{self.hub_id}: {len(self.hub_label_names)} hub labels but {len(self.classes)} classes")


# The 18 prompt templates CLIP uses for CIFAR-10/100 zero-shot evaluation.
CIFAR_TEMPLATES = (
    "a photo of a {}.", "a blurry photo of a {}.", "a black and white photo of a {}.",
    "a low contrast photo of a {}.", "a high contrast photo of a {}.", "a bad photo of a {}.",
    "a good photo of a {}.", "a photo of a small {}.", "a photo of a big {}.",
    "a photo of the {}.", "a blurry photo of the {}.", "a black and white photo of the {}.",
    "a low contrast photo of the {}.", "a high contrast photo of the {}.", "a bad photo of the {}.",
    "a good photo of the {}.", "a photo of the small {}.", "a photo of the big {}.",
)

# Label order of `uoft-cs/cifar100` `fine_label` (the original CIFAR order), with CLIP's clean names.
CIFAR100_CLASSES = (
    "apple", "aquarium fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn mower", "leopard", "lion", "lizard", "lobster", "man", "maple tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak tree", "orange", "orchid", "otter", "palm tree", "pear", "pickup truck", "pine tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow tree", "wolf", "woman", "worm",
)
# The hub spells them with underscores and has the long-standing typo "cra" for crab.
CIFAR100_HUB_NAMES = tuple("cra" if c == "crab" else c.replace(" ", "_") for c in CIFAR100_CLASSES)

# Label order of `timm/eurosat-rgb` (the original EuroSAT folder order, alphabetical), with CLIP's names.
EUROSAT_HUB_NAMES = ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture",
                     "PermanentCrop", "Residential", "River", "SeaLake")
EUROSAT_CLASSES = (
    "annual crop land", "forest", "brushland or shrubland", "highway or road",
    "industrial buildings or commercial buildings", "pasture land", "permanent crop land",
    "residential buildings or homes or apartments", "river", "lake or sea",
)
EUROSAT_TEMPLATES = ("a centered satellite photo of {}.", "a centered satellite photo of a {}.",
                     "a centered satellite photo of the {}.")

# Label order of `timm/oxford-iiit-pet` (the original class ids 1..37, alphabetical), with CLIP's names.
PETS_CLASSES = (
    "Abyssinian", "American Bulldog", "American Pit Bull Terrier", "Basset Hound", "Beagle", "Bengal",
    "Birman", "Bombay", "Boxer", "British Shorthair", "Chihuahua", "Egyptian Mau", "English Cocker Spaniel",
    "English Setter", "German Shorthaired", "Great Pyrenees", "Havanese", "Japanese Chin", "Keeshond",
    "Leonberger", "Maine Coon", "Miniature Pinscher", "Newfoundland", "Persian", "Pomeranian", "Pug",
    "Ragdoll", "Russian Blue", "Saint Bernard", "Samoyed", "Scottish Terrier", "Shiba Inu", "Siamese",
    "Sphynx", "Staffordshire Bull Terrier", "Wheaten Terrier", "Yorkshire Terrier",
)
PETS_HUB_NAMES = tuple(c.lower().replace(" ", "_") for c in PETS_CLASSES)

REAL_DATASETS: dict[str, RealDataset] = {
    # timm's mirror carries the standard train/val/test split (16200/5400/5400) used in remote-sensing
    # benchmarks, so no carving is needed; its names are the original CamelCase folder names.
    "eurosat": RealDataset(
        hub_id="timm/eurosat-rgb", image_column="image", label_column="label",
        train_split="train", val_split="validation", test_split="test",
        hub_label_names=EUROSAT_HUB_NAMES, classes=EUROSAT_CLASSES, templates=EUROSAT_TEMPLATES),
    # The official trainval (3680) / test (3669) split; val is carved from train.
    "oxford_pets": RealDataset(
        hub_id="timm/oxford-iiit-pet", image_column="image", label_column="label",
        train_split="train", val_split=None, test_split="test",
        hub_label_names=PETS_HUB_NAMES, classes=PETS_CLASSES, templates=("a photo of a {}, a type of pet.",)),
    # 50000 train / 10000 test; val is carved from train.
    "cifar100": RealDataset(
        hub_id="uoft-cs/cifar100", image_column="img", label_column="fine_label",
        train_split="train", val_split=None, test_split="test",
        hub_label_names=CIFAR100_HUB_NAMES, classes=CIFAR100_CLASSES, templates=CIFAR_TEMPLATES),
}


def load_real_task(name: str, image_processor, test_only: bool = False) -> TaskData:
    """Load a registry key, hub id, image folder, parquet file/dir or saved dataset as a `TaskData`.

    test_only (zero-shot evaluation): when the source has its own test split, only that split is
    preprocessed and held (train and val come back empty), so e.g. CIFAR-100 as a zero-shot
    task costs its 10k test images, not its 50k train images.
    """
    key = name if name in REAL_DATASETS or not Path(name).exists() else str(Path(name).resolve())
    return _load_cached(key, processor_settings(image_processor), _Passenger(image_processor), test_only)


class _Passenger:
    """Carries the processor through `lru_cache` without being part of the key.

    The key is the dataset plus the processor's full settings (`processor_settings`): two processors
    with the same settings produce the same pixels, and a Ray actor running many trials then loads a
    task once; a processor that differs in anything (resampling, say) is a different key.
    """

    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other) -> bool:
        return isinstance(other, _Passenger)


def processor_settings(processor) -> str:
    """Everything an image processor does, as text: the cache key of what it produces."""
    return processor.to_json_string() if hasattr(processor, "to_json_string") else repr(processor)


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, settings: str, processor: _Passenger, test_only: bool = False) -> TaskData:
    entry = REAL_DATASETS.get(name)
    source = _open_source(name, entry.hub_id if entry else name)
    roles = _split_roles(name, source, entry)
    train = source[roles["train"]]
    image_col, label_col = _columns(name, train, entry)
    classes, label_map = _class_names(name, source, train, label_col, entry)
    if test_only and roles["test"] is not None:
        roles = {"test": roles["test"]}
    prepared = {role: _preprocess(source[split], image_col, label_col, processor.value, settings)
                for role, split in roles.items() if split is not None}
    if set(prepared) == {"test"}:
        test = _assemble_test_only(name, prepared["test"], label_col, label_map, len(classes))
        splits = {"train": test.subset([]), "val": test.subset([]), "test": test}
    else:
        splits = _assemble_splits(name, prepared, label_col, label_map, len(classes))
    templates = entry.templates if entry else DEFAULT_TEMPLATES
    # Random crops and flips keep the label for all of these (natural photos, satellite tiles).
    return TaskData(name, classes, templates, augment=True, **splits)


# --- opening a source -------------------------------------------------------------------------------

def _open_source(name: str, location: str):
    """A `DatasetDict` for a local path or hub id; hub failures become one-line ConfigErrors."""
    import datasets

    path = Path(location)
    if path.exists():
        try:
            return _as_dict(_open_local(path))
        except ConfigError:
            raise
        except Exception as err:  # datasets' EmptyDatasetError, an unreadable parquet file, ...
            raise ConfigError(f"dataset: {name!r} could not be read ({type(err).__name__}: "
                              f"{(str(err).strip().splitlines() or [''])[0][:200]})") from err
    try:
        return _as_dict(datasets.load_dataset(location))
    except ConfigError:
        raise
    except Exception as err:  # offline / not cached / no network / not on the hub: all one message
        raise ConfigError(_not_cached_message(name, location, err)) from err


def _open_local(path: Path):
    import datasets

    if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
        return datasets.load_from_disk(str(path))
    if path.is_file() and path.suffix == ".parquet":
        return datasets.load_dataset("parquet", data_files=str(path))
    if path.is_dir() and any(path.rglob("*.parquet")):
        # data_dir lets `datasets` infer splits from file names (train-*.parquet, test.parquet, ...).
        return datasets.load_dataset("parquet", data_dir=str(path))
    if path.is_dir():
        return datasets.load_dataset("imagefolder", data_dir=str(path))
    raise ConfigError(f"dataset: {str(path)!r} is neither a directory (image folder, parquet files, "
                      "save_to_disk output) nor a .parquet file")


def _as_dict(loaded):
    import datasets

    # A single saved `Dataset` (not a dict) is a source with only a train split.
    return loaded if isinstance(loaded, datasets.DatasetDict) else datasets.DatasetDict({"train": loaded})


def _not_cached_message(name: str, hub_id: str, err: Exception) -> str:
    import datasets

    cause = (str(err).strip().splitlines() or [""])[0][:200]
    return (f"dataset: {name!r} is not in the local Hugging Face cache ({datasets.config.HF_DATASETS_CACHE}), "
            "is no local path, "
            f"and could not be fetched ({type(err).__name__}: {cause}); pre-fetch it on a machine with internet "
            f"with `python -c \"import datasets; datasets.load_dataset('{hub_id}')\"` and copy the cache here "
            "(its location is HF_HOME or HF_DATASETS_CACHE)")


# --- splits and columns -----------------------------------------------------------------------------

def _split_roles(name: str, source, entry: RealDataset | None) -> dict[str, str | None]:
    """Map train/val/test to the source's split names; None = carve it from train."""
    available = list(source.keys())
    if entry is not None:
        roles = {"train": entry.train_split, "val": entry.val_split, "test": entry.test_split}
        missing = [s for s in roles.values() if s is not None and s not in available]
        if missing:
            raise ConfigError(f"dataset: {name!r} ({entry.hub_id}) has no split {missing[0]!r}; it has {available}")
        return roles
    train = _first_present(TRAIN_NAMES, available)
    if train is None and len(available) == 1:
        train = available[0]  # e.g. a parquet file whose single split is not called train
    if train is None:
        raise ConfigError(f"dataset: {name!r} has no train split; it has {available}")
    return {"train": train, "val": _first_present(VAL_NAMES, available), "test": _first_present(TEST_NAMES, available)}


def _first_present(candidates: tuple[str, ...], available: list[str]) -> str | None:
    return next((c for c in candidates if c in available), None)


def _columns(name: str, dataset, entry: RealDataset | None) -> tuple[str, str]:
    """(image column, label column), from the registry or detected from the features."""
    import datasets

    features = dataset.features
    if entry is not None:
        image_col, label_col = entry.image_column, entry.label_column
    else:
        image_col = _pick([c for c, f in features.items() if isinstance(f, datasets.Image)], IMAGE_NAMES)
        class_labels = [c for c, f in features.items() if isinstance(f, datasets.ClassLabel)]
        label_col = _pick(class_labels, LABEL_NAMES) or _first_present(LABEL_NAMES, list(features))
    if image_col not in features or label_col not in features:
        raise ConfigError(f"dataset: {name!r} needs an image column (datasets.Image feature) and a label column "
                          f"(ClassLabel, or named {'/'.join(LABEL_NAMES)}); it has "
                          + ", ".join(f"{c} ({type(f).__name__})" for c, f in features.items()))
    return image_col, label_col


def _pick(columns: list[str], preferred: tuple[str, ...]) -> str | None:
    """The preferred name among candidate columns, else the first candidate (None if there are none)."""
    return _first_present(preferred, columns) or (columns[0] if columns else None)


def _normalise(label: str) -> str:
    return " ".join(str(label).replace("_", " ").lower().split())


def _class_names(name: str, source, train, label_col: str, entry: RealDataset | None):
    """(class names, mapping raw label value -> index, or None when labels already are indices)."""
    import datasets

    feature = train.features[label_col]
    if isinstance(feature, datasets.ClassLabel):
        if entry is not None:
            check_label_names(name, entry, feature.names)
            return entry.classes, None
        return tuple(n.replace("_", " ") for n in feature.names), None
    if entry is not None:
        return entry.classes, None  # a plain int column on a registered mirror: trust the documented order
    # No ClassLabel: class names are the sorted unique values (numbers sorted as numbers), as strings.
    values = set()
    for split in source.values():
        values.update(np.asarray(split[label_col]).tolist())
    ordered = sorted(values, key=lambda v: (isinstance(v, str), v))
    return tuple(str(v) for v in ordered), {v: i for i, v in enumerate(ordered)}


def check_label_names(name: str, entry: RealDataset, loaded: list[str]) -> None:
    """Fail when a loaded ClassLabel's names are not the registry's (case and underscores ignored)."""
    expected = [_normalise(n) for n in entry.hub_label_names]
    got = [_normalise(n) for n in loaded]
    if got == expected:
        return
    if len(got) != len(expected):
        detail = f"{len(got)} labels on the hub but {len(expected)} in the registry"
    else:
        i = next(i for i, (g, e) in enumerate(zip(got, expected)) if g != e)
        detail = f"label {i} is {loaded[i]!r} in the data but {entry.hub_label_names[i]!r} in the registry"
    raise ConfigError(f"dataset: {name!r} ({entry.hub_id}) label names do not match REAL_DATASETS ({detail}); "
                      "the mirror's label order differs: fix the registry entry or load it by hub id")


# --- preprocessing ----------------------------------------------------------------------------------

def _preprocess(dataset, image_col: str, label_col: str, processor, settings: str):
    """Resize + centre-crop every image once with the model's processor; cached on disk by `datasets`.

    The explicit fingerprint (source fingerprint + the processor's full settings) makes the cache file
    name stable, so a later trial, even in a new process, reuses the Arrow file instead of redoing it.
    """
    import datasets

    crop_h, crop_w = int(processor.crop_size["height"]), int(processor.crop_size["width"])
    features = datasets.Features({"pixels": datasets.Array3D((3, crop_h, crop_w), "uint8"),
                                  label_col: dataset.features[label_col]})

    def to_pixels(batch):
        images = [image.convert("RGB") for image in batch[image_col]]  # greyscale / RGBA / palette images
        out = processor(images=images, return_tensors="pt", do_normalize=False, do_rescale=False)
        pixels = torch.as_tensor(out["pixel_values"]).float().round().clamp(0, 255).to(torch.uint8)
        return {"pixels": pixels.numpy()}

    try:
        return dataset.map(to_pixels, batched=True, batch_size=MAP_BATCH_SIZE, features=features,
                           remove_columns=[c for c in dataset.column_names if c != label_col],
                           new_fingerprint=_fingerprint(dataset, settings, image_col, label_col),
                           desc="preprocessing images")
    except (OSError, SyntaxError) as err:  # PIL: UnidentifiedImageError, truncated files
        raise ConfigError(f"dataset: an image could not be read ({type(err).__name__}: "
                          f"{(str(err).strip().splitlines() or [''])[0][:200]})") from err


def _fingerprint(dataset, settings: str, image_col: str, label_col: str) -> str:
    text = json.dumps([dataset._fingerprint, settings, image_col, label_col, PREPROCESS_VERSION])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --- assembling train / val / test --------------------------------------------------------------------

def _assemble_splits(name: str, prepared: dict, label_col: str, label_map: dict | None,
                     n_classes: int) -> dict[str, Split]:
    """Carve any missing test/val from train (never from test), then turn each split into tensors."""
    labels = {role: _labels(name, ds, label_col, label_map, n_classes) for role, ds in prepared.items()}
    train_rows = np.arange(len(labels["train"]))
    rows = {}
    for role, fraction in (("test", TEST_FRACTION), ("val", VAL_FRACTION)):
        if role not in prepared:
            carved = train_rows[balanced_indices(labels["train"][train_rows], per_class_fraction=fraction,
                                                 seed=CARVE_SEED)]
            rows[role] = carved
            train_rows = np.setdiff1d(train_rows, carved)
    if rows:
        rows["train"] = train_rows
    splits = {}
    for role in ("train", "val", "test"):
        source = "train" if role in rows else role
        dataset, source_labels = prepared[source], labels[source]
        if role in rows:
            dataset, source_labels = dataset.select(rows[role]), source_labels[rows[role]]
        splits[role] = Split(pixels=_pixels(dataset), labels=torch.from_numpy(source_labels).long(), boxes=None)
    return splits


def _assemble_test_only(name: str, dataset, label_col: str, label_map: dict | None, n_classes: int) -> Split:
    labels = _labels(name, dataset, label_col, label_map, n_classes)
    return Split(pixels=_pixels(dataset), labels=torch.from_numpy(labels).long(), boxes=None)


def _labels(name: str, dataset, label_col: str, label_map: dict | None, n_classes: int) -> np.ndarray:
    raw = np.asarray(dataset[label_col])
    labels = raw.astype(np.int64) if label_map is None else np.array([label_map[v] for v in raw.tolist()],
                                                                      dtype=np.int64)
    bad = labels[(labels < 0) | (labels >= n_classes)]
    if len(bad):
        raise ConfigError(f"dataset: {name!r} has label {int(bad[0])} outside 0..{n_classes - 1} in column "
                          f"{label_col!r} (unlabelled rows are marked -1 on some hub datasets)")
    return labels


def _pixels(dataset) -> torch.Tensor:
    """uint8 [N, 3, H, W] from the preprocessed Arrow data, filled chunk by chunk to bound peak memory."""
    shape = dataset.features["pixels"].shape
    out = torch.empty((len(dataset), *shape), dtype=torch.uint8)
    # The torch formatter casts integers to int64 by default; ask for uint8 to avoid an 8x blow-up.
    formatted = dataset.with_format("torch", columns=["pixels"], dtype=torch.uint8)
    for start in range(0, len(dataset), TENSOR_CHUNK):
        out[start:start + TENSOR_CHUNK] = formatted[start:start + TENSOR_CHUNK]["pixels"]
    return out
