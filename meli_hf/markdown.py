"""Text that comes from data or users (category names, titles, file, model and run names) placed in markdown: the
evaluation report and the model card show it as written, never as emphasis, math, links, table cells or HTML."""

from __future__ import annotations

import html
import re

# What markdown (GitHub's, with tables, strikethrough and math) reads as syntax anywhere in a line; `<`, `>` and `&`
# become HTML entities instead.
MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]|$^~#])")


def markdown_text(text: object) -> str:
    """`text` escaped for markdown prose or a table cell, on one line."""
    one_line = " ".join(str(text).split())
    return html.escape(MARKDOWN_PUNCTUATION.sub(r"\\\1", one_line), quote=False)


def markdown_code(text: object) -> str:
    """`text` as an inline code span outside tables, shown literally: its fence is longer than any run of backticks
    inside."""
    one_line = " ".join(str(text).split())
    longest = max((len(run) for run in re.findall(r"`+", one_line)), default=0)
    fence = "`" * (longest + 1)
    padding = " " if one_line.startswith("`") or one_line.endswith("`") else ""
    return f"{fence}{padding}{one_line}{padding}{fence}"
