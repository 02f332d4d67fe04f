"""Atomic file writes: every result file is written to a temporary name, then renamed.

Files get the mode a plain ``open()`` would give them (0666 less the umask), so colleagues can read
results on shared storage when the umask allows it.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import secrets
from pathlib import Path
from typing import IO, Any

from llem.errors import ConfigError

log = logging.getLogger("llem.results")


def _open_temp(path: Path, mode: str) -> tuple[IO[Any], Path]:
    """A new, empty temporary file beside ``path``, created 0666 less the umask (as ``open()`` does)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue  # a name another writer holds: draw another
        return os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {})), tmp


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one."""
    fh, tmp = _open_temp(path, "w")
    try:
        with fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_parquet_atomic(path: Path, table: Any) -> None:
    """Write a pandas DataFrame to ``path`` as Parquet (no index), atomically."""
    fh, tmp = _open_temp(path, "wb")
    try:
        with fh:
            table.to_parquet(fh, index=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically.

    JSON has no NaN or infinity: such a number is written as null, with a warning naming its key,
    and any other value JSON has no form for is written as its text (``str``).
    """
    text = json.dumps(json_safe(data, path.name), indent=2, sort_keys=False, default=str, allow_nan=False)
    write_text_atomic(path, text + "\n")


def json_safe(data: Any, where: str) -> Any:
    """``data`` with every NaN or infinity replaced by None (logged with its key), and numpy-style
    number scalars turned into plain ``int`` and ``float``; ``where`` names the data in the warning."""
    if isinstance(data, dict):
        return {key: json_safe(value, f"{where}.{key}") for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(value, f"{where}[{i}]") for i, value in enumerate(data)]
    if isinstance(data, bool) or data is None or isinstance(data, str):
        return data
    if isinstance(data, numbers.Integral):
        return int(data)
    if isinstance(data, numbers.Real):
        number = float(data)
        if math.isfinite(number):
            return number
        log.warning("%s is %s, which JSON cannot hold: written as null", where, number)
        return None
    return data


def read_json(path: Path) -> Any:
    """The JSON document in ``path``. A missing file raises :class:`FileNotFoundError` (callers that
    expect one check first); a file that cannot be read or is not JSON raises :class:`ConfigError`."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err}); the folder is damaged") from err
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise ConfigError(f"{path}: not valid JSON ({err}); the file is damaged") from err
