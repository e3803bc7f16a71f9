"""The report as data: sections of blocks, rendered to HTML (``qkit.report.html``) or markdown (``.markdown``).

Collecting what a run folder holds (``qkit.report.sections``) is separate from how it is
shown, so the two formats always carry the same content and a renderer is a short loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""
    id: str = ""  # HTML id (e.g. "metrics", which the browser test looks for)


@dataclass
class Image:
    path: Path  # a PNG inside the run folder
    caption: str = ""
    collapsed: bool = False  # HTML: inside <details> (many similar figures)
    half: bool = False  # HTML: half width, so two small figures sit side by side


@dataclass
class Text:
    text: str  # one paragraph, plain text


@dataclass
class Code:
    text: str  # preformatted (JSON, markdown files of other commands)


Block = Union[Table, Image, Text, Code]


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    id: str = ""


@dataclass
class Document:
    title: str
    subtitle: str
    sections: list[Section]
    root: Path  # the run folder: markdown links images relative to it
