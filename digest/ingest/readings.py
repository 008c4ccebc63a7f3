"""Two readings of an article page, and how the HTML cleaner combines them.

trafilatura reads the markup, without the dialogs, popups and tooltips a reader does not see
beside the article (:func:`without_hidden`). The line classifier (:mod:`digest.ingest.textmodel`)
reads the page's visible text, one block per line, after the page has also lost the regions
whose role is not the article: navigation, page headers and footers, sidebars and comment
threads (by tag, ARIA role and a few generic class names such as ``comments`` or ``modal``). A
region that holds a good part of trafilatura's text stays whatever it is called: some sites put
the article in an ``<aside>``.

The two readings are then combined:

- trafilatura's reading is kept, less the lines the classifier is nearly sure are boilerplate;
- the classifier's reading replaces it when trafilatura found under a third of it (trafilatura
  chose the wrong block of the page);
- paragraphs the classifier keeps *between* two of trafilatura's paragraphs, whose words
  trafilatura does not have, are put back in their place (trafilatura drops lists, tables and
  boxed sections in the middle of articles). Nothing is added before the first or after the last
  of trafilatura's paragraphs: that is where related stories and sign-up boxes sit.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import lxml.html

from digest.errors import ExtractionError
from digest.ingest import page_meta
from digest.ingest.extract import Extracted

_WORD = re.compile(r"\w+", re.UNICODE)
# The classifier's reading replaces trafilatura's below a third of its length.
_SECOND_MIN_WORDS = 50
_SECOND_SWITCH_RATIO = 0.3
# A line of trafilatura's reading that the line classifier gives less than this body
# probability is dropped (navigation, prompts and bylines that sit inside the article block).
_CONFIDENT_BOILERPLATE = 0.15
# A region holding this share of trafilatura's word trigrams is part of the article.
_HOLDS_ARTICLE = 0.2
# A recovered paragraph has at most this share of its trigrams in trafilatura's reading.
_NOVEL = 0.2

_ROLE_TAGS = frozenset({"nav", "aside", "footer", "header"})
_ROLES = frozenset({"navigation", "complementary"})
_HIDDEN_ROLES = frozenset({"dialog", "alertdialog", "tooltip"})
_HIDDEN_HINT = re.compile(r"(?:^|[-_\s])(?:modal|popup|tooltip)(?:$|[-_\s\d])", re.IGNORECASE)
_COMMENTS_HINT = re.compile(
    r"(?:^|[-_\s])(?:comments?|comment-?list|commentlisting|respond|discussion|disqus)"
    r"(?:$|[-_\s\d])",
    re.IGNORECASE,
)


class TextModels(NamedTuple):
    """The text cleaner's line and headline models (see ``digest.ingest.textmodel``)."""

    line: Any
    headline: Any


def words(text: str) -> list[str]:
    """The casefolded words of a text."""
    return _WORD.findall(text.casefold())


def count(lines: Sequence[str]) -> int:
    """The number of words in some lines."""
    return sum(len(_WORD.findall(line)) for line in lines)


def trigrams(lines: Sequence[str]) -> set[tuple[str, ...]]:
    """The word trigrams of some lines read as one text."""
    ws = [w for line in lines for w in words(line)]
    return {tuple(ws[i : i + 3]) for i in range(len(ws) - 2)}


def is_hidden(element: lxml.html.HtmlElement) -> bool:
    """True for what a reader does not see beside the article: dialogs, tooltips, elements
    hidden from assistive technology, and popups or modals by a generic class/id name.

    The ``hidden`` attribute and ``display: none`` do not count: pages use them for text that
    scripts reveal (streamed server rendering, collapsed sections of the article).
    """
    if element.tag == "dialog" or (element.get("role") or "").lower() in _HIDDEN_ROLES:
        return True
    if (element.get("aria-hidden") or "").lower() == "true":
        return True
    return bool(_HIDDEN_HINT.search(_names(element)))


def is_boilerplate_region(element: lxml.html.HtmlElement) -> bool:
    """True for an element whose role is not article text: hidden (:func:`is_hidden`),
    navigation, a page header or footer, a sidebar, or a comment thread (by its class/id)."""
    if element.tag in _ROLE_TAGS or (element.get("role") or "").lower() in _ROLES:
        return True
    return is_hidden(element) or bool(_COMMENTS_HINT.search(_names(element)))


def _names(element: lxml.html.HtmlElement) -> str:
    return f"{element.get('class') or ''} {element.get('id') or ''}"


def without_hidden(root: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    """A copy of ``root`` without its hidden elements (:func:`is_hidden`), except one that
    holds half of the page's words or more (some pages wrap everything in a "popup")."""
    root = copy.deepcopy(root)
    total = count([root.text_content()])
    doomed = [
        element
        for element in root.iter()
        if isinstance(element.tag, str)
        and element.tag not in {"html", "head", "body"}
        and is_hidden(element)
        and count([element.text_content()]) * 2 < total
    ]
    return _drop(root, doomed)


def without_boilerplate(
    root: lxml.html.HtmlElement, *, article: set[tuple[str, ...]]
) -> lxml.html.HtmlElement:
    """A copy of ``root`` without its boilerplate regions, except those that hold at least a
    fifth of ``article`` (trigrams of the text believed to be the article)."""
    root = copy.deepcopy(root)
    doomed: list[lxml.html.HtmlElement] = []
    stack = [root]
    while stack:
        for child in stack.pop():
            if not isinstance(child.tag, str):
                continue
            if is_boilerplate_region(child) and not _holds(child, article):
                doomed.append(child)
            else:
                stack.append(child)
    return _drop(root, doomed)


def _drop(
    root: lxml.html.HtmlElement, doomed: list[lxml.html.HtmlElement]
) -> lxml.html.HtmlElement:
    for element in doomed:
        if element.getparent() is not None:  # an ancestor may have gone already
            element.drop_tree()  # its tail text stays with the parent
    return root


def _holds(element: lxml.html.HtmlElement, article: set[tuple[str, ...]]) -> bool:
    if not article:
        return False
    found = trigrams([element.text_content()]) & article
    return len(found) >= _HOLDS_ARTICLE * len(article)


def second_opinion(
    tree: lxml.html.HtmlElement,
    *,
    article: Sequence[str],
    url: str | None,
    models: TextModels | None,
) -> tuple[Extracted | None, dict[str, float]]:
    """The line classifier's reading of the page without its boilerplate regions (see
    :func:`without_boilerplate`; ``article`` is trafilatura's reading), and its body
    probability for each line of the whole page, by the line's words."""
    from digest.ingest.dumps import assemble, text_lines
    from digest.ingest.lines import features
    from digest.ingest.textmodel import default_model

    model = models.line if models is not None else default_model()
    body = tree.find("body")
    root = body if body is not None else tree
    lines = text_lines("\n\n".join(page_meta.block_texts(root)))
    if not lines:
        return None, {}
    by_words: dict[str, float] = {}
    for line, score in zip(lines, model.scores(features(lines)), strict=True):
        by_words.setdefault(" ".join(words(line)), score)
    pruned = without_boilerplate(root, article=trigrams(article))
    lines = text_lines("\n\n".join(page_meta.block_texts(pruned)))
    if not lines:
        return None, by_words
    try:
        reading = assemble(
            lines, model.scores(features(lines)), threshold=model.threshold_body, url=url,
            headline=models.headline if models is not None else None,
        )  # fmt: skip
    except ExtractionError:
        reading = None
    return reading, by_words


def prefer_second(html_lines: Sequence[str], text_lines: Sequence[str]) -> bool:
    """True when trafilatura found less than a third of what the line classifier keeps: it
    chose the wrong block of the page."""
    theirs = count(text_lines)
    return theirs >= _SECOND_MIN_WORDS and count(html_lines) < _SECOND_SWITCH_RATIO * theirs


def drop_confident_boilerplate(lines: Sequence[str], scores: dict[str, float]) -> list[str]:
    """Drop the lines the line classifier is nearly sure are not article text."""
    return [
        line for line in lines if scores.get(" ".join(words(line)), 1.0) >= _CONFIDENT_BOILERPLATE
    ]


def recover(lines: Sequence[str], second: Sequence[str]) -> list[str]:
    """``lines`` with the paragraphs of ``second`` that sit between two of them and are new
    (at most a fifth of their trigrams in ``lines``) put back in their place."""
    if not lines or not second:
        return list(lines)
    have = trigrams(lines)
    keys = [" ".join(words(line)) for line in lines]
    other = [" ".join(words(line)) for line in second]
    matcher = difflib.SequenceMatcher(None, keys, other, autojunk=False)
    blocks = matcher.get_opcodes()
    out: list[str] = []
    for number, (kind, i1, i2, j1, j2) in enumerate(blocks):
        out += lines[i1:i2]
        if kind in {"insert", "replace"} and 0 < number < len(blocks) - 1:
            out += [line for line in second[j1:j2] if _novel(line, have)]
    return out


def _novel(line: str, have: set[tuple[str, ...]]) -> bool:
    grams = trigrams([line])
    return bool(grams) and len(grams & have) <= _NOVEL * len(grams)
