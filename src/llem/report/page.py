"""Charts as HTML: Altair (Vega-Lite) specs drawn by vega-embed, whose bundle (vega, vega-lite and
vega-embed, about 0.9 MB, from vl-convert) the page holds inline once (in its head), so that it opens
from ``file://`` with no network.

Making the bundle takes vl-convert about 2 s, so it is kept under llem's cache
(``<cache>/report/vega-embed-<vl-convert version>-<Vega-Lite version>.js``); a cache that cannot be
written only costs that time again, and a damaged one is made again.
"""

from __future__ import annotations

import functools
import json

import altair as alt
import vl_convert

from llem.errors import LlemError
from llem.paths import cache_dir
from llem.results.io import write_text_atomic

EMBED_OPTIONS = {"actions": False, "renderer": "svg"}  # svg: text and marks stay in the DOM (selectable)
BUNDLE_DEFINES = "window.vegaEmbed="  # what every chart's script calls: a bundle without it is damaged


class Page:
    """Numbers each chart's ``<div>``."""

    def __init__(self) -> None:
        self.count = 0  # charts so far

    def figure(self, chart: alt.TopLevelMixin, css_class: str = "chart") -> str:
        """The chart's ``<div>`` and the vega-embed call that draws it into the div."""
        # not validated against the Vega-Lite schema here (seconds for a large study): the tests do that
        with alt.data_transformers.disable_max_rows():  # sizes are bounded where the data is made
            spec = chart.to_dict(validate=False)
        # "<" escaped: no text in the data (a reason, a label) can close the script
        spec_js = json.dumps(spec, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")
        div = f"chart-{self.count}"
        html = (
            f"<div id='{div}' class='{css_class}'></div><script>vegaEmbed('#{div}', {spec_js}, "
            f"{json.dumps(EMBED_OPTIONS)}).catch(console.error)</script>"
        )
        self.count += 1
        return html


@functools.cache
def vega_bundle() -> str:
    """vega-embed with vega and the Vega-Lite Altair writes, as one script defining ``window.vegaEmbed``;
    a :class:`LlemError` when the installed vl-convert does not know that Vega-Lite."""
    version = ".".join(alt.SCHEMA_VERSION.removeprefix("v").split(".")[:2])  # v6.4.1 -> 6.4
    if version not in vl_convert.get_vegalite_versions():
        raise LlemError(
            f"vl-convert-python {vl_convert.__version__} cannot make the report's script for Vega-Lite {version} "
            f"(altair {alt.__version__} writes it); upgrade it: pip install -U vl-convert-python"
        )
    cached = cache_dir() / "report" / f"vega-embed-{vl_convert.__version__}-{version}.js"
    try:
        text = cached.read_text(encoding="utf-8")
        if BUNDLE_DEFINES in text:  # else damaged or cut short: made again
            return text
    except (OSError, ValueError):  # missing, unreadable, not UTF-8
        pass
    bundle = vl_convert.javascript_bundle(vl_version=version)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(cached, bundle)
    except OSError:
        pass  # an unwritable cache: the bundle is made again next time
    return bundle
