"""Reading a user's YAML file safely: any bytes, any structure, one clear :class:`ConfigError`.

The file must be a regular UTF-8 file of at most :data:`MAX_FILE_BYTES`. The loader is PyYAML's
safe loader with limits: duplicate keys are refused (naming the key and its lines), nesting deeper
than :data:`MAX_DEPTH`, an alias inside the node it names, and more than ``max_values`` values
(aliases counted as what they expand to) stop the load. Values must be plain data (mappings, lists,
text, numbers, booleans, null): dates, ``!!binary``, sets and pairs are refused with their key.
"""

from __future__ import annotations

import datetime
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

from llem.errors import ConfigError

MAX_FILE_BYTES = 16 * 2**20  # study, experiment and user config files are a few kB; this bounds what is read
MAX_DEPTH = 64  # levels of nested mappings and lists; a study needs fewer than ten
MERGE_TAG = "tag:yaml.org,2002:merge"


class LimitedSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys, deep nesting, self-referencing aliases
    and documents whose expanded size exceeds ``max_values`` nodes."""

    max_values = 100_000  # replaced per load by :func:`load_yaml_text`
    raise_hint = ""  # how to raise max_values, appended to the message

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._composed = 0
        self._open_anchors: set[str] = set()
        self._expanded: dict[int, int] = {}  # id(node) -> nodes it stands for, aliases expanded

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            if event.anchor in self._open_anchors:
                raise ComposerError(
                    None, None, f"alias *{event.anchor} is inside the node it names (a loop)", event.start_mark
                )
            return super().compose_node(parent, index)
        event = self.peek_event()
        self._depth += 1
        self._composed += 1
        if self._depth > MAX_DEPTH:
            raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        self._check_size(self._composed, event.start_mark)
        if event.anchor is not None:
            self._open_anchors.add(event.anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open_anchors.discard(event.anchor)
        self._expanded[id(node)] = 1 + sum(self._expanded.get(id(child), 1) for child in _children(node))
        self._check_size(self._expanded[id(node)], event.start_mark)
        return node

    def _check_size(self, count: int, mark: yaml.Mark) -> None:
        if count > self.max_values:
            raise ComposerError(
                None,
                None,
                f"more than {self.max_values:,} values (aliases counted as what they repeat); {self.raise_hint}",
                mark,
            )

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, MappingNode):  # e.g. !!set or !!map on a scalar: the base class says so
            return super().construct_mapping(node, deep=deep)
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                seen = key in first_line
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if seen:
                raise ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first set on line {first_line[key]}); keep one",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _children(node: Node) -> Iterator[Node]:
    if isinstance(node, SequenceNode):
        yield from node.value
    elif isinstance(node, MappingNode):
        for key, value in node.value:
            yield key
            yield value


def read_text(path: Path) -> str:
    """The UTF-8 text of a regular file; FIFOs, folders and devices are refused without blocking."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: no such file") from err
    except IsADirectoryError as err:
        raise ConfigError(f"{path}: is a folder; give a YAML file") from err
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: cannot open: {getattr(err, 'strerror', None) or err}") from err
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError(f"{path}: is a folder; give a YAML file")
        if not stat.S_ISREG(mode):
            raise ConfigError(f"{path}: not a regular file (a pipe, socket or device); give a YAML file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror or err}") from err
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB; a study or config file is a few kB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); save it as UTF-8"
        ) from err


def load_yaml_text(text: str, where: str, max_values: int, raise_hint: str = "") -> Any:
    """The plain data of one YAML document; every problem is a :class:`ConfigError` naming ``where``.
    ``raise_hint`` tells how to raise ``max_values`` when a document is larger."""
    loader_class = type("Loader", (LimitedSafeLoader,), {"max_values": max_values, "raise_hint": raise_hint})
    try:
        loader = loader_class(text)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{where}: not valid YAML{line}: {problem}") from err
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as err:
        # PyYAML's constructors raise these for an explicit tag on text it cannot read
        # (!!int abc, !!bool maybe, !!timestamp now): the input is at fault, not llem.
        raise ConfigError(f"{where}: a value cannot be read as its YAML tag (!!int, !!float, ...) says: {err}") from err
    check_plain(data, where)
    return data


def check_plain(data: Any, where: str, key: str = "") -> None:
    """Refuse anything but mappings, lists, text, numbers, booleans and null; text must be valid
    Unicode without NUL characters. The message names the dotted key."""
    shown = key or "the top level"
    if isinstance(data, dict):
        for k, v in data.items():
            path = f"{key}.{k}" if key else str(k)
            check_plain(k, where, f"the key {path}")
            check_plain(v, where, path)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            check_plain(item, where, f"{key}[{index}]")
    elif isinstance(data, str):
        _check_text(data, where, shown)
    elif isinstance(data, (datetime.date, datetime.datetime)):
        raise ConfigError(f"{where}: {shown}: {data} reads as a date; quote it to make it text")
    elif isinstance(data, bytes):
        raise ConfigError(f"{where}: {shown}: binary (!!binary) values are not accepted; give text")
    elif not isinstance(data, (int, float, bool, type(None))):
        raise ConfigError(f"{where}: {shown}: a YAML {type(data).__name__} is not accepted; use a mapping or a list")


def _check_text(text: str, where: str, key: str) -> None:
    if "\x00" in text:
        raise ConfigError(f"{where}: {key}: contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ConfigError(f"{where}: {key}: contains an unpaired surrogate (\\u{ord(text[err.start]):04x})") from err
