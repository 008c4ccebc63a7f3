"""The only importer of mjml-python (MRML): MJML in, email HTML out.

MRML differs from the official mjml in ways that matter for mail (measured in bench/fidelity.py;
see /work/shared/EMAIL.md): it writes no ``alt`` on an ``<mj-image>`` without one, accepts
unknown tags silently, and nests HTML comments inside Outlook conditionals. So comments are
stripped, and every ``<img>`` is checked here; the official validator runs in the tests.
MRML also rejects spaces between two tags in ``<mj-head>`` unless a newline is among them
("unexpected token in root template"): templates keep head elements on lines of their own.
"""

from __future__ import annotations

import re

from mjml import mjml2html

_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ALT = re.compile(r"\salt\s*=", re.IGNORECASE)


class MjmlCompileError(ValueError):
    """The MJML did not compile: a template bug, not something a reader or operator caused."""


def compile_mjml(source: str) -> str:
    """Return the HTML that MRML compiles ``source`` to.

    No web fonts are linked (the brand font stack uses system fonts), comments are dropped, and
    an ``<img>`` left without ``alt`` gets an empty one (decorative) so screen readers skip it
    instead of reading the file name. Raises MjmlCompileError when MRML rejects the MJML.
    """
    try:
        html = mjml2html(source, disable_comments=True, fonts={})
    except ValueError as exc:
        raise MjmlCompileError(f"MJML did not compile: {exc}") from exc
    return _IMG.sub(_with_alt, html)


def _with_alt(match: re.Match[str]) -> str:
    tag = match.group(0)
    if _ALT.search(tag):
        return tag
    return tag[:4] + ' alt=""' + tag[4:]
