"""Chart data as a report writes it: numbers to 4 significant digits."""

from __future__ import annotations

import pandas as pd


def significant(value: float) -> float | None:
    """``value`` to 4 significant digits (what a chart can show, in a third of the JSON), ``None`` for NaN."""
    return None if pd.isna(value) else float(f"{value:.4g}")
