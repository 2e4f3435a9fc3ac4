"""Fixtures of the newsletter tests: browser pages that answer the newsroom's images locally, a breakable layout."""

import struct
import zlib
from pathlib import Path

import pytest


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG, so the email's images are real images of a realistic size (1200 x 675)."""
    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


NEWSROOM_IMAGE = png(1200, 675, (58, 96, 120))


@pytest.fixture
def fresh_page(browser):
    """Factory: a page in a browser context of its own, on which the newsroom's images
    (https://harbourcity.example/...) are answered locally with a real image of a realistic size, so a test never
    leaves the machine."""
    contexts = []

    def new_page():
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        page.route(
            "https://harbourcity.example/**",
            lambda route: route.fulfill(body=NEWSROOM_IMAGE, content_type="image/png"),
        )
        return page

    yield new_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(fresh_page):
    """The newsletter tests' browser page: the newsroom's images answered locally (fresh_page)."""
    return fresh_page()


@pytest.fixture
def broken_layout(settings, tmp_path):
    """A layout folder of its own, so a test can break templates without touching the real ones."""
    folder = tmp_path / "email" / "broken"
    folder.mkdir(parents=True)
    real = Path(settings.BASE_DIR) / "templates" / "email" / "default"
    for f in real.iterdir():
        (folder / f.name).write_text(f.read_text().replace("email/default/", "email/broken/"))
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    return folder
