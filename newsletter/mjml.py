"""The one adapter around the MJML compiler (mrml, the Rust port of MJML, in-process)."""

import mrml


class MjmlError(Exception):
    """The MJML could not be compiled. `message` says why."""


def compile_mjml(source: str) -> str:
    """Compile an MJML document to responsive HTML."""
    try:
        return mrml.to_html(source).content
    except Exception as exc:  # mrml raises OSError/ValueError variants with a parser message
        raise MjmlError(str(exc)) from exc
