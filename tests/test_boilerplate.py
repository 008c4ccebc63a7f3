"""Boilerplate learned across articles of one source, in memory and in the store."""

from __future__ import annotations

from sqlmodel import Session, select

from digest.ingest.boilerplate import BoilerplateMemory
from digest.ingest.dumps import clean_text
from digest.models import SeenBlock
from digest.store.boilerplate import load_memory, save_memory

# Invented article sentences; each test article rotates and renumbers them.
BODY = [
    "The regional rail company will replace the signalling on the coastal line this autumn, "
    "closing the route between Alder and Brask for nine weekends between September and December.",
    "Replacement buses will run every twenty minutes during the closures, and the company says "
    "journeys will take about forty minutes longer than the usual train between the two towns.",
    "The old signals were installed in the nineteen-sixties and have caused most of the delays "
    "on the line over the past two years, according to figures published by the regulator.",
    "Passenger groups welcomed the work but asked the company to avoid closing the line on the "
    "weekends of the harvest fair, when the trains are usually at their busiest of the year.",
]

# An appeal written as prose, printed by one invented outlet under every article.
APPEAL = [
    "A note to our readers:",
    "Dear friends, independent local reporting has never been harder to fund, and every story "
    "you read here was paid for by people who decided that it mattered to them as well.",
    "If you can, please consider a small monthly gift so that we can keep our reporters in the "
    "courts, the council chamber and the harbour for another year. Thank you for reading.",
]


def _page(title: str, body: list[str]) -> str:
    return "\n\n".join(["Menu", title, *body, *APPEAL, "Share", "Privacy"])


def _stories() -> list[tuple[str, list[str]]]:
    """Four different invented articles: the body sentences rotated and renumbered."""
    out = []
    for n in range(4):
        body = [f"{line[:-1]} in the {n + 1}th district report." for line in BODY[n:] + BODY[:n]]
        out.append((f"Story number {n + 1} about the coastal line works", body))
    return out


def test_lines_repeated_across_three_articles_are_dropped_from_then_on() -> None:
    memory = BoilerplateMemory(source_name="gazette", threshold=3)
    results = [clean_text(_page(t, b), memory=memory) for t, b in _stories()]

    assert all(memory.is_boilerplate(line) for line in APPEAL)
    last = results[-1]
    assert not any(line in last.paragraphs for line in APPEAL)
    assert last.paragraphs == _stories()[-1][1]


def test_observing_the_same_article_twice_counts_it_once() -> None:
    memory = BoilerplateMemory(source_name="gazette", threshold=2)
    title, body = _stories()[0]
    for _ in range(3):
        clean_text(_page(title, body), memory=memory)

    assert not any(memory.is_boilerplate(line) for line in body)
    paragraphs = clean_text(_page(title, body), memory=memory).paragraphs
    assert all(line in paragraphs for line in body)


def test_other_sources_do_not_share_what_was_learned() -> None:
    gazette = BoilerplateMemory(source_name="gazette", threshold=1)
    gazette.observe(APPEAL)
    other = BoilerplateMemory(source_name="courier", threshold=1)

    assert gazette.is_boilerplate(APPEAL[1])
    assert not other.is_boilerplate(APPEAL[1])


def test_the_store_saves_and_loads_the_counts(session: Session) -> None:
    memory = load_memory(session, source_name="gazette")
    assert memory.counts == {}
    for title, body in _stories()[:3]:
        memory.observe([title, *body, *APPEAL])

    written = save_memory(session, memory)
    again = save_memory(session, memory)
    session.commit()

    # three fingerprints, three titles, the rotated body lines of each, the appeal once
    assert written == 3 + 3 * (1 + len(BODY)) + len(APPEAL)
    assert again == 0
    loaded = load_memory(session, source_name="gazette")
    assert loaded.counts == memory.counts
    assert all(loaded.is_boilerplate(line) for line in APPEAL)
    assert load_memory(session, source_name="courier").counts == {}
    rows = session.exec(select(SeenBlock).where(SeenBlock.source_name == "gazette")).all()
    assert max(row.articles for row in rows) == 3


def test_saving_updates_existing_rows_instead_of_adding(session: Session) -> None:
    memory = load_memory(session, source_name="gazette")
    memory.observe(APPEAL)
    save_memory(session, memory)
    session.commit()
    memory = load_memory(session, source_name="gazette")
    memory.observe([*APPEAL, "something new"])
    save_memory(session, memory)
    session.commit()

    rows = session.exec(select(SeenBlock).where(SeenBlock.source_name == "gazette")).all()
    assert len(rows) == 2 + len(APPEAL) + 1  # two fingerprints, three appeal lines, one new
    assert load_memory(session, source_name="gazette").is_boilerplate(APPEAL[1]) is False
    assert load_memory(session, source_name="gazette", threshold=2).is_boilerplate(APPEAL[1])
