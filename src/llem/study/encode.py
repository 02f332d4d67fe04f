"""Experiment configs as Hydra override strings that round-trip exactly.

Strings are always single-quoted, so commas, ``=``, spaces, a leading ``~`` or ``+``, unicode and
words like ``null`` or ``1.0`` stay strings. Inside the quotes, Hydra treats a backslash as an
escape only before a quote (or at the end), and OmegaConf treats ``${`` as an interpolation, so
both are escaped. Lists and dicts use Hydra's bracket syntax with the same value encoding.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

# A run of backslashes followed by a quote, the end of the string, or an interpolation opener.
_BACKSLASHES_BEFORE_QUOTE = re.compile(r"(\\*)(')")
_BACKSLASHES_AT_END = re.compile(r"(\\+)$")
_BACKSLASHES_BEFORE_INTERPOLATION = re.compile(r"(\\*)(\$\{)")


def quote(text: str) -> str:
    """``text`` as a single-quoted Hydra string whose value (after OmegaConf) is ``text``."""
    text = _BACKSLASHES_BEFORE_INTERPOLATION.sub(lambda m: "\\" * (2 * len(m.group(1)) + 1) + m.group(2), text)
    text = _BACKSLASHES_BEFORE_QUOTE.sub(lambda m: "\\" * (2 * len(m.group(1))) + "\\'", text)
    text = _BACKSLASHES_AT_END.sub(lambda m: "\\" * (2 * len(m.group(1))), text)
    return f"'{text}'"


def encode_value(value: Any) -> str:
    """A value in Hydra's override grammar."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Mapping):
        items = ",".join(f"{_key(k)}:{encode_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(encode_value(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} {value!r} as a Hydra override")


def _key(key: Any) -> str:
    key = str(key)
    if re.fullmatch(r"[A-Za-z_][\w-]*", key):
        return key
    raise ValueError(f"dict key {key!r} cannot be written in a Hydra override (use identifier-like keys)")


def encode_override(path: str, value: Any) -> str:
    """``path=value`` for one dotted path."""
    return f"{path}={encode_value(value)}"


def leaves(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted path, value)`` of every leaf of nested sections (free-form dicts stay whole)."""
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value and not _free_form(path):
            out += leaves(value, path)
        else:
            out.append((path, value))
    return out


# Fields whose value is a free-form mapping (set as a whole, not key by key).
FREE_FORM_FIELDS = ("passthrough_kwargs", "transformers.max_memory", "vllm.engine.compilation_config")


def _free_form(path: str) -> bool:
    return path in FREE_FORM_FIELDS
