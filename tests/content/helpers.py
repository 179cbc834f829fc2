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


def png_header_claiming(width, height):
    """A tiny PNG whose header claims `width` × `height` pixels (nothing is allocated)."""
    import struct
    import zlib

    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def version_form_data(version, **overrides):
    """The POST body of the version change form as the admin would send it."""
    data = {
        "module": version.module_id,
        "locale": version.locale_id,
        "subject": version.subject,
        "body_html": version.body_html,
        "body_text": version.body_text,
        "token_fallbacks": "{}",
        "audiences": list(version.audiences.values_list("pk", flat=True)),
        "jurisdictions": list(version.jurisdictions.values_list("pk", flat=True)),
        "channels": list(version.channels.values_list("pk", flat=True)),
        "stages": list(version.stages.values_list("pk", flat=True)),
        "citations": list(version.citations.values_list("pk", flat=True)),
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}
