"""Uploaded images: check what was uploaded, make the email renditions, and give absolute URLs for emails.

Email clients want plain JPEG at the size it is shown: a rendition 600 px wide (the email's width) and one 1,200 px
wide for high-density screens, never wider than the original. PNG, WebP, GIF (first frame) and JPEG are accepted;
transparency is flattened onto white, the camera's rotation is applied, and metadata (GPS included) is dropped.
Every file goes through Django's default storage, so the filesystem and an S3-compatible store behave the same.
"""

import io
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from newsletter.conf import app_settings
from newsletter.models import Image

EMAIL_WIDTHS = (600, 1200)
ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
JPEG_QUALITY = 82
# Larger than any photo a newsroom uploads; refuses decompression bombs before Pillow decodes them.
MAX_PIXELS = 50_000_000


class ImageError(ValueError):
    """The upload is not an image we can use; the message says why and what to do."""


@dataclass(frozen=True)
class Rendition:
    width: int
    height: int
    data: bytes


def _max_bytes() -> int:
    return app_settings.IMAGE_MAX_UPLOAD_MB * 1024 * 1024


def image_open(data: bytes) -> PILImage.Image:
    """Decode an upload, or raise ImageError saying why it cannot be used."""
    if len(data) > _max_bytes():
        raise ImageError(
            f"The file is {len(data) / 1024 / 1024:.1f} MB; images up to {app_settings.IMAGE_MAX_UPLOAD_MB} "
            "MB are accepted. Export it smaller and upload again."
        )
    try:
        picture = PILImage.open(io.BytesIO(data))
        if picture.format not in ACCEPTED_FORMATS:
            raise ImageError(f"{picture.format} images are not accepted; upload a JPEG, PNG, WebP or GIF.")
        if picture.width * picture.height > MAX_PIXELS:
            raise ImageError(
                f"The image is {picture.width} × {picture.height} pixels, too large to process; "
                "export it at most 8,000 pixels wide."
            )
        picture.load()
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, PILImage.DecompressionBombError, SyntaxError) as exc:
        raise ImageError("The file is not an image that can be read (JPEG, PNG, WebP or GIF).") from exc
    return picture


def _flatten(picture: PILImage.Image) -> PILImage.Image:
    """RGB on white: JPEG has no transparency, and a transparent logo must not turn black."""
    picture = ImageOps.exif_transpose(picture)
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        canvas = PILImage.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return picture.convert("RGB")


def image_renditions(picture: PILImage.Image, widths: tuple[int, ...] = EMAIL_WIDTHS) -> list[Rendition]:
    """One JPEG per width, scaled down proportionally (never up: a narrow original stays its own width)."""
    flat = _flatten(picture)
    out = []
    for width in widths:
        target = min(width, flat.width)
        height = max(1, round(flat.height * target / flat.width))
        scaled = flat if target == flat.width else flat.resize((target, height), PILImage.Resampling.LANCZOS)
        buffer = io.BytesIO()
        scaled.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
        out.append(Rendition(target, height, buffer.getvalue()))
    return out


def _base_name(filename: str) -> str:
    stem = (filename or "image").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in stem).strip("-")[:60]
    return cleaned or "image"


@transaction.atomic
def image_upload(
    upload: UploadedFile | ContentFile, *, alt_text: str = "", title: str = "", user=None, into: Image | None = None
) -> Image:
    """Store an uploaded image with its two email renditions, as a new Image (or into the unsaved `into`, as the
    admin's add form has it). Raises ImageError (nothing stored) for a file that is not a usable image."""
    data = upload.read()
    picture = image_open(data)
    small, large = image_renditions(picture)
    name = _base_name(getattr(upload, "name", "") or "image")
    extension = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}[picture.format]
    upright = ImageOps.exif_transpose(picture)
    image = into if into is not None else Image()
    image.alt_text, image.title, image.uploaded_by = alt_text.strip(), title.strip() or name, user
    image.width, image.height = upright.size
    image.original.save(f"{name}.{extension}", ContentFile(data), save=False)
    image.email_600.save(f"{name}-600.jpg", ContentFile(small.data), save=False)
    image.email_1200.save(f"{name}-1200.jpg", ContentFile(large.data), save=False)
    image.save()
    return image


def media_url(name: str) -> str:
    """The absolute URL of a stored file, as an email needs it: the storage's own URL when it is absolute (S3, a
    CDN domain), else MEDIA_URL on MEDIA_HOST (SITE_URL by default)."""
    url = default_storage.url(name)
    if url.startswith(("http://", "https://")):
        return url
    return app_settings.MEDIA_HOST.rstrip("/") + (url if url.startswith("/") else "/" + url)


@dataclass(frozen=True)
class EmailImage:
    """What a layout needs to show an uploaded image."""

    src: str
    src_2x: str
    alt: str
    width: int
    height: int

    @property
    def srcset(self) -> str:
        return f"{self.src} 1x, {self.src_2x} 2x"


def image_for_email(image: Image | None, alt: str = "") -> EmailImage | None:
    """The image's renditions as absolute URLs, with `alt` (or the image's own alt text)."""
    if image is None or not image.email_600:
        return None
    return EmailImage(
        src=media_url(image.email_600.name),
        src_2x=media_url(image.email_1200.name or image.email_600.name),
        alt=(alt or image.alt_text).strip(),
        width=image.width,
        height=image.height,
    )
