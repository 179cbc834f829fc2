"""Screenshots from the browser tests: into docs/screenshots/ only when asked.

`make screenshots` (TESSERA_SCREENSHOTS=1) refreshes the pictures the README and docs show;
an ordinary run still takes every screenshot (the page must render) but into a temporary
folder, so `make test` leaves the work tree clean.
"""

import os
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def folder() -> Path:
    if os.environ.get("TESSERA_SCREENSHOTS", "").lower() in {"1", "true", "yes"}:
        return DOCS
    path = Path(tempfile.gettempdir()) / "tessera-screenshots"
    path.mkdir(exist_ok=True)
    return path


def save(page, name: str, **options) -> Path:
    path = folder() / name
    page.screenshot(path=str(path), **options)
    return path
