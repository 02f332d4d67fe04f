"""The study report: ``report.html``, one self-contained page per study, sweep, run or comparison of them
(``llem report PATH...``; written after every ``llem run`` and ``-m`` sweep)."""

from __future__ import annotations

from llem.report.build import build_report, write_report_quietly

__all__ = ["build_report", "write_report_quietly"]
