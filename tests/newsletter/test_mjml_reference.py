"""The official MJML (npm `mjml` 5, installed in tests/mjml/ by `make test`) as the reference for what mrml
compiles in production: our layout passes its strict validation, both reject a broken tag, and in headless
Chromium the two compilers' HTML renders to the same pixels at 600 and 375 px."""

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from newsletter.mjml import MjmlError, compile_mjml
from newsletter.models import IssueArticle
from newsletter.placeholders import PersonalValues, substitute
from newsletter.services.blocks import layouts_available
from newsletter.services.images import image_upload
from newsletter.services.rendering import RenderError, issue_mjml, issue_render
from tests.factories import ArticleFactory, issue_with_articles, picture_upload

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db

MJML_DIR = ROOT / "tests" / "mjml"
# Screenshots of the two compilers' output may differ in at most this fraction of pixels (measured: 0).
MAX_DIFFERENT_PIXELS = 0.001


@pytest.fixture
def official_mjml(require):
    """official_mjml(source, validation) → {"html", "errors"} from the official compiler (tests/mjml/compile.js);
    html is empty when strict validation rejects the document."""
    node = shutil.which("node")
    require(bool(node) and (MJML_DIR / "node_modules" / "mjml").is_dir(), "node + mjml (npm ci --prefix tests/mjml)")

    def compile_official(source: str, validation: str = "strict") -> dict:
        result = subprocess.run(
            [node, str(MJML_DIR / "compile.js"), "--validation", validation],
            input=source.encode(),
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode()
        return json.loads(result.stdout)

    return compile_official


@pytest.fixture
def newsroom_issue():
    """Nine articles in the sample's shape, with the variations a real issue has: per-issue blurbs, an article
    without an image, one without key facts or commentary, HTML lists and links in the body."""
    issue = issue_with_articles(7)
    extras = [
        ArticleFactory(image_url="", image_alt=""),
        ArticleFactory(
            key_facts=[],
            commentary_html="",
            body_html='<p>Read <a href="https://harbourcity.example/report">the report</a>.</p><ul><li>one</li></ul>',
        ),
    ]
    for position, article in enumerate(extras, start=7):
        IssueArticle.objects.create(issue=issue, article=article, position=position)
    issue.items.filter(position__in=[0, 3]).update(blurb="Our editor's pick.\nRead this one first.")
    return issue


@pytest.mark.parametrize("layout", layouts_available())
def test_every_shipped_layout_passes_the_official_mjml_strict_validation(
    newsroom_issue, layout, media_root, official_mjml
):
    """Every layout, with everything it can show: sections, a sponsor with an image, a logo, uploaded images."""
    newsletter = newsroom_issue.newsletter
    newsletter.template = layout
    newsletter.header_text, newsletter.footer_text, newsletter.accent_colour = "Mornings", "By the newsroom", "#0b6e4f"
    newsletter.logo = image_upload(picture_upload("logo.png", width=400, height=120, fmt="PNG"), alt_text="Logo")
    newsletter.save()
    newsroom_issue.sponsor_name, newsroom_issue.sponsor_url = "Quay Street Bakery", "https://bakery.example/"
    newsroom_issue.sponsor_text = "Fresh bread from 6 a.m."
    newsroom_issue.sponsor_image = image_upload(picture_upload("bread.jpg"), alt_text="Loaves on a counter")
    newsroom_issue.save()
    newsroom_issue.items.filter(position__lt=4).update(section="City hall")
    newsroom_issue.items.filter(position__gte=4).update(section="Health")
    first = newsroom_issue.items.order_by("position").first().article
    first.image = image_upload(picture_upload("ferry.jpg"), alt_text="A ferry")
    first.save()
    source = issue_mjml(newsroom_issue)
    assert ">City hall</h2>" in source and "Sponsored by" in source
    result = official_mjml(source, "strict")
    assert result["errors"] == []
    assert result["html"].startswith("<!doctype html>")
    # The MJML we validate is the one production compiles.
    assert compile_mjml(source) == issue_render(newsroom_issue).html


MISSPELT = [
    ("_header.mjml", "<mj-column>", "<mj-colum>", "mj-colum"),
    ("_article.mjml", "<mj-divider ", "<mj-dividr ", "mj-dividr"),
]


@pytest.mark.parametrize(("partial", "good", "bad", "tag"), MISSPELT)
def test_a_misspelt_tag_is_rejected_by_both_compilers_at_the_same_line(
    broken_layout, partial, good, bad, tag, official_mjml
):
    path = broken_layout / partial
    path.write_text(path.read_text().replace(good, bad, 1).replace(good.replace("<", "</"), bad.replace("<", "</"), 1))
    issue = issue_with_articles(2, newsletter__template="broken")

    with pytest.raises(RenderError) as ours:
        issue_render(issue)
    reference = official_mjml(issue_mjml(issue), "strict")

    assert reference["html"] == ""
    # mjml lists every occurrence (the article partial is used twice); ours stops at the first, the same line.
    assert {e["tagName"] for e in reference["errors"]} == {tag}
    assert reference["errors"][0]["line"] == ours.value.line
    assert f"<{tag}> is not an MJML element" in ours.value.message


def test_an_unclosed_section_is_rejected_by_both_compilers(broken_layout, official_mjml):
    article = broken_layout / "_article.mjml"
    article.write_text(article.read_text().replace("</mj-section>", "", 1))
    source = issue_mjml(issue_with_articles(2, newsletter__template="broken"))

    with pytest.raises(MjmlError, match="<mj-section>"):
        compile_mjml(source)
    reference = official_mjml(source, "strict")
    assert reference["html"] == ""
    assert any("mj-section cannot be used inside mj-section" in e["message"] for e in reference["errors"])


def screenshot(page, html: str, width: int) -> Image.Image:
    page.set_viewport_size({"width": width, "height": 900})
    page.set_content(html, wait_until="load")
    return Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")


def different_pixels(a: Image.Image, b: Image.Image) -> float:
    """The fraction of pixels that differ; where one screenshot is taller, its extra rows all count."""
    width, height = max(a.width, b.width), max(a.height, b.height)
    canvas_a, canvas_b = Image.new("RGB", (width, height)), Image.new("RGB", (width, height), (255, 0, 255))
    canvas_a.paste(a)
    canvas_b.paste(b)
    mask = ImageChops.difference(canvas_a, canvas_b).convert("L").point(lambda v: 255 if v else 0)
    return mask.histogram()[255] / (width * height)


@pytest.mark.browser
@pytest.mark.parametrize("width", [600, 375])
def test_mrml_and_the_official_mjml_render_the_same_pixels(
    newsroom_issue, fresh_page, width, screenshot_dir, record_property, official_mjml
):
    source = issue_mjml(newsroom_issue)
    values = PersonalValues("https://n.example/u/t/", "https://n.example/p/t/", "Reader").for_html()
    ours = substitute(compile_mjml(source), values)
    reference = substitute(official_mjml(source, "strict")["html"], values)
    assert ours != reference  # two compilers, two different documents...

    shots = []
    for name, html in (("mrml", ours), ("mjml", reference)):
        shots.append(screenshot(fresh_page(), html, width))  # a fresh page each, so nothing carries over
        shots[-1].save(screenshot_dir / f"reference-{name}-{width}.png")

    fraction = different_pixels(*shots)
    marked = shots[1].copy()
    marked.paste((0, 0, 0), (0, 0, 10, 10))  # the measure does see a 10 x 10 px difference
    assert different_pixels(shots[1], marked) == 100 / (marked.width * marked.height)
    record_property(f"different_pixels_{width}", fraction)
    print(f"{width}px: mrml {shots[0].size}, mjml {shots[1].size}, different pixels {fraction:.6%}")
    assert shots[0].height > 5000  # ...and a real, long email, not a blank page
    assert fraction <= MAX_DIFFERENT_PIXELS, f"{fraction:.4%} of pixels differ at {width}px"
