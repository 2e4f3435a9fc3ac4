"""What the editor saves and what is pasted from Word or Google Docs goes through the one sanitiser: formatting that
means something survives as tags, Office's styles, classes, XML and typed bullets do not, and nothing unsafe
remains. The pasted samples in data/ are hand-written in the shape those programs put on the clipboard."""

from pathlib import Path

import pytest

from newsletter.models import Article
from newsletter.services.composing import article_sanitize
from newsletter.services.sanitizing import html_sanitize

DATA = Path(__file__).parent / "data"


def test_word_paste_keeps_bold_italic_links_and_real_lists_and_drops_office_markup():
    html = html_sanitize((DATA / "pasted_word.html").read_text())
    assert html.startswith("<p><b>Council budget</b> passes <i>narrowly</i>.</p>")
    assert "<ul><li>Two new ferry routes" in html and "<li>A review of bus routes" in html
    assert "<ol><li>First vote" in html and "<li>Second vote" in html
    assert '<a href="https://harbourcity.example/budget" rel="noopener noreferrer">the budget</a>' in html
    for office in ("mso", "Mso", "class=", "style=", "·", "Normal", "o:p", "WordDocument", "<p></p>", "&nbsp;"):
        assert office not in html, office


def test_google_docs_paste_is_not_all_bold_and_keeps_its_bold_and_italic_spans():
    html = html_sanitize((DATA / "pasted_gdocs.html").read_text())
    assert "<b>" not in html  # the wrapper Docs puts around the whole paste
    assert "The vote was <strong>nine to six</strong>, after an <em>eight-hour</em> debate." in html
    assert html.startswith("<h2>What the council decided</h2>")
    assert "<ul><li><p>Northpoint route</p></li><li><p>Millbrook route</p></li></ul>" in html
    assert not html.endswith("<br>")
    assert "docs-internal-guid" not in html and "style=" not in html


@pytest.mark.parametrize("sample", ["pasted_word.html", "pasted_gdocs.html"])
def test_sanitising_twice_changes_nothing(sample):
    once = html_sanitize((DATA / sample).read_text())
    assert html_sanitize(once) == once


def test_editor_output_keeps_its_structure_and_loses_anything_unsafe():
    editor_html = (
        "<h3>What happens next</h3><p>The <strong>vote</strong> is <em>final</em>; "
        '<a href="https://harbourcity.example/next" target="_blank">details</a>.</p>'
        "<blockquote><p>We will build it.</p></blockquote><ol><li><p>One</p></li></ol><hr>"
        '<figure><img src="https://harbourcity.example/media/x.jpg" alt="A pier"><figcaption>The pier</figcaption>'
        "</figure><p></p>"
        '<p onclick="steal()">Hi<script>alert(1)</script><a href="javascript:alert(2)">x</a></p>'
    )
    html = html_sanitize(editor_html)
    for kept in ("<h3>What happens next</h3>", "<strong>vote</strong>", "<em>final</em>", "<blockquote>",
                 "<ol><li><p>One</p></li></ol>", "<hr>", '<img src="https://harbourcity.example/media/x.jpg" '
                 'alt="A pier">', "<figcaption>The pier</figcaption>"):  # fmt: skip
        assert kept in html, kept
    for gone in ("target=", "onclick", "script", "alert", "javascript:", "<p></p>"):
        assert gone not in html, gone


@pytest.mark.django_db
def test_markdown_is_kept_as_the_source_and_the_body_follows_it():
    article = Article(headline="H", slug="h", body_markdown="## Vote\n\nThe **council** voted.")
    article_sanitize(article)
    article.save()
    assert article.body_markdown == "## Vote\n\nThe **council** voted."
    assert article.body_html == "<h4>Vote</h4>\n<p>The <strong>council</strong> voted.</p>"
    article.body_markdown = "Changed *again*."
    article_sanitize(article)
    assert article.body_html == "<p>Changed <em>again</em>.</p>"
    # Emptying the Markdown hands the body to the editor, as it stands.
    article.body_markdown = ""
    article_sanitize(article)
    assert article.body_html == "<p>Changed <em>again</em>.</p>"


def test_word_nested_list_levels_become_nested_lists():
    def item(level: int, marker: str, text: str) -> str:
        return (
            f"<p class=MsoListParagraph style='mso-list:l0 level{level} lfo1'><![if !supportLists]>"
            f"<span style='mso-list:Ignore'>{marker}<span>&nbsp;</span></span><![endif]>{text}<o:p></o:p></p>"
        )

    pasted = item(1, "·", "Ferries") + item(2, "o", "Northpoint") + item(2, "o", "Millbrook") + item(1, "·", "Buses")
    assert html_sanitize(pasted) == (
        "<ul><li>Ferries<ul><li>Northpoint</li><li>Millbrook</li></ul></li><li>Buses</li></ul>"
    )
