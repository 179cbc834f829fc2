"""gunicorn's workers freeze the application's objects out of the collector's reach once
they have imported it (cms/gunicorn.conf.py post_worker_init)."""

import gc
import runpy
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "cms" / "gunicorn.conf.py"


def test_a_worker_freezes_what_it_imported():
    config = runpy.run_path(str(CONFIG))
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        config["post_worker_init"](worker=None)
        assert gc.get_freeze_count() > 10_000  # Django, the URLconf, every module
    finally:
        gc.unfreeze()
