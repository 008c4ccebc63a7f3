"""A fixed, self-written issue of 12 items: for golden files, benchmarks and template work.

The text is the project's own (no third-party articles). It exercises what real issues bring:
HTML-ish titles, plain-http links, items without images or alt text, long blurbs, several
outlets reporting one story.
"""

from __future__ import annotations

from datetime import date

from digest.render.context import DigestContent, DigestItem

_SECTIONS = ("World", "Politics", "Business", "Science")
_OUTLETS = ("Northern Courier", "The Daily Lantern", "Harbour Gazette")
_TOPICS = (
    "Harbour authority approves the long-delayed tidal barrier",
    "Parliament votes to review the regional rail timetable",
    "Bakery co-operative doubles its members in a year",
    "Volunteers count a record number of migrating cranes",
    "City council publishes its budget in plain language",
    "Ferry operator & unions agree a <em>four-day</em> week",
    "Researchers map the river's forgotten tributaries",
    "Library lends out tools, and the queue goes round the block",
    "Small exporters weigh the cost of new customs forms",
    "Night-sky reserve extends its boundary by twelve miles",
    "School meals pilot ends with surprising results",
    "Museum returns a carved panel to the village it came from",
)
_BLURB = (
    "{topic}. The decision follows months of consultation, and the people most affected say "
    "they were heard this time. Officials expect the first changes within the year, while "
    "critics ask who pays for the next stage."
)


def sample_items(count: int = 12) -> list[DigestItem]:
    """Return ``count`` items that cover the cases the templates must handle."""
    items = []
    for i in range(count):
        topic = _TOPICS[i % len(_TOPICS)]
        scheme = "http" if i % 5 == 1 else "https"
        items.append(
            DigestItem(
                title=topic,
                url=f"{scheme}://news{i % 3}.example.com/2017/03/{i:02d}/story?ref=feed&id={i}",
                source=_OUTLETS[i % 3],
                section=_SECTIONS[i % 4],
                blurb=_BLURB.format(topic=topic.replace("<em>", "").replace("</em>", "")),
                image_url=f"https://images.example.com/2017/{i:02d}.jpg" if i % 3 != 2 else None,
                image_alt=None if i % 4 == 3 else f"Photograph for: {topic}",
                also_reported_by=tuple(o for o in _OUTLETS if o != _OUTLETS[i % 3])
                if i % 4 == 0
                else (),
            )
        )
    return items


def sample_content(count: int = 12) -> DigestContent:
    """Return the fixed issue (week 2017-W11) with ``count`` items."""
    return DigestContent(
        subject="The tidal barrier gets its green light, and 11 more stories",
        preheader="A harbour decision, a rail review and a record year for cranes.",
        week="2017-W11",
        issue_date=date(2017, 3, 17),
        items=sample_items(count),
        web_url="https://news.example.org/archive/2017-W11",
    )
