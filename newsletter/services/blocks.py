"""What a layout is given besides the articles: the newsletter's branding, the sponsor block, and the articles
grouped under their section headings. Every layout under templates/email/ reads the same names."""

from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from newsletter.models import Issue, Newsletter
from newsletter.services.images import EmailImage, image_for_email

DEFAULT_ACCENT = "#a3231b"


@dataclass(frozen=True)
class Brand:
    accent: str
    logo: EmailImage | None
    header_text: str
    footer_text: str


def brand_for(newsletter: Newsletter) -> Brand:
    return Brand(
        # Validated as #rrggbb on the model; the fallback keeps a row saved around the validator renderable.
        accent=newsletter.accent_colour if _is_hex(newsletter.accent_colour) else DEFAULT_ACCENT,
        logo=image_for_email(newsletter.logo, alt=newsletter.name) if newsletter.logo_id else None,
        header_text=newsletter.header_text,
        footer_text=newsletter.footer_text,
    )


def _is_hex(value: str) -> bool:
    return len(value or "") == 7 and value[0] == "#" and all(c in "0123456789abcdefABCDEF" for c in value[1:])


@dataclass(frozen=True)
class Sponsor:
    name: str
    url: str
    text: str
    image: EmailImage | None


def sponsor_for(issue: Issue) -> Sponsor | None:
    """The issue's sponsor block, or None when it has no sponsor name."""
    if not issue.sponsor_name.strip():
        return None
    image = image_for_email(issue.sponsor_image, alt=issue.sponsor_name) if issue.sponsor_image_id else None
    return Sponsor(name=issue.sponsor_name, url=issue.sponsor_url, text=issue.sponsor_text, image=image)


@dataclass
class Section:
    heading: str
    articles: list = field(default_factory=list)


def sections_group(blocks: list) -> list[Section]:
    """Consecutive articles with the same heading (compared without case) share one section, in issue order; an
    article without a heading gets a section without one."""
    sections: list[Section] = []
    for block in blocks:
        heading = (block.heading or "").strip()
        if sections and sections[-1].heading.casefold() == heading.casefold():
            sections[-1].articles.append(block)
        else:
            sections.append(Section(heading, [block]))
    return sections


def layouts_available() -> list[str]:
    """The layouts shipped (and added by an operator): folders under templates/email/ with both an issue.mjml and
    an issue.txt."""
    names = set()
    for folder in settings.TEMPLATES[0]["DIRS"]:
        root = Path(folder) / "email"
        if root.is_dir():
            names.update(p.name for p in root.iterdir() if (p / "issue.mjml").is_file() and (p / "issue.txt").is_file())
    return sorted(names, key=lambda name: (name != "default", name))
