"""Uploaded images: renditions for email (600 and 1,200 px JPEG, never upscaled), formats and transparency,
refusals with reasons, absolute URLs, and the route that serves them."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from newsletter.models import Image
from newsletter.services.images import ImageError, image_for_email, image_upload, media_url
from tests.factories import picture_bytes, picture_upload

pytestmark = pytest.mark.django_db


def opened(field) -> PILImage.Image:
    with field.open("rb") as handle:
        return PILImage.open(io.BytesIO(handle.read()))


def test_a_photo_gets_600_and_1200_px_jpeg_renditions_in_storage(media_root):
    image = image_upload(picture_upload("Ferry at dawn.jpg", width=2400, height=1350), alt_text=" A ferry docking ")

    small, large = opened(image.email_600), opened(image.email_1200)
    assert (small.format, small.size) == ("JPEG", (600, 338))
    assert (large.format, large.size) == ("JPEG", (1200, 675))
    assert (image.width, image.height) == (2400, 1350)
    assert image.alt_text == "A ferry docking"
    assert image.title == "Ferry-at-dawn"
    # Every file is in the storage, under a folder of its own.
    for field in (image.original, image.email_600, image.email_1200):
        assert (media_root / field.name).is_file()
        assert field.name.startswith(f"images/{image.key}/")


def test_a_narrow_image_is_never_upscaled(media_root):
    image = image_upload(picture_upload("chart.png", width=480, height=300, fmt="PNG"))
    assert opened(image.email_600).size == (480, 300)
    assert opened(image.email_1200).size == (480, 300)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_transparent_png_and_webp_become_jpeg_on_white(media_root, fmt):
    image = image_upload(picture_upload(f"logo.{fmt.lower()}", width=800, height=400, fmt=fmt, mode="RGBA"))
    rendition = opened(image.email_600)
    assert rendition.format == "JPEG" and rendition.mode == "RGB"
    # The transparent background turned white, not black.
    assert rendition.getpixel((2, 2)) >= (245, 245, 245)
    assert image.original.name.endswith(f".{fmt.lower()}")


def test_the_cameras_rotation_is_applied_and_metadata_dropped(media_root):
    exif = PILImage.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    exif[0x010F] = "Harbour Camera Co"  # Make: must not reach readers
    image = image_upload(picture_upload("portrait.jpg", width=1600, height=900, exif=exif.tobytes()))
    rendition = opened(image.email_600)
    assert (image.width, image.height) == (900, 1600)
    assert rendition.size == (600, 1067)
    assert not rendition.getexif()


def test_a_file_that_is_not_an_image_is_refused_with_a_reason_and_nothing_is_stored(media_root):
    with pytest.raises(ImageError, match="not an image that can be read"):
        image_upload(SimpleUploadedFile("notes.jpg", b"%PDF-1.7 not a picture"))
    with pytest.raises(ImageError, match="BMP images are not accepted"):
        image_upload(SimpleUploadedFile("old.bmp", picture_bytes(40, 40, fmt="BMP")))
    assert Image.objects.count() == 0
    assert not media_root.exists() or not any(media_root.rglob("*.*"))


def test_a_file_over_the_size_limit_is_refused(media_root, settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "IMAGE_MAX_UPLOAD_MB": 0}
    with pytest.raises(ImageError, match="images up to 0 MB are accepted"):
        image_upload(picture_upload())


def test_email_urls_are_absolute_on_site_url_or_the_media_host(media_root, settings):
    settings.SITE_URL = "https://news.example.org"
    settings.MASTHEAD = {**settings.MASTHEAD, "MEDIA_HOST": "https://news.example.org"}
    image = image_upload(picture_upload(), alt_text="A ferry")
    shown = image_for_email(image)
    assert shown.src == f"https://news.example.org/media/{image.email_600.name}"
    assert shown.src_2x == f"https://news.example.org/media/{image.email_1200.name}"
    assert shown.alt == "A ferry"
    assert image_for_email(image, alt="Given alt").alt == "Given alt"

    settings.MASTHEAD = {**settings.MASTHEAD, "MEDIA_HOST": "https://img.example.net"}
    assert media_url(image.email_600.name).startswith("https://img.example.net/media/images/")


def test_the_app_serves_uploaded_images_and_nothing_else(client, media_root):
    image = image_upload(picture_upload())
    response = client.get(f"/media/{image.email_600.name}")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert "immutable" in response["Cache-Control"]
    assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"

    (media_root / "private.txt").write_text("secret")
    assert client.get("/media/private.txt").status_code == 404
    assert client.get("/media/images/../private.txt").status_code in (400, 404)
    assert client.get(f"/media/images/{image.key}/missing.jpg").status_code == 404
    assert client.post(f"/media/{image.email_600.name}").status_code == 405
