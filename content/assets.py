"""Image uploads: validate through Pillow, re-encode, store, and queue the renditions.

Every upload is decoded and written again by Pillow, so what we store is an image and
nothing else: trailing bytes (a PNG header followed by HTML), metadata (EXIF, XMP, text
chunks, ICC profiles) and unknown chunks are gone. The pixel count is checked from the
header before anything is decoded, so a small file claiming a huge canvas (a decompression
bomb) costs nothing, and only the accepted formats' parsers ever see the bytes.

Decoding is bounded: a legal image is decoded once (JPEG already scaled down by the
decoder) and reduced by an integer factor to at most `MAX_STORED_SIDE` px before anything
copies or converts it, so its cost is one decoded canvas plus a quarter of it at most
(a 6300 × 6300 RGBA PNG: ~200 MB peak instead of ~640 MB).
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from PIL import Image, ImageOps, UnidentifiedImageError

from cms.lru import LRUCache

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif"}
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
# name → target width in px; never upscaled.
RENDITION_WIDTHS = {"email": 600, "email_2x": 1200, "thumbnail": 200}
# The stored image keeps twice the largest rendition; larger uploads are reduced to it.
MAX_STORED_SIDE = 2 * max(RENDITION_WIDTHS.values())
# Modes Image.reduce averages correctly; palette and special modes are sampled instead.
_REDUCIBLE_MODES = {"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "I", "F"}


class ImageRejected(ValidationError):
    """An upload that is not an acceptable image; the message says what and why."""


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    format: str
    width: int
    height: int
    sha256: str


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _read_limited(upload, limit: int) -> bytes:
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise ImageRejected(
            f"The file is {_megabytes(size)}; images may be at most {_megabytes(limit)}.",
            code="too_large",
        )
    if hasattr(upload, "seek"):
        upload.seek(0)
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise ImageRejected(f"The file is larger than {_megabytes(limit)}, the limit for images.",
                            code="too_large")
    return data


def _open_checked(data: bytes) -> Image.Image:
    """Open (header only) and check format and pixel count; nothing is decoded yet."""
    max_pixels = settings.TESSERA_IMAGE_MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(
            f"The image claims more pixels than the limit of {max_pixels:,}; refused as a "
            "possible decompression bomb.", code="too_many_pixels")
    except UnidentifiedImageError:
        other = _sniff_format(data)
        if other:
            raise ImageRejected(
                f"{other} images are not accepted: upload a PNG, JPEG, WebP or GIF.",
                code="format_not_allowed")
        raise ImageRejected(
            "The file is not an image Tessera can read: upload a PNG, JPEG, WebP or GIF.",
            code="not_an_image")
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageRejected(f"The image is damaged and cannot be read ({exc}).", code="damaged")
    if image.format not in ALLOWED_FORMATS:
        raise ImageRejected(
            f"{image.format} images are not accepted: upload a PNG, JPEG, WebP or GIF.",
            code="format_not_allowed")
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageRejected("The image has no pixels.", code="damaged")
    if width * height > max_pixels:
        raise ImageRejected(
            f"The image is {width:,} × {height:,} px ({width * height:,} pixels); the limit is "
            f"{max_pixels:,} pixels.", code="too_many_pixels")
    return image


def _sniff_format(data: bytes) -> str | None:
    """Name a format Pillow knows but we refuse, from its signature alone (the plugins'
    prefix checks; no parser of a refused format runs on the upload)."""
    Image.init()
    for fmt, (_factory, accept) in Image.OPEN.items():
        if fmt not in ALLOWED_FORMATS and accept is not None:
            try:
                if accept(data[:64]) is True:
                    return fmt
            except Exception:  # a prefix check that cannot read these bytes: not this format
                continue
    return None


def _decode_bounded(image: Image.Image) -> Image.Image:
    """Decode `image` (checked by `_open_checked`) to at most MAX_STORED_SIDE px a side,
    holding no more than one full-size canvas plus a quarter of it."""
    side = max(image.size)
    if image.format == "JPEG" and side > MAX_STORED_SIDE:
        # DCT scaling: the decoder itself produces a 1/2, 1/4 or 1/8 size image.
        image.draft(image.mode if image.mode in ("RGB", "L") else None,
                    (MAX_STORED_SIDE, MAX_STORED_SIDE))
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image.load()
    side = max(image.size)
    if side <= MAX_STORED_SIDE:
        return image
    factor = -(-side // MAX_STORED_SIDE)  # ceil: ≥ 2, so the copy is ≤ 1/4 of the canvas
    if image.mode in _REDUCIBLE_MODES:
        # In strips: reduce() premultiplies RGBA/LA through a full-size copy otherwise.
        reduced = Image.new(image.mode, (-(-image.width // factor), -(-image.height // factor)))
        rows = factor * 64
        for top in range(0, image.height, rows):
            strip = image.crop((0, top, image.width, min(image.height, top + rows)))
            reduced.paste(strip.reduce(factor), (0, top // factor))
    else:
        size = (max(1, image.width // factor), max(1, image.height // factor))
        reduced = image.resize(size, Image.Resampling.NEAREST)
    reduced.format, reduced.info = image.format, dict(image.info)
    exif = image.getexif()
    if exif:
        reduced.info["exif"] = exif.tobytes()
    image.close()  # the full-size canvas goes now, before anything else is allocated
    return reduced


def validate_and_reencode(upload) -> CleanImage:
    """Check an uploaded file and return it re-encoded by Pillow, metadata stripped.

    Raises `ImageRejected` (a ValidationError) with a message saying what is wrong.
    """
    data = _read_limited(upload, settings.TESSERA_IMAGE_MAX_BYTES)
    if not data:
        raise ImageRejected("The file is empty.", code="empty")
    image = _open_checked(data)
    fmt = image.format
    try:
        image.verify()  # structure and checksums, without decoding pixels
        image = _decode_bounded(_open_checked(data))  # verify() leaves the object unusable
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("The image expands beyond the pixel limit; refused as a possible "
                            "decompression bomb.", code="too_many_pixels")
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageRejected(f"The image is truncated or damaged and cannot be decoded ({exc}).",
                            code="damaged")
    return _reencode(image, fmt)


def _reencode(image: Image.Image, fmt: str) -> CleanImage:
    # Apply the EXIF orientation before the EXIF block is dropped, then rebuild the pixels.
    image = ImageOps.exif_transpose(image, in_place=False) if _orientation(image) else image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info)
    target = "RGB" if fmt == "JPEG" or not has_alpha else "RGBA"
    clean = image if image.mode == target else image.convert(target)
    clean.info = {}  # no EXIF, XMP, ICC, text chunks or comments are carried over
    out = io.BytesIO()
    if fmt == "JPEG":
        clean.save(out, "JPEG", quality=88, optimize=True)
    elif fmt == "PNG":
        clean.save(out, "PNG", optimize=True)
    elif fmt == "WEBP":
        clean.save(out, "WEBP", quality=88)
    else:  # GIF: the first frame only; animation is not part of the email-safe subset
        clean.save(out, "GIF")
    data = out.getvalue()
    return CleanImage(data=data, format=fmt, width=clean.width, height=clean.height,
                      sha256=hashlib.sha256(data).hexdigest())


def _orientation(image: Image.Image) -> int:
    return image.getexif().get(0x0112, 1)  # EXIF Orientation; 1 = as stored


def store_asset(*, brand, title: str, alt_text: str, upload, uploaded_by, asset=None,
                clean: CleanImage | None = None):
    """Validate, re-encode and save an uploaded image as an Asset; queue its renditions.

    With `asset` given, replaces that asset's image (same checks). `clean` is an upload a
    form already ran through `validate_and_reencode`. The renditions task runs once the
    transaction commits (eagerly in the embedded profile), as `uploaded_by`.
    """
    from .models import Asset

    alt_text = (alt_text or "").strip()
    if not alt_text:
        raise ValidationError({"alt_text": "Alt text is required: say what the image shows, "
                                           "for readers who cannot see it."})
    if clean is None:
        clean = validate_and_reencode(upload)
    with transaction.atomic():
        asset = asset or Asset(brand=brand)
        asset.brand = brand
        asset.title = title
        asset.alt_text = alt_text
        asset.format = clean.format
        asset.content_sha256 = clean.sha256
        asset.uploaded_by = uploaded_by
        asset.renditions = {}
        asset.image.save(f"{clean.sha256}.{EXTENSIONS[clean.format]}", ContentFile(clean.data),
                         save=False)
        # Known from the re-encode; the field's own probe may see a closed file here.
        asset.width, asset.height = clean.width, clean.height
        asset._history_user = uploaded_by
        asset.save()
        asset_id, user_id = asset.pk, uploaded_by.pk
        transaction.on_commit(lambda: queue_renditions(asset_id, user_id))
    return asset


def queue_renditions(asset_id: int, acting_user_id: int) -> None:
    from .tasks import make_asset_renditions

    make_asset_renditions.delay(asset_id, acting_user_id)


def rendition_size(width: int, height: int, target: int) -> tuple[int, int]:
    """The size of a rendition `target` px wide of a `width` × `height` image (never
    upscaled): the one rule for the files and for the `width`/`height` attributes."""
    if width <= target:
        return width, height
    return target, max(1, round(height * target / width))


def decode_stored(data: bytes) -> Image.Image:
    """A stored original decoded as the renditions are made from it."""
    # Stored images are already within MAX_STORED_SIDE; older ones are bounded here too.
    return _decode_bounded(Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS))


def rendition_bytes(source: Image.Image, fmt: str, target: int) -> bytes:
    """The encoded rendition `target` px wide of the decoded original `source`.

    Deterministic for the same original and Pillow, so an inspector can derive a
    rendition again from the signed original and compare (`delivery.verification`)."""
    copy = source.copy()
    size = rendition_size(copy.width, copy.height, target)
    if size != copy.size:
        copy = copy.resize(size, Image.Resampling.LANCZOS)
    copy.info = {}
    out = io.BytesIO()
    save_kwargs = {"quality": 88} if fmt in ("JPEG", "WEBP") else {}
    copy.save(out, fmt, **save_kwargs)
    return out.getvalue()


def make_renditions(asset, *, acting_user) -> dict[str, str]:
    """Write the resized copies of an asset next to it and record their paths.

    Each file is named by the sha256 of its bytes (content-addressed, like the original),
    so its address proves what it holds (`addressed_file`)."""
    storage = asset.image.storage
    with asset.image.open("rb") as fh:
        source = decode_stored(fh.read())
    paths = {}
    for name, width in RENDITION_WIDTHS.items():
        data = rendition_bytes(source, asset.format, width)
        sha256 = hashlib.sha256(data).hexdigest()
        path = f"assets/{asset.brand_id}/renditions/{sha256}.{EXTENSIONS[asset.format]}"
        if storage.exists(path):
            storage.delete(path)  # same name, same bytes: rewritten rather than suffixed
        paths[name] = storage.save(path, ContentFile(data))
    asset.renditions = paths
    asset._history_user = acting_user
    asset.save(update_fields=["renditions"])
    return paths


# Delivered images ----------------------------------------------------------------------
#
# What a reader's mail client or browser loads: a file of the asset at its content
# address, `/media/a/<asset sha256>/<file sha256>.<ext>`, absolute on
# TESSERA_PUBLIC_BASE_URL. Emails use the 600 px rendition; portal pages add the renditions
# as a `srcset`. Rule while the renditions are not made yet (the task has not run): the
# original stands in, at its own content address, shown at the 600 px rendition's size —
# never a refusal, and never bytes other than the signed original's.

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
ORIGINAL = "original"
EMAIL_RENDITION = "email"
# Responsive sources of a portal page, narrowest first.
SRCSET_RENDITIONS = ("thumbnail", "email", "email_2x")


@dataclass(frozen=True)
class ImageFile:
    """One file of an asset as delivered: which rendition, its size and sha256."""

    rendition: str  # a RENDITION_WIDTHS name, or "original"
    width: int
    height: int
    sha256: str
    extension: str

    def path(self, asset_sha256: str) -> str:
        return reverse("media-addressed", kwargs={
            "asset_sha256": asset_sha256, "file_name": f"{self.sha256}.{self.extension}"})

    def manifest_entry(self, asset_sha256: str) -> dict:
        return {"rendition": self.rendition, "url": public_url(self.path(asset_sha256)),
                "sha256": self.sha256, "width": self.width, "height": self.height}


@dataclass(frozen=True)
class DeliveredImage:
    """An asset as assembly puts it in a message."""

    asset_sha256: str
    alt: str
    email: ImageFile  # the 600 px rendition, or the original standing in for it
    width: int  # what the `width`/`height` attributes say (the 600 px rendition's size)
    height: int
    srcset: tuple[ImageFile, ...]  # the renditions made, narrowest first (may be empty)
    complete: bool  # every rendition is made: the image will not change any more

    def url(self, file: ImageFile) -> str:
        return public_url(file.path(self.asset_sha256))

    def files(self, *, responsive: bool) -> list[ImageFile]:
        """The files a message links: the email file, and the srcset on responsive pages."""
        files = [self.email]
        if responsive:
            files += [f for f in self.srcset if f not in files]
        return files


def public_url(path: str) -> str:
    """`path` absolute on TESSERA_PUBLIC_BASE_URL."""
    return settings.TESSERA_PUBLIC_BASE_URL.rstrip("/") + path


def _file_sha256(storage_name: str) -> str | None:
    """The sha256 a content-addressed file name states (None for an older name)."""
    stem = storage_name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return stem if SHA256_RE.match(stem) else None


def delivered_image(asset) -> DeliveredImage:
    """What assembly links for `asset` (needs its width, height, format, alt text,
    content sha256 and renditions)."""
    extension = EXTENSIONS[asset.format]
    made = {}
    for name, target in RENDITION_WIDTHS.items():
        sha256 = _file_sha256(str((asset.renditions or {}).get(name) or ""))
        if sha256:
            made[name] = ImageFile(name, *rendition_size(asset.width, asset.height, target),
                                   sha256, extension)
    original = ImageFile(ORIGINAL, asset.width, asset.height, asset.content_sha256, extension)
    email = made.get(EMAIL_RENDITION) or original
    srcset = tuple(sorted((made[n] for n in SRCSET_RENDITIONS if n in made),
                          key=lambda f: f.width))
    width, height = rendition_size(asset.width, asset.height, RENDITION_WIDTHS[EMAIL_RENDITION])
    return DeliveredImage(asset_sha256=asset.content_sha256, alt=asset.alt_text, email=email,
                          width=width, height=height, srcset=srcset,
                          complete=len(made) == len(RENDITION_WIDTHS))


# Complete images of locked versions, by (version id, version sha256): a locked version's
# asset is frozen (its sha256 is in the version's), and its renditions, once made, are
# named by their bytes. Incomplete ones are read again until the task has run.
DELIVERED_IMAGES = LRUCache(4_096, name="content.delivered_images")


def delivered_images(versions) -> dict[int, DeliveredImage]:
    """The image of each of `versions` (objects with `id`, `sha256`, `state`) that has one:
    one query when any is not cached."""
    from .models import LOCKED_STATES, Asset

    found, missing = {}, {}
    for v in versions:
        image = DELIVERED_IMAGES.get((v.id, v.sha256))
        if image is None:
            missing[v.id] = v
        else:
            found[v.id] = image
    if missing:
        assets = Asset.objects.filter(versions__id__in=list(missing)).only(
            "width", "height", "format", "alt_text", "content_sha256", "renditions"
        ).annotate(version_id=F("versions__id"))
        for asset in assets:
            v = missing[asset.version_id]
            image = found[v.id] = delivered_image(asset)
            if image.complete and v.state in LOCKED_STATES:
                DELIVERED_IMAGES.put((v.id, v.sha256), image)
    return found


@dataclass(frozen=True)
class AddressedFile:
    data: bytes
    content_type: str


def addressed_file(asset_sha256: str, file_name: str) -> AddressedFile | None:
    """The bytes at a content address, or None: unknown, missing, or bytes that do not hash
    to the address (never served). The original or one of the renditions of an asset whose
    content sha256 is `asset_sha256`."""
    sha256 = file_name.partition(".")[0]
    for asset, name in _stored_under(asset_sha256, file_name):
        data = read_verified(asset.image.storage, name, sha256)
        if data is not None:
            return AddressedFile(data, CONTENT_TYPES[asset.format])
    return None


def stored_bytes(asset_sha256: str, file_name: str) -> bytes | None:
    """The bytes stored under a content address as they are, unverified (None: no such
    file): for an inspector, who wants to see what differs (`delivery.verification`)."""
    for asset, name in _stored_under(asset_sha256, file_name):
        try:
            with asset.image.storage.open(name, "rb") as handle:
                return handle.read()
        except OSError:
            continue
    return None


def derived_rendition_sha256(asset_sha256: str, extension: str, rendition: str) -> str | None:
    """The sha256 of rendition `rendition` made again from the stored original, when the
    original's bytes are the asset's (None otherwise)."""
    original = f"{asset_sha256}.{extension}"
    for asset, name in _stored_under(asset_sha256, original):
        data = read_verified(asset.image.storage, name, asset_sha256)
        if data is not None:
            made = rendition_bytes(decode_stored(data), asset.format, RENDITION_WIDTHS[rendition])
            return hashlib.sha256(made).hexdigest()
    return None


def _stored_under(asset_sha256: str, file_name: str):
    """(asset, storage name) of each stored file an address may name, the original first."""
    from .models import Asset

    sha256, _, extension = file_name.partition(".")
    if not (SHA256_RE.match(asset_sha256 or "") and SHA256_RE.match(sha256)):
        return
    for asset in Asset.objects.filter(content_sha256=asset_sha256).only(
            "image", "format", "content_sha256", "renditions"):
        if EXTENSIONS.get(asset.format) != extension:
            continue
        if sha256 == asset.content_sha256:
            yield asset, asset.image.name
        for name in (asset.renditions or {}).values():
            if _file_sha256(str(name)) == sha256:
                yield asset, name


def read_verified(storage, name: str, sha256: str) -> bytes | None:
    """The bytes of a stored file when they hash to `sha256`, else None."""
    try:
        with storage.open(name, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == sha256 else None
