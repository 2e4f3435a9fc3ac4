"""Render benchmark: compile a 10-article issue (Django templates + mrml), and personalise it per recipient.

    python -m bench render [--runs 50] [--articles 10] [--recipients 20000] [--cli-runs 5]
    python -m bench.render ...          (same, without the dispatcher)

Needs no database: the issue is built from unsaved objects and rendered by the same code path
(rendering.render_blocks) that issue_render uses after its one query. Personalisation is measured twice: as the
preview does it (PersonalValues escaping + placeholders.substitute on the HTML and text strings), and as a worker
does it per recipient (messages.personalise: signed links, escaping and a byte join into the prebuilt MIME
skeleton, which is the figure that matters for sending).

For comparison, when node and the official mjml are installed (`make mjml-reference`), the same MJML compiled by
the official `mjml`: in one long-running node process (tests/mjml/compile.js --repeat), and per `mjml` CLI call.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

MJML_DIR = Path(__file__).resolve().parent.parent / "tests" / "mjml"


def _setup_django() -> None:
    # The test settings: no SECRET_KEY or database needed for a benchmark that touches neither.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()


def _issue(articles: int):
    from newsletter.demo_content import BODY_PARAGRAPH, COMMENTARY_PARAGRAPH
    from newsletter.models import Article, Issue, Newsletter
    from newsletter.services.rendering import ArticleBlock

    newsletter = Newsletter(
        name="The Harbour City Daily Brief",
        slug="daily-brief",
        postal_address="Harbour City Chronicle, 12 Quay Street, Harbour City HC1 4AB",
    )
    issue = Issue(newsletter=newsletter, subject="Ferries, hospitals and the festival", preheader="Five minutes.")
    blocks = [
        ArticleBlock.build(
            Article(
                headline=f"Headline {n}: council approves the ferry expansion",
                dek="Two new routes will link the northern suburbs to the harbour by 2028.",
                byline="Amara Okafor",
                section="City Hall",
                canonical_url=f"https://harbourcity.example/news/story-{n}",
                image_url=f"https://harbourcity.example/media/story-{n}.jpg",
                image_alt="A white passenger ferry docking at the Quay Street terminal",
                key_facts=[f"Fact {i}: a short sentence with a number, {i * 7}." for i in range(1, 5)],
                body_html="".join(f"<p>{BODY_PARAGRAPH}</p>" for _ in range(4)),
                commentary_html="".join(f"<p>{COMMENTARY_PARAGRAPH}</p>" for _ in range(5)),
                bottom_line="The ferries are coming; the rest of the city is waiting for its turn.",
            )
        )
        for n in range(articles)
    ]
    return issue, newsletter, blocks


def _time(fn, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def _official_mjml(source: str, runs: int, cli_runs: int) -> tuple[float, float] | None:
    """Mean ms per compile by the official mjml in one node process, and per CLI call; None without node/mjml."""
    node, cli = shutil.which("node"), MJML_DIR / "node_modules" / ".bin" / "mjml"
    if not node or not cli.exists():
        return None
    run = subprocess.run(
        [node, str(MJML_DIR / "compile.js"), "--repeat", str(runs)],
        input=source.encode(), capture_output=True, check=True,
    )  # fmt: skip
    in_process = json.loads(run.stdout)["ms"]
    calls = _time(
        lambda: subprocess.run([str(cli), "-i", "-s"], input=source.encode(), capture_output=True, check=True),
        cli_runs,
    )
    return in_process, statistics.mean(calls) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench render", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="compiles to average over (default 50)")
    parser.add_argument("--articles", type=int, default=10, help="articles in the issue (default 10)")
    parser.add_argument("--recipients", type=int, default=20000, help="personalisations to time (default 20000)")
    parser.add_argument("--cli-runs", type=int, default=5, help="official mjml CLI calls to time (default 5)")
    args = parser.parse_args(argv)
    _setup_django()

    from newsletter.delivery.messages import Recipient, skeleton_build
    from newsletter.delivery.messages import personalise as send_personalise
    from newsletter.mjml import compile_mjml
    from newsletter.placeholders import PersonalValues, substitute
    from newsletter.services.rendering import _context, _render_template, render_blocks
    from subscribers.links import preferences_url, unsubscribe_url

    issue, newsletter, blocks = _issue(args.articles)
    view_url = "https://news.example/archive/daily-brief/00000000-0000-0000-0000-000000000000/"
    rendered = render_blocks(issue, newsletter, blocks, view_url)  # warm the template cache
    mjml_source = _render_template("email/default/issue.mjml", _context(issue, newsletter, blocks, view_url))

    full = _time(lambda: render_blocks(issue, newsletter, blocks, view_url), args.runs)
    mrml_only = _time(lambda: compile_mjml(mjml_source), args.runs)

    tokens = [uuid.uuid4() for _ in range(args.recipients)]
    values = [
        PersonalValues(f"https://news.example/u/{t}/", f"https://news.example/preferences/{t}/", f"Reader <{i}> & co")
        for i, t in enumerate(tokens)
    ]

    def personalise(v: PersonalValues) -> None:
        substitute(rendered.html, v.for_html())
        substitute(rendered.text, v.for_text())

    start = time.perf_counter()
    for v in values:
        personalise(v)
    per_recipient = (time.perf_counter() - start) / len(values)

    # The sending hot path: the MIME skeleton built once, then per recipient two signed links, escaping and a
    # byte join (newsletter/services/messages.py), exactly what a worker does.
    newsletter.from_name, newsletter.from_email = "Harbour City Daily Brief", "brief@harbourcity.example"
    issue.pk = 1
    skeleton = skeleton_build(issue, rendered)
    recipients = [
        Recipient(delivery_id=i, email=f"reader{i}@example.com", name=f"Reader {i}", token=str(t))
        for i, t in enumerate(tokens)
    ]
    start = time.perf_counter()
    for recipient in recipients:
        send_personalise(skeleton, recipient)
    per_recipient_hot = (time.perf_counter() - start) / len(recipients)

    sample = tokens[: max(1, args.recipients // 10)]
    start = time.perf_counter()
    for t in sample:
        personalise(PersonalValues(unsubscribe_url(t, "daily-brief"), preferences_url(t), "Reader"))
    with_links = (time.perf_counter() - start) / len(sample)

    ms = lambda xs: statistics.mean(xs) * 1000  # noqa: E731
    print(f"issue: {args.articles} articles, HTML {len(rendered.html.encode()) / 1024:.1f} KB, "
          f"text {len(rendered.text.encode()) / 1024:.1f} KB")  # fmt: skip
    print(f"compile (templates + sanitise + text + mrml): mean {ms(full):.2f} ms, "
          f"median {statistics.median(full) * 1000:.2f} ms over {args.runs} runs")  # fmt: skip
    print(f"  of which mrml alone: mean {ms(mrml_only):.2f} ms")
    official = _official_mjml(mjml_source, args.runs, args.cli_runs)
    if official:
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        print(f"  official mjml 5 (node {node}): {official[0]:.2f} ms per compile in a long-running process, "
              f"{official[1]:.0f} ms per CLI call (mean of {args.cli_runs})")  # fmt: skip
    else:
        print("  official mjml: not installed (make mjml-reference), not measured")
    print(f"preview-style personalise (escape + str.replace on HTML and text): {per_recipient * 1e6:.1f} µs "
          f"over {len(values)} recipients")  # fmt: skip
    print(f"  with signed unsubscribe + preferences links built: {with_links * 1e6:.1f} µs per recipient")
    print(f"sending hot path per recipient (skeleton built once; signed links, escaping, byte join into the "
          f"whole message): {per_recipient_hot * 1e6:.1f} µs")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
