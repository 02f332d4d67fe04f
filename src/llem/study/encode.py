"""Experiment configs as Hydra override strings that round-trip exactly.

Strings are always single-quoted, so commas, ``=``, spaces, a leading ``~`` or ``+``, unicode and
words like ``null`` or ``1.0`` stay strings. Inside the quotes, Hydra treats a backslash as an
escape only before a quote (or at the end), and OmegaConf treats ``${`` as an interpolation, so
both are escaped. Lists and dicts use Hydra's bracket syntax with the same value encoding.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from typing import Any

from llem.errors import ConfigError

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
    """A value in Hydra's override grammar; mapping keys must be expressible (:func:`dict_key`)."""
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
        items = []
        for k, v in value.items():
            key = dict_key(k)
            if key is None:
                raise ConfigError(f"mapping key {str(k)!r}: {_UNWRITABLE}")
            items.append(f"{key}:{encode_value(v)}")
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(encode_value(v) for v in value) + "]"
    raise ConfigError(f"{type(value).__name__} {value!r} cannot be written as a Hydra override")


_UNWRITABLE = (
    "Hydra's override grammar cannot write this key (keys are ASCII letters, digits and "
    "_ - / + . $ % * @ ? | : = , ( ) [ ] { } \\ and spaces, and not a lone number, true, false or null)"
)
# Characters Hydra reads literally in a dict key, and those it reads only behind a backslash.
_PLAIN_KEY_CHAR = re.compile(r"[A-Za-z0-9_\-/+.$%*@?|]")
_ESCAPED_KEY_CHARS = "\\()[]{}:=, \t"
# One segment of a dotted override key (Hydra's KEY_SPECIAL or INT_UNSIGNED).
_KEY_SEGMENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*|0|[1-9](_?[0-9])*")


@functools.cache
def dict_key(key: Any) -> str | None:
    """``key`` as Hydra writes a dict key that reads back as the same text, or None where its
    grammar cannot (characters outside its set, or a key that reads as a number, bool or null)."""
    text = str(key)
    if not text or not all(_PLAIN_KEY_CHAR.fullmatch(c) or c in _ESCAPED_KEY_CHARS for c in text):
        return None
    written = "".join("\\" + c if c in _ESCAPED_KEY_CHARS else c for c in text)
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_override(f"k={{{written}:0}}").value()
    except HydraException:
        return None
    return written if list(parsed) == [text] else None


def _inline(value: Any) -> bool:
    """Whether every mapping key inside ``value`` can be written in Hydra's dict syntax."""
    if isinstance(value, Mapping):
        return all(dict_key(k) is not None and _inline(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_inline(v) for v in value)
    return True


def encode_mapping(path: str, mapping: Mapping[str, Any]) -> list[str]:
    """Overrides that set the free-form mapping at ``path`` to exactly ``mapping``.

    ``++`` sets it whole (a free-form mapping has no schema keys, so Hydra's struct check would
    refuse a plain override). A key its dict syntax cannot write (``"0"`` of ``max_memory``, which
    would read as the number 0) follows as ``++path.key=value``, where the dotted path keeps text.
    """
    inline = {k: v for k, v in mapping.items() if dict_key(k) is not None and _inline(v)}
    out = [f"++{path}={encode_value(inline)}"]
    for key, value in mapping.items():
        if key in inline:
            continue
        if not _KEY_SEGMENT.fullmatch(str(key)):
            raise ConfigError(f"{path}: key {str(key)!r}: {_UNWRITABLE}")
        if isinstance(value, Mapping):
            out += encode_mapping(f"{path}.{key}", value)
        else:
            out.append(f"++{path}.{key}={encode_value(value)}")
    return out


def encode_override(path: str, value: Any) -> str:
    """``path=value`` for one dotted path."""
    try:
        return f"{path}={encode_value(value)}"
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err


def encode_overrides(path: str, value: Any) -> list[str]:
    """The overrides that set ``path`` to ``value``: one, or several for a free-form mapping."""
    if isinstance(value, Mapping) and path in FREE_FORM_FIELDS:
        return encode_mapping(path, value)
    return [encode_override(path, value)]


def leaves(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted path, value)`` of every leaf of nested sections (free-form dicts stay whole)."""
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value and path not in FREE_FORM_FIELDS:
            out += leaves(value, path)
        else:
            out.append((path, value))
    return out


# Fields whose value is a free-form mapping (set as a whole, not key by key).
FREE_FORM_FIELDS = ("passthrough_kwargs", "transformers.max_memory", "vllm.engine.compilation_config")
