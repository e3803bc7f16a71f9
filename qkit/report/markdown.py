"""Markdown rendering for GitHub: tables as pipe tables, images as links relative to the run folder.

GitHub does not show base64 data URIs, so the markdown report links the PNGs the run folder
already holds; ``report.md`` sits in the run folder, so the links work wherever the folder
is pushed.
"""

from __future__ import annotations

from qkit.report.document import Code, Document, Image, Section, Table, Text


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table_md(t: Table) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in t.headers) + " |", "|" + "|".join("---" for _ in t.headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in t.rows]
    return "\n".join(lines) + (f"\n\n_{_cell(t.caption)}_" if t.caption else "")


def block_md(block, doc: Document) -> str:
    if isinstance(block, Table):
        return table_md(block)
    if isinstance(block, Image):
        rel = block.path.relative_to(doc.root).as_posix()
        caption = " ".join(block.caption.split())
        return f"![{_cell(caption)}]({rel})\n\n_{_cell(caption)}_"
    if isinstance(block, Code):
        return f"```\n{block.text.rstrip()}\n```"
    if isinstance(block, Text):
        return block.text
    raise TypeError(f"unknown report block {type(block).__name__}")


def section_md(s: Section, doc: Document) -> str:
    return f"## {s.title}\n\n" + "\n\n".join(block_md(b, doc) for b in s.blocks)


def render_markdown(doc: Document) -> str:
    return f"# {doc.title}\n\n{doc.subtitle}\n\n" + "\n\n".join(section_md(s, doc) for s in doc.sections) + "\n"
