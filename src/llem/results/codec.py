"""The one writer and the one reader of ``result.json`` (:class:`llem.results.schema.RunResult`).

The writer turns the dataclasses into JSON (None as null, keys in field order, ``other_fields``
merged back). The reader builds them again, checks the schema's major version and names the first
key that is missing or of the wrong shape. :func:`build` also turns a producer's plain mapping (an
engine's FLOPs block, a baseline record) into its block type.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from llem.errors import LlemError
from llem.results.io import write_json_atomic
from llem.results.schema import SCHEMA_VERSION, Record, RunResult

RESULT_FILE = "result.json"
T = TypeVar("T", bound=Record)


class ResultFormatError(LlemError):
    """A result file that this llem cannot read (another major schema version, missing keys, not JSON)."""

    exit_code = 2


def to_data(value: Any) -> Any:
    """The JSON-ready form of a result or any block of it."""
    if isinstance(value, Record):
        data = {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "other_fields"}
        data.update({k: v for k, v in value.other_fields.items() if k not in data})
        return data
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_data(v) for v in value]
    return value


def write_result(path: Path, result: RunResult) -> None:
    """Write ``result`` to ``path`` (atomically)."""
    write_json_atomic(path, to_data(result))


def read_result(path: Path) -> RunResult:
    """The :class:`RunResult` in ``path``; :class:`ResultFormatError` names the file and what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ResultFormatError(f"{path}: not a readable result file ({err})") from None
    try:
        return result_from_data(data)
    except ResultFormatError as err:
        raise ResultFormatError(f"{path}: {err}") from None


def result_from_data(data: Any) -> RunResult:
    """Build a :class:`RunResult` from parsed ``result.json`` data of this major schema version."""
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(version, str):
        raise ResultFormatError("no schema_version: not a llem result.json")
    major = SCHEMA_VERSION.split(".")[0]
    if version.split(".")[0] != major:
        raise ResultFormatError(
            f"schema version {version}; this llem reads {major}.x: use the llem version that wrote it"
        )
    return build(RunResult, data)


def build(cls: type[T], data: Any, where: str = "") -> T:
    """``cls`` from a mapping: nested blocks built, unknown keys kept in ``other_fields``."""
    if not isinstance(data, dict):
        raise ResultFormatError(f"{where or cls.__name__}: expected an object, found {type(data).__name__}")
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name == "other_fields":
            continue
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], _join(where, f.name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ResultFormatError(f"missing key {_join(where, f.name)}")
    other = {k: v for k, v in data.items() if k not in hints}
    return cls(**kwargs, other_fields=other)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _convert(tp: Any, value: Any, where: str) -> Any:
    """``value`` shaped as ``tp``: blocks built, containers walked, plain values as they are."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(options[0], value, where) if len(options) == 1 else value
    if isinstance(tp, type) and issubclass(tp, Record):
        return build(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ResultFormatError(f"{where}: expected a list, found {type(value).__name__}")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ResultFormatError(f"{where}: expected an object, found {type(value).__name__}")
        _, item = typing.get_args(tp)
        return {k: _convert(item, v, f"{where}.{k}") for k, v in value.items()}
    return value
