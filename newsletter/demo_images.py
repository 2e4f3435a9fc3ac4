"""Pictures for the demo content, drawn with Pillow when `seed_demo` runs, so the demo's emails show real images
on a machine without internet (the newsroom's own image URLs in demo_content.py do not exist)."""

import io

from django.core.files.base import ContentFile
from PIL import Image, ImageDraw

# Per demo article: sky top and bottom, sea, and a landmark colour. Scenes, not photographs.
SCENES = {
    "council-approves-ferry-expansion": ((255, 196, 140), (255, 236, 210), (38, 84, 124), (250, 250, 250)),
    "hospital-waiting-times-fall": ((170, 200, 230), (225, 238, 248), (60, 110, 90), (236, 236, 236)),
    "harbour-lights-festival-returns": ((18, 20, 60), (70, 40, 110), (16, 30, 70), (255, 210, 90)),
    "port-workers-reach-pay-deal": ((200, 210, 220), (235, 240, 245), (50, 70, 90), (230, 120, 40)),
}
DEFAULT_SCENE = ((180, 200, 220), (230, 236, 244), (40, 70, 110), (240, 240, 240))


def demo_picture(slug: str, width: int = 1600, height: int = 900) -> ContentFile:
    """A harbour scene in the article's colours: sky gradient, sun, sea with waves, and a landmark."""
    top, bottom, sea, landmark = SCENES.get(slug, DEFAULT_SCENE)
    picture = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(picture)
    horizon = int(height * 0.62)
    for y in range(horizon):
        t = y / horizon
        draw.line([(0, y), (width, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    draw.ellipse([width * 0.68, height * 0.12, width * 0.68 + 150, height * 0.12 + 150], fill=(255, 240, 200))
    draw.rectangle([0, horizon, width, height], fill=sea)
    for row in range(horizon + 20, height, 36):
        for x in range((row * 7) % 90, width, 180):
            draw.arc([x, row, x + 90, row + 24], 200, 340, fill=tuple(min(255, c + 60) for c in sea), width=4)
    # A quay and a landmark on it: a row of buildings and a tower.
    draw.rectangle([0, horizon - 30, width * 0.55, horizon], fill=(70, 70, 80))
    for i, x in enumerate(range(40, int(width * 0.5), 150)):
        h = 90 + (i * 53) % 140
        draw.rectangle([x, horizon - 30 - h, x + 110, horizon - 30], fill=landmark, outline=(60, 60, 70), width=3)
        for wy in range(horizon - 20 - h, horizon - 50, 34):
            draw.rectangle([x + 20, wy, x + 40, wy + 16], fill=(90, 110, 140))
            draw.rectangle([x + 70, wy, x + 90, wy + 16], fill=(90, 110, 140))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    return ContentFile(buffer.getvalue(), name=f"{slug}.jpg")


def demo_logo(name: str) -> ContentFile:
    """A wordmark-like logo: the newsletter's initials in a red roundel on transparent ground (PNG)."""
    logo = Image.new("RGBA", (480, 160), (0, 0, 0, 0))
    draw = ImageDraw.Draw(logo)
    draw.ellipse([8, 8, 152, 152], fill=(163, 35, 27, 255))
    initials = "".join(word[0] for word in name.split() if word[:1].isupper())[:3] or "N"
    draw.text((80, 80), initials, fill=(255, 255, 255, 255), anchor="mm", font_size=64)
    draw.text((172, 80), name.split(" Daily")[0][:18], fill=(28, 28, 28, 255), anchor="lm", font_size=40)
    buffer = io.BytesIO()
    logo.save(buffer, "PNG")
    return ContentFile(buffer.getvalue(), name="logo.png")
