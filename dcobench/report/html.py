"""One self-contained offline HTML report: figures embedded as base64 PNG, tables as HTML,
every figure and table numbered and captioned; no external CSS, JS or fonts."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

_CSS = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, caption { font-size: .9em; color: #444; text-align: left; padding: .3em 0; }
table { border-collapse: collapse; margin: 1.5em 0; font-size: .85em; }
th, td { padding: .25em .7em; border-bottom: 1px solid #ddd; text-align: right; }
th { border-bottom: 2px solid #444; }
td:first-child, th:first-child { text-align: left; }
nav ul { columns: 2; }
"""


@dataclass
class Section:
    """A report section: heading, optional intro paragraph, and items.

    Each item is `(content, caption)`: content is a Path to a PNG figure (a .pdf path uses its
    sibling .png), a DataFrame (rendered as a table) or a str (a paragraph; caption ignored).
    """

    heading: str
    items: Sequence[tuple[Path | str | pd.DataFrame, str]] = field(default_factory=list)
    intro: str = ""


def _as_section(sec: Section | Mapping) -> Section:
    """Accept a Section or a mapping with keys heading, items and optionally intro."""
    if isinstance(sec, Section):
        return sec
    return Section(heading=sec["heading"], items=list(sec.get("items", [])),
                   intro=sec.get("intro", ""))


def embed_png(path: Path) -> str:
    """`data:` URI of a PNG file (a .pdf path is swapped for its .png sibling)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    if not path.exists():
        raise FileNotFoundError(f"build_html: figure {path} not found")
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _figure_html(path: Path, caption: str, number: int) -> str:
    """<figure> with the embedded image and a numbered caption."""
    alt = html.escape(caption or Path(path).stem, quote=True)
    return (f'<figure id="fig{number}"><img src="{embed_png(path)}" alt="{alt}">'
            f"<figcaption><b>Figure {number}.</b> {html.escape(caption)}</figcaption></figure>")


def _table_html(df: pd.DataFrame, caption: str, number: int) -> str:
    """HTML table with a numbered <caption> (floats to 3 decimals, text escaped)."""
    body = df.to_html(index=False, escape=True, border=0, na_rep="",
                      float_format=lambda v: f"{v:.3f}")
    cap = f"<caption><b>Table {number}.</b> {html.escape(caption)}</caption>"
    body = body.replace("<table", f'<table id="tab{number}"', 1)
    head_end = body.index(">") + 1
    return body[:head_end] + cap + body[head_end:]


def render_html(title: str, sections: Sequence[Section | Mapping]) -> str:
    """The full HTML document as a string (see build_html)."""
    sections = [_as_section(s) for s in sections]
    parts, n_fig, n_tab = [], 0, 0
    toc = "".join(f'<li><a href="#sec{i}">{html.escape(s.heading)}</a></li>'
                  for i, s in enumerate(sections, 1))
    for i, sec in enumerate(sections, 1):
        parts.append(f'<section id="sec{i}"><h2>{html.escape(sec.heading)}</h2>')
        if sec.intro:
            parts.append(f"<p>{html.escape(sec.intro)}</p>")
        for content, caption in sec.items:
            if isinstance(content, pd.DataFrame):
                n_tab += 1
                parts.append(_table_html(content, caption, n_tab))
            elif isinstance(content, Path):
                n_fig += 1
                parts.append(_figure_html(content, caption, n_fig))
            else:
                parts.append(f"<p>{html.escape(str(content))}</p>")
        parts.append("</section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><nav><ul>{toc}</ul></nav>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def build_html(title: str, sections: Sequence[Section | Mapping], out_path: Path | str) -> Path:
    """Write a self-contained HTML report to `out_path` and return it.

    `sections` are Section objects (or mappings with heading / items / intro); items are
    (Path to PNG | DataFrame | str, caption). Figures are embedded as base64 PNG.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(render_html(title, sections), encoding="utf-8")
    return out_path
