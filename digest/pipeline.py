"""The one API that the CLI, the web app and the jobs call.

    ingest_paths()  files → clean articles in the store
    build_issue()   the week's candidates → selection → rendered, frozen issue
    send_issue()    the frozen issue → every confirmed subscriber, once (the delivery ledger)

Each function takes the settings and an explicit ``now``; effects happen through ``digest.db``
sessions and the injected sender.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import Session

from digest.db import make_engine, session_scope
from digest.errors import StateError
from digest.ingest.run import IngestReport, Item, default_source, expand, items_in, store_items
from digest.models import Article, EditKind, Issue, IssueItem, IssueStatus
from digest.send.engine import SendReport
from digest.send.smtp import Sender
from digest.settings import Settings
from digest.store import articles as article_store
from digest.store import issues as issue_store

if TYPE_CHECKING:
    from digest.select import Candidate


# --- ingest ---------------------------------------------------------------------------------


def ingest_paths(
    paths: Sequence[Path],
    *,
    settings: Settings,
    now: datetime,
    source_name: str | None = None,
    on_item: Callable[[Item], None] | None = None,
) -> IngestReport:
    """Clean and store every article in the given files and folders."""
    engine = make_engine(settings)
    items = (item for path in expand(paths) for item in items_in(path))
    return store_items(
        engine,
        items,
        source_for=(lambda _item: source_name) if source_name else default_source,
        now=now,
        on_item=on_item,
    )


def ingest_all(
    *,
    settings: Settings,
    now: datetime,
    names: Sequence[str] | None = None,
    on_source: Callable[..., None] | None = None,
    stop: threading.Event | None = None,
) -> IngestReport:
    """Fetch every due source (or the named ones) and store their articles; one transaction
    per source, failures recorded on the source row; no new source after ``stop`` is set.
    See ``digest.ingest.run.ingest_sources``."""
    from digest.ingest.run import ingest_sources

    return ingest_sources(
        make_engine(settings), settings=settings, now=now, names=names, on_source=on_source,
        stop=stop,
    )  # fmt: skip


# --- build ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuildResult:
    issue: Issue | None
    candidates: int
    stories: int
    picked: int
    message: str
    changes: list[str] = field(default_factory=list)


def iso_week_window(week: str, *, settings: Settings) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) of an ISO week ("2017-W11"), in the newsletter's zone."""
    from digest.errors import InputError

    try:
        year, number = week.split("-W")
        monday = date.fromisocalendar(int(year), int(number), 1)
    except ValueError:
        raise InputError(f"week {week!r} is not an ISO week like 2017-W11") from None
    start = datetime.combine(monday, time(0), tzinfo=settings.zone)
    end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=settings.zone)
    return start, end


def next_send_time(now: datetime, *, settings: Settings) -> datetime:
    """The first configured send time ("fri 08:00", local) at or after ``now``."""
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    day_text, _, clock = settings.send_at.strip().lower().partition(" ")
    hour, minute = (int(x) for x in clock.split(":"))
    local = now.astimezone(settings.zone)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if day.weekday() == days.index(day_text[:3]):
            candidate = datetime.combine(day, time(hour, minute), tzinfo=settings.zone)
            if candidate >= local:
                return candidate
    raise AssertionError("unreachable: a weekday recurs within 8 days")


def week_key(moment: datetime, *, settings: Settings) -> str:
    iso = moment.astimezone(settings.zone).date().isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def build_issue(
    *,
    settings: Settings,
    now: datetime,
    week: str | None = None,
    force: bool = False,
    window: tuple[datetime, datetime] | None = None,
) -> BuildResult:
    """Select the week's highlights, render them once and freeze them as the week's issue.

    Without ``week`` the window is the seven days before the next send time. A draft is
    rebuilt (and the result says what changed); any other status raises StateError. Too few
    stories raise StateError unless ``force``; none at all builds nothing. ``window`` overrides
    the week's [start, end) (an edited draft is rebuilt over its own window). The editor's
    pins, drops, moves and wording on a draft are re-applied.
    """
    from digest.select import Edits, SelectionOptions, apply_edits, select_highlights, week_window
    from digest.store import items as item_store

    if week is None:
        send_at = next_send_time(now, settings=settings)
        start, end = week_window(send_at=send_at, zone=settings.zone, days=settings.window_days)
        week = week_key(send_at, settings=settings)
    else:
        start, end = iso_week_window(week, settings=settings)
    if window is not None:
        start, end = window

    engine = make_engine(settings)
    with session_scope(engine) as session:
        existing = issue_store.issue_for_week(session, newsletter=settings.newsletter_id, week=week)
        if existing is not None and existing.status != IssueStatus.DRAFT:
            raise StateError(
                f"the issue for {week} is {existing.status}; only a draft can be rebuilt"
            )
        edits = item_store.edits_of(session, existing.id) if existing and existing.id else Edits()
        rows = article_store.published_between(session, start=start, end=end)
        in_window = {a.id for a in rows}  # a pinned article from outside the week still counts
        rows += item_store.articles_by_id(session, [i for i in edits.pinned if i not in in_window])
        options = SelectionOptions.from_settings(settings)
        sources = item_store.source_settings(session)
        selection = apply_edits(
            select_highlights(
                [
                    _candidate(a, settings=settings, source=sources.get(a.source_id),
                               boost=edits.boosts.get(a.id or 0, 0.0))  # fmt: skip
                    for a in rows
                ],
                now=now, options=options, pinned=edits.pinned, dropped=edits.dropped,
            ),
            edits,
        )  # fmt: skip
        if selection.stories == 0 or not selection.picks:
            return BuildResult(None, len(rows), 0, 0, f"no articles in {week}: nothing built")
        if selection.stories < settings.min_stories and not force:
            raise StateError(
                f"only {selection.stories} stories in {week} (minimum {settings.min_stories}); "
                "add sources or build anyway with --force"
            )
        by_id = {a.id: a for a in rows}
        items = [
            IssueItem(
                issue_id=0,
                article_id=pick.article_id,
                position=position,
                section=pick.section,
                title=pick.title,
                url=pick.url,
                source_name=pick.source,
                blurb=pick.blurb,
                image_url=by_id[pick.article_id].image_url,
                image_alt=by_id[pick.article_id].image_alt,
                also_reported_by=list(pick.also_reported_by),
                score=pick.score,
                score_parts=dict(pick.score_parts),
                pinned=pick.article_id in edits.pinned,
            )
            for position, pick in enumerate(selection.picks, start=1)
        ]
        issue = existing or Issue(newsletter=settings.newsletter_id, week=week)
        before = _item_titles(session, issue)
        issue.subject, issue.preheader = selection.subject, selection.preheader
        issue.window_start, issue.window_end = start, end
        issue.left_out = [asdict(x) for x in selection.left_out[:LEFT_OUT_KEPT]]
        _render_into(issue, items, settings=settings, issue_date=end.date() - timedelta(days=1))
        issue.built_at = now
        session.add(issue)
        session.flush()
        assert issue.id is not None
        issue_store.replace_items(session, issue.id, items)
        changes = _changes(before, [i.title for i in items]) if existing else []
        verb = "rebuilt" if existing else "built"
        return BuildResult(
            issue, len(rows), selection.stories, len(items),
            f"{verb} issue {week}: {len(items)} items from {selection.stories} stories "
            f"({len(rows)} candidate articles)",
            changes,
        )  # fmt: skip


LEFT_OUT_KEPT = 30  # the best stories left out, kept with the issue for `digest issue explain`


def edit_issue(
    *,
    settings: Settings,
    now: datetime,
    ref: str | int | None,
    kind: EditKind,
    article_id: int | None = None,
    item: int | None = None,
    position: int | None = None,
    text: str | None = None,
    amount: float | None = None,
) -> BuildResult:
    """Record an editor's change on a draft (pin, drop, move, blurb, subject, preheader,
    boost), then rebuild the draft over its own window and as of its build time, so only the
    edit (and any article ingested since) changes it. ``item`` is a 1-based position in the
    issue. If the rebuild fails, the stored edits are put back as they were.

    Raises StateError for an issue that is not a draft, NotFound for an unknown issue, item or
    article, InputError for empty wording.
    """
    from digest.errors import InputError
    from digest.store import items as item_store

    if kind in (EditKind.BLURB, EditKind.SUBJECT, EditKind.PREHEADER) and not (text or "").strip():
        raise InputError(f"the new {kind} is empty; give the text in quotes")
    engine = make_engine(settings)
    with session_scope(engine) as session:
        issue = issue_store.get_issue(session, newsletter=settings.newsletter_id, ref=ref)
        item_store.require_draft(issue)
        assert issue.id is not None
        if item is not None:
            article_id = item_store.item_at(session, issue=issue, position=item).article_id
        elif article_id is not None:
            item_store.article(session, article_id)
        before = item_store.edit_rows(session, issue.id)
        item_store.record_edit(
            session, issue_id=issue.id, kind=kind, now=now, article_id=article_id,
            position=position, text=text.strip() if text else None, amount=amount,
        )  # fmt: skip
        issue_id, week, built_at = issue.id, issue.week, issue.built_at or now
        window = (issue.window_start, issue.window_end)
    try:
        result = build_issue(
            settings=settings, now=built_at, week=week, force=True,
            window=window if window[0] and window[1] else None,  # type: ignore[arg-type]
        )  # fmt: skip
    except BaseException:
        # The draft stays as it was built, so the edits it reflects stay as they were too.
        with session_scope(engine) as session:
            item_store.restore_edits(session, issue_id=issue_id, rows=before)
        raise
    what = f"{kind} of article {article_id}" if article_id is not None else f"new {kind}"
    return replace(result, message=f"{what} recorded; {result.message}")


def _candidate(
    article: Article,
    *,
    settings: Settings,
    source: tuple[float, str | None] | None = None,
    boost: float = 0.0,
) -> Candidate:
    """The article as selection sees it; ``source`` is its source's (weight, section)."""
    from digest.select import Candidate

    weight, source_section = source or (1.0, None)
    assert article.id is not None
    return Candidate(
        article_id=article.id,
        title=article.title,
        body=article.body,
        url=article.url or f"{settings.base_url}/articles/{article.id}",
        source=article.source_name,
        published=article.published_at,
        first_seen=article.first_seen_at,
        section=article.section or source_section,
        summary=article.summary,
        source_weight=weight,
        boost=boost,
        has_image=bool(article.image_url),
        duplicate_of=article.duplicate_of_id,
    )


def _item_titles(session: Session, issue: Issue) -> list[str]:
    return [] if issue.id is None else [i.title for i in issue_store.items_of(session, issue.id)]


def _changes(before: list[str], after: list[str]) -> list[str]:
    added = [f"+ {t}" for t in after if t not in before]
    removed = [f"- {t}" for t in before if t not in after]
    return added + removed


def _render_into(
    issue: Issue, items: list[IssueItem], *, settings: Settings, issue_date: date
) -> None:
    from digest.render import DigestContent, DigestItem, render_digest

    content = DigestContent(
        subject=issue.subject,
        preheader=issue.preheader,
        week=issue.week,
        issue_date=issue_date,
        items=[
            DigestItem(
                title=i.title, url=i.url, source=i.source_name, section=i.section,
                blurb=i.blurb, image_url=i.image_url, image_alt=i.image_alt,
                also_reported_by=tuple(i.also_reported_by),
            )
            for i in items
        ],
        web_url=f"{settings.base_url}/archive/{issue.week}",
    )  # fmt: skip
    rendered = render_digest(content, settings=settings)
    issue.mjml, issue.html, issue.text = rendered.mjml, rendered.html, rendered.text
    issue.content_hash = hashlib.sha256(
        f"{issue.subject}\n{issue.preheader}\n{issue.html}\n{issue.text}".encode()
    ).hexdigest()


# --- send -----------------------------------------------------------------------------------


def send_issue(
    *,
    settings: Settings,
    now: datetime,
    ref: str | int | None = None,
    sender: Sender | None = None,
    force: bool = False,
    offline: bool = True,
    stop: threading.Event | None = None,
) -> SendReport:
    """Send an issue to every confirmed subscriber who has not had it; safe to re-run.

    One personalised copy is checked first (``digest.check``; offline unless ``offline`` is
    False): a failure raises CheckFailed before anything is written, unless ``force``. ``stop``
    ends the send cleanly. See :func:`digest.send.commands.run_send` (the ledger, the pool,
    what is raised).
    """
    from digest.send.commands import PreSendCheck, run_send

    check = PreSendCheck(offline=offline, force=force)
    return run_send(settings=settings, now=now, ref=ref, sender=sender, check=check, stop=stop)
