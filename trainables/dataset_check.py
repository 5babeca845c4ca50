"""Pre-flight check of a local dataset path, run before anything trains or any sweep starts.

    check_local_dataset("dataset", "/data/pets_folder")   # ConfigError (one line) or None

A path that does not exist, an image folder with no images, with one class only, or with
an image PIL cannot read would otherwise fail inside every trial (after Ray and MLflow
started) with a `datasets` or PIL traceback. Hub ids and registry names are left to the
loader; parquet and `save_to_disk` directories are checked by the loader too.

Cost: every image's header and checksum are read once (PIL `verify`, no decoding), about
0.1 ms per small file; the result is cached per (path, modification time) in the process.
"""

from __future__ import annotations

import functools
from pathlib import Path

from trainables.errors import ConfigError

SPLIT_DIRS = ("train", "test", "validation", "val", "valid", "dev")


def looks_like_path(name: str) -> bool:
    """A value that can only mean a filesystem path (hub ids are `org/name`)."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


def check_local_dataset(key: str, name: str) -> None:
    """ConfigError naming `key` when `name` is a local dataset path that cannot be trained on."""
    path = Path(name).expanduser()
    if not path.exists():
        if looks_like_path(name):
            raise ConfigError(f"{key}: {name!r} does not exist (a local image folder, parquet file or "
                              "save_to_disk directory was expected)")
        return
    if path.is_dir() and _is_image_folder(path):
        _check_image_folder(key, str(path.resolve()), path.stat().st_mtime_ns)


def _is_image_folder(path: Path) -> bool:
    saved = (path / "dataset_dict.json").exists() or (path / "state.json").exists()
    return not saved and not any(path.rglob("*.parquet"))


@functools.lru_cache(maxsize=16)
def _check_image_folder(key: str, folder: str, _mtime: int) -> None:
    from PIL import Image

    extensions = {ext.lower() for ext in Image.registered_extensions()}
    images = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in extensions)
    if not images:
        raise ConfigError(f"{key}: {folder!r} holds no images; an image folder needs one sub-folder per class "
                          "with image files in it (e.g. cat/1.png, dog/1.png)")
    classes = {p.parent.name for p in images if p.parent.name not in SPLIT_DIRS and str(p.parent) != folder}
    if len(classes) < 2:
        found = f"one class ({next(iter(classes))!r})" if classes else "no class sub-folders"
        raise ConfigError(f"{key}: {folder!r} has {found}; classification needs at least 2 class sub-folders "
                          "with images in each")
    for image in images:
        try:
            with Image.open(image) as opened:
                opened.verify()
        except Exception as err:  # PIL raises OSError, SyntaxError, ValueError... for broken files
            raise ConfigError(f"{key}: {str(image)!r} is not a readable image ({type(err).__name__}: "
                              f"{str(err).splitlines()[0][:120] if str(err) else 'corrupt'}); fix or remove it") from None
