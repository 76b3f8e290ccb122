"""Rewrite the env-var table in docs/configuration.md from the settings table.

    python -m otel_distro.settings_doc [path]
"""

from __future__ import annotations

import sys
from pathlib import Path

from otel_distro.settings import markdown_table

START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def rewrite(path: Path) -> None:
    text = path.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{markdown_table()}\n{END}{tail}")


if __name__ == "__main__":
    rewrite(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/configuration.md"))
