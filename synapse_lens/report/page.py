"""The HTML page: one self-contained file, plotly.js inlined once, every data string escaped.

Building blocks used by the report sections: :func:`esc`, :func:`table_html`,
:func:`figure_html`, :class:`Section` and :func:`page`.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True,
                 "modeBarButtonsToRemove": ["select2d", "lasso2d"]}

CSS = """
:root { --ink:#1d2430; --muted:#5b6675; --line:#dfe3ea; --accent:#2b59c3; --bg:#f6f7f9; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",
       Arial,sans-serif; color:var(--ink); background:var(--bg); }
header { background:#17213a; color:#fff; padding:28px 0 22px; }
header h1 { margin:0 0 6px; font-size:26px; font-weight:600; }
header p { margin:0; color:#c9d2e3; }
.wrap { max-width:1180px; margin:0 auto; padding:0 24px; }
nav.toc { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 18px;
          margin:22px 0; }
nav.toc ol { margin:4px 0 0; padding-left:22px; columns:2; }
nav.toc a { color:var(--accent); text-decoration:none; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:6px 22px 18px;
          margin:0 0 22px; }
section h2 { font-size:20px; margin:16px 0 6px; }
section h3 { font-size:16px; margin:18px 0 6px; }
p.explain { color:var(--muted); margin:0 0 10px; max-width:900px; }
p.missing { color:#8a5a00; background:#fff7e0; border:1px solid #f1dca4; border-radius:6px;
            padding:8px 12px; }
ul.findings li { margin:6px 0; }
.figure { margin:8px 0 4px; }
table.data { border-collapse:collapse; font-size:13px; margin:6px 0 10px; }
table.data th, table.data td { border-bottom:1px solid var(--line); padding:4px 10px;
                               text-align:left; vertical-align:top; }
table.data th { background:#f0f2f6; font-weight:600; }
table.data td.num { text-align:right; font-variant-numeric:tabular-nums; }
table.data td.text { max-width:620px; }
td.ok { color:#1b7f3b; } td.bad { color:#b42318; }
details { margin:6px 0; } summary { cursor:pointer; color:var(--accent); }
code { background:#f0f2f6; padding:1px 4px; border-radius:3px; font-size:13px; }
.grid2 { display:grid; grid-template-columns:1fr 1fr; gap:12px; }
footer { color:var(--muted); font-size:13px; padding:8px 0 30px; }
"""

# Records script errors into the DOM (a hidden <pre>) so that headless checks can see them.
ERROR_RECORDER = """
window.__synapseErrors = [];
function __synapseRecord(message) {
  window.__synapseErrors.push(String(message));
  var box = document.getElementById("synapse-script-errors");
  if (box) { box.textContent = window.__synapseErrors.join("\\n"); }
}
window.addEventListener("error", function (e) { __synapseRecord(e.message || e); });
window.addEventListener("unhandledrejection", function (e) { __synapseRecord(e.reason); });
"""


def esc(value: object) -> str:
    """HTML-escape any value (quotes included); control characters that HTML cannot hold
    (NUL and the other C0/C1 codes except tab and newlines) are shown as U+FFFD."""
    return html.escape(_CONTROL.sub("\ufffd", str(value)), quote=True)


def fmt(value: Any, digits: int = 3) -> str:
    """A cell value as text: floats rounded, missing as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        text = f"{value:.{digits}f}"
        return text[1:] if text.startswith("-") and float(text) == 0 else text
    return str(value)


def table_html(df: pd.DataFrame, columns: Sequence[str] | None = None,
               headers: Sequence[str] | None = None, digits: int = 3,
               css: Callable[[str, Any], str] | None = None) -> str:
    """An escaped HTML table of ``df`` (``columns`` in order, ``headers`` as labels).

    ``css(column, value)`` may give extra cell classes (e.g. ``ok`` / ``bad``).
    """
    cols = list(df.columns if columns is None else columns)
    heads = list(cols if headers is None else headers)
    out = ["<table class=\"data\"><thead><tr>"]
    out += [f"<th>{esc(h)}</th>" for h in heads]
    out.append("</tr></thead><tbody>")
    for row in df[cols].itertuples(index=False):
        out.append("<tr>")
        for col, value in zip(cols, row):
            kind = "num" if isinstance(value, (int, float)) and not isinstance(value, bool) \
                else "text"
            extra = f" {css(col, value)}" if css is not None else ""
            out.append(f"<td class=\"{kind}{extra}\">{esc(fmt(value, digits))}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def figure_html(fig: Any, div_id: str) -> str:
    """A plotly figure as a ``<div>`` + script calling the page's inlined plotly.js."""
    import plotly.io as pio

    return ("<div class=\"figure\">" + pio.to_html(
        fig, include_plotlyjs=False, full_html=False, div_id=div_id, config=PLOTLY_CONFIG,
        validate=True) + "</div>")


def plotly_js() -> str:
    """The plotly.js bundle shipped with the installed plotly package."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


@dataclass(frozen=True)
class Section:
    """One report section: anchor id, title, explanation (plain text) and body (HTML)."""

    anchor: str
    title: str
    explain: str
    body: str


def missing(what: str) -> str:
    """The notice shown when a section's table is absent."""
    return f"<p class=\"missing\">{esc(what)}</p>"


def page(title: str, subtitle: str, sections: Sequence[Section], footer: str) -> str:
    """The whole self-contained HTML document (title and subtitle are escaped here)."""
    toc = "".join(f"<li><a href=\"#{esc(s.anchor)}\">{esc(s.title)}</a></li>" for s in sections)
    body = "".join(
        f"<section id=\"{esc(s.anchor)}\"><h2>{esc(s.title)}</h2>"
        + (f"<p class=\"explain\">{esc(s.explain)}</p>" if s.explain else "") + s.body
        + "</section>" for s in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{CSS}</style>"
        f"<script>{ERROR_RECORDER}</script>"
        f"<script type=\"text/javascript\">{plotly_js()}</script></head><body>"
        f"<header><div class=\"wrap\"><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></div></header>"
        f"<main class=\"wrap\"><nav class=\"toc\"><strong>Contents</strong><ol>{toc}</ol></nav>"
        f"{body}<footer>{esc(footer)}</footer>"
        "<pre id=\"synapse-script-errors\" hidden></pre><script>"
        "document.getElementById('synapse-script-errors').textContent = "
        "window.__synapseErrors.join('\\n');</script></main></body></html>\n")
