"""HTML rendering: one self-contained file (inline CSS, PNGs as base64 data URIs, no script, no network).

A report is sent by e-mail, opened years later or printed; anything it linked to (a CDN
stylesheet, a file beside it) would be gone by then. Everything is escaped; the metrics
table comes first after the run summary, so it is on screen (and in a screenshot) at once.
"""

from __future__ import annotations

import base64
from html import escape

from qkit.report.document import Code, Document, Image, Section, Table, Text

CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0 auto;max-width:1100px;
padding:24px;color:#1b1f23;line-height:1.45}
h1{margin-bottom:2px}.subtitle{color:#586069;margin-top:0}
h2{border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:32px}
nav a{margin-right:12px;font-size:14px}
table{border-collapse:collapse;margin:8px 0 4px;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f6f8fa}
caption{caption-side:bottom;text-align:left;color:#586069;font-size:12px;padding-top:4px}
figure{margin:12px 0}figure.half{display:inline-block;width:48%;vertical-align:top;margin-right:1%}
img{max-width:100%;height:auto;border:1px solid #eaecef}
figcaption{color:#586069;font-size:12px;white-space:pre-line}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:12px}
details summary{cursor:pointer;color:#0366d6;font-size:13px}
@media print{nav{display:none}details{display:block}}
"""


def data_uri(path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def table_html(t: Table) -> str:
    ident = f' id="{escape(t.id)}"' if t.id else ""
    head = "".join(f"<th>{escape(h)}</th>" for h in t.headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    caption = f"<caption>{escape(t.caption)}</caption>" if t.caption else ""
    return f"<table{ident}>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def image_html(i: Image) -> str:
    cls = ' class="half"' if i.half else ""
    fig = (
        f'<figure{cls}><img src="{data_uri(i.path)}" alt="{escape(i.caption)}">'
        f"<figcaption>{escape(i.caption)}</figcaption></figure>"
    )
    return f"<details><summary>{escape(i.caption)}</summary>{fig}</details>" if i.collapsed else fig


def block_html(block) -> str:
    if isinstance(block, Table):
        return table_html(block)
    if isinstance(block, Image):
        return image_html(block)
    if isinstance(block, Code):
        return f"<pre>{escape(block.text)}</pre>"
    if isinstance(block, Text):
        return f"<p>{escape(block.text)}</p>"
    raise TypeError(f"unknown report block {type(block).__name__}")


def section_html(s: Section) -> str:
    ident = f' id="{escape(s.id)}"' if s.id else ""
    return f"<section{ident}><h2>{escape(s.title)}</h2>" + "\n".join(block_html(b) for b in s.blocks) + "</section>"


def render_html(doc: Document) -> str:
    nav = " ".join(f'<a href="#{escape(s.id)}">{escape(s.title)}</a>' for s in doc.sections if s.id)
    body = "\n".join(section_html(s) for s in doc.sections)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(doc.title)}</title><style>{CSS}</style></head>\n"
        f'<body><h1>{escape(doc.title)}</h1><p class="subtitle">{escape(doc.subtitle)}</p>'
        f"<nav>{nav}</nav>\n{body}\n</body></html>\n"
    )
