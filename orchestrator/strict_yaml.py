"""Strict YAML for sweep specs: UTF-8 text, no duplicate keys, bounded alias expansion.

    load_yaml(path) -> the document (safe types only), or SpecError naming the file

`yaml.safe_load` keeps the last of two equal keys without a word (a typo'd second `lr:`
silently wins), and expands aliases lazily: a "billion laughs" document loads in
microseconds and explodes later, when the grid is expanded or the spec is logged. Here
the node graph is composed first and its fully expanded size counted (linear in the graph,
memoised per node) before anything is constructed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_NODES = 100_000  # a spec expanding past this many YAML nodes (through aliases) is refused
MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlError(ValueError):
    """A spec file that is not strict YAML; the message is one line naming the file."""


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: set = set()
            for key_node, _ in node.value:
                if key_node.tag == MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise YamlError(f"duplicate key {key_node.value!r} (line {key_node.start_mark.line + 1})")
                seen.add(key)
        return super().construct_mapping(node, deep)


def _expanded_size(node, sizes: dict[int, int], active: set[int]) -> int:
    """Nodes in the document with every alias expanded; memoised, so linear in the graph."""
    ident = id(node)
    if ident in sizes:
        return sizes[ident]
    if ident in active:
        raise YamlError("an alias refers to itself (recursive structure)")
    active.add(ident)
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    total = 1
    for child in children:
        total += _expanded_size(child, sizes, active)
        if total > MAX_NODES:
            break
    active.discard(ident)
    sizes[ident] = total
    return total


def parse_yaml(text: str) -> Any:
    """A YAML document with strict keys and bounded aliases; YamlError (one line) otherwise."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}, set()) > MAX_NODES:
            raise YamlError(f"expands to more than {MAX_NODES} values through aliases (an alias bomb?)")
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise YamlError(f"is not valid YAML{where}: {getattr(err, 'problem', None) or err}") from None
    except RecursionError:
        raise YamlError("is nested too deeply") from None
    finally:
        loader.dispose()


def read_text(path: Path) -> str:
    """The file as UTF-8 text; YamlError naming the first undecodable byte otherwise."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise YamlError(f"is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})") from None
