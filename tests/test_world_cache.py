"""The rendered-world disk cache: the same bytes as rendering, read back, re-rendered when damaged,
and a world even where nothing can be written."""

from __future__ import annotations

import numpy as np
import pytest

from trainables import world, world_cache


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path


def same(a: world.World, b: world.World) -> bool:
    return (np.array_equal(a.images, b.images) and np.array_equal(a.boxes, b.boxes) and a.captions == b.captions
            and all(np.array_equal(a.labels[k], b.labels[k]) for k in world.ATTRIBUTES))


def test_the_cached_world_is_the_rendered_world_and_is_read_back_not_rerendered(cache_home, monkeypatch):
    rendered = world.generate(20, seed=5)
    first = world_cache.load_world(20, seed=5)
    path = world_cache.cache_path(20, 5)
    assert path.is_file() and path.parent == cache_home / "driftlab" / "world"
    assert same(first, rendered)
    monkeypatch.setattr(world, "generate", lambda n, seed: pytest.fail("rendered again despite the cache"))
    again = world_cache.load_world(20, seed=5)
    assert same(again, rendered) and again.images.dtype == np.uint8 and again.boxes.dtype == np.float32
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_the_key_names_n_seed_and_the_world_code(cache_home):
    keys = {world_cache.cache_path(20, 5), world_cache.cache_path(21, 5), world_cache.cache_path(20, 6)}
    assert len(keys) == 3
    assert world_cache._code_key() in world_cache.cache_path(20, 5).name


def test_a_damaged_file_is_rendered_again_and_replaced(cache_home):
    path = world_cache.cache_path(12, 1)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz")
    assert same(world_cache.load_world(12, 1), world.generate(12, 1))
    assert same(world_cache._read(path), world.generate(12, 1))


def test_a_cache_that_cannot_be_written_still_gives_the_world(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # its driftlab/world can never be created
    assert same(world_cache.load_world(12, 2), world.generate(12, 2))
