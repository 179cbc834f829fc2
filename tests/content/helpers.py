"""Helpers shared by the content tests."""

import io

from PIL import Image


def approve(version):
    """Move a version to approved the way the workflow does (state fields only)."""
    version.state = "approved"
    version.save(update_fields=["state", "updated_at"])
    return version


def image_bytes(fmt="PNG", size=(800, 400), color=(200, 30, 60), **save_kwargs):
    image = Image.new("RGB", size, color)
    out = io.BytesIO()
    image.save(out, fmt, **save_kwargs)
    return out.getvalue()
