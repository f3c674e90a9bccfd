"""mkdocs hooks: pages take parts of the README and tables generated from the code, so each text has one
copy.

    <!-- readme: Python API -->          the README section under that heading (## or ###), without the heading
    <!-- config-fields: ppo -->          a table of every Config field of purerl.ppo: name, default, static, meaning
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(rf"^(#+) {re.escape(title)}\s*$", text, flags=re.M)
    if m is None:
        raise ValueError(f"docs: the README has no section {title!r}")
    level = len(m.group(1))
    rest = text[m.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, flags=re.M)
    body = rest[: end.start()] if end else rest
    # links relative to the repository root: docs/X becomes a link between pages, any other file its path
    return re.sub(r"\[([^\]]+)\]\((?!https?://|#)([^)]+)\)", _link, body).strip() + "\n"


def _link(m: re.Match) -> str:
    text, target = m.group(1), m.group(2)
    if target.startswith("docs/"):
        return f"[{text}]({target[len('docs/'):]})"
    return text if text.strip("`") == target else f"{text} (`{target}`)"


def _config_table(algo: str) -> str:
    from purerl.config import field_docs
    from purerl.run.rundir import algo_module

    rows = ["| field | default | kind | meaning |", "|---|---|---|---|"]
    for name, default, static, help_text in field_docs(algo_module(algo).Config):
        rows.append(f"| `{name}` | `{default!r}` | {'static' if static else 'leaf (vmappable)'} | "
                    f"{help_text.replace('|', '/')} |")
    return "\n".join(rows) + "\n"


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 - mkdocs' hook signature
    markdown = re.sub(r"<!-- readme: (.+?) -->", lambda m: _readme_section(m.group(1).strip()), markdown)
    return re.sub(r"<!-- config-fields: (\w+) -->", lambda m: _config_table(m.group(1)), markdown)
