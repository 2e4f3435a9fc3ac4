"""Pictures made with Pillow for the image tests (the throwaway MEDIA_ROOT is the `media_root` fixture)."""

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw


def picture_bytes(width: int = 1600, height: int = 900, fmt: str = "JPEG", mode: str = "RGB", exif=None) -> bytes:
    """A picture with a gradient and a dark disc, so that resizing has something to do."""
    picture = Image.new(mode, (width, height), (30, 90, 160, 0) if mode == "RGBA" else (30, 90, 160))
    draw = ImageDraw.Draw(picture)
    for x in range(0, width, max(1, width // 40)):
        draw.line([(x, 0), (x, height)], fill=(200, 120 + x % 100, 40, 255) if mode == "RGBA" else (200, 120, 40))
    draw.ellipse([width // 3, height // 4, width // 3 + height // 2, height // 4 + height // 2], fill=(20, 20, 20, 255))
    buffer = io.BytesIO()
    kwargs = {"exif": exif} if exif is not None else {}
    picture.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def upload(name: str = "ferry.jpg", **kwargs) -> SimpleUploadedFile:
    data = picture_bytes(**kwargs)
    content_type = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}.get(kwargs.get("fmt", "JPEG"))
    return SimpleUploadedFile(name, data, content_type=content_type or "application/octet-stream")
