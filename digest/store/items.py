"""Editing a draft's items: the editor's recorded changes, and the items they point at.

Edits are rows in ``issue_edits``, one per (issue, article, kind); a rebuild reads them back as
a ``digest.select.Edits`` and re-applies them, which is why a pin or a drop survives rebuilding.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, delete, select

from digest.errors import NotFound, StateError
from digest.models import Article, EditKind, Issue, IssueEdit, IssueItem, IssueStatus, Source
from digest.select import Edits

# Pinning an article undoes dropping it and the other way round: the last word wins.
_OPPOSITE = {EditKind.PIN: EditKind.DROP, EditKind.DROP: EditKind.PIN}


def require_draft(issue: Issue) -> None:
    """StateError unless ``issue`` is a draft (sent, sending or approved issues are frozen)."""
    if issue.status != IssueStatus.DRAFT:
        raise StateError(
            f"the issue for {issue.week} is {issue.status}; only a draft can be edited"
        )


def edits_of(session: Session, issue_id: int) -> Edits:
    """The editor's changes to an issue, oldest first (later moves apply after earlier ones)."""
    rows = session.exec(
        select(IssueEdit)
        .where(IssueEdit.issue_id == issue_id)
        .order_by(col(IssueEdit.created_at), col(IssueEdit.id))
    ).all()
    pinned: list[int] = []
    dropped: list[int] = []
    moves: list[tuple[int, int]] = []
    blurbs: dict[int, str] = {}
    boosts: dict[int, float] = {}
    subject = preheader = None
    for row in rows:
        if row.kind == EditKind.PIN and row.article_id is not None:
            pinned.append(row.article_id)
        elif row.kind == EditKind.DROP and row.article_id is not None:
            dropped.append(row.article_id)
        elif row.kind == EditKind.MOVE and row.article_id is not None and row.position:
            moves.append((row.article_id, row.position))
        elif row.kind == EditKind.BLURB and row.article_id is not None and row.text is not None:
            blurbs[row.article_id] = row.text
        elif row.kind == EditKind.BOOST and row.article_id is not None and row.amount is not None:
            boosts[row.article_id] = row.amount
        elif row.kind == EditKind.SUBJECT:
            subject = row.text
        elif row.kind == EditKind.PREHEADER:
            preheader = row.text
    return Edits(
        pinned=tuple(pinned),
        dropped=tuple(dropped),
        moves=tuple(moves),
        blurbs=blurbs,
        subject=subject,
        preheader=preheader,
        boosts=boosts,
    )


def record_edit(
    session: Session,
    *,
    issue_id: int,
    kind: EditKind,
    now: datetime,
    article_id: int | None = None,
    position: int | None = None,
    text: str | None = None,
    amount: float | None = None,
) -> IssueEdit:
    """Store an edit, replacing an earlier one of the same kind for the same article (and, for
    a pin or a drop, its opposite)."""
    kinds = [kind, _OPPOSITE[kind]] if kind in _OPPOSITE else [kind]
    session.exec(
        delete(IssueEdit).where(
            col(IssueEdit.issue_id) == issue_id,
            col(IssueEdit.kind).in_(kinds),
            col(IssueEdit.article_id).is_(None)
            if article_id is None
            else col(IssueEdit.article_id) == article_id,
        )
    )
    edit = IssueEdit(
        issue_id=issue_id,
        article_id=article_id,
        kind=kind,
        position=position,
        text=text,
        amount=amount,
        created_at=now,
    )
    session.add(edit)
    session.flush()
    return edit


def edit_rows(session: Session, issue_id: int) -> list[dict[str, Any]]:
    """The issue's stored edits as plain rows (to put back with ``restore_edits``)."""
    table = IssueEdit.__table__  # type: ignore[attr-defined]
    query = sa.select(table).where(table.c.issue_id == issue_id)
    return [dict(row) for row in session.execute(query).mappings()]


def restore_edits(session: Session, *, issue_id: int, rows: list[dict[str, Any]]) -> None:
    """Make the issue's edits exactly ``rows`` again (an edit whose rebuild failed is undone)."""
    table = IssueEdit.__table__  # type: ignore[attr-defined]
    session.execute(sa.delete(table).where(table.c.issue_id == issue_id))
    if rows:
        session.execute(sa.insert(table), rows)


def item_at(session: Session, *, issue: Issue, position: int) -> IssueItem:
    """The item shown at ``position`` (1-based, as ``digest issue show`` numbers them)."""
    item = session.exec(
        select(IssueItem).where(IssueItem.issue_id == issue.id, IssueItem.position == position)
    ).first()
    if item is None:
        count = len(session.exec(select(IssueItem.id).where(IssueItem.issue_id == issue.id)).all())
        raise NotFound(
            f"issue {issue.week} has no item {position} (it has {count}; see: digest issue show)"
        )
    return item


def article(session: Session, article_id: int) -> Article:
    """The stored article; NotFound with a hint when there is none."""
    found = session.get(Article, article_id)
    if found is None:
        raise NotFound(f"no article {article_id} (find ids with: digest issue explain --json)")
    return found


def articles_by_id(session: Session, ids: Sequence[int]) -> list[Article]:
    """The stored articles among ``ids``, in id order (pinned articles from outside the week)."""
    if not ids:
        return []
    return list(
        session.exec(
            select(Article).where(col(Article.id).in_(list(ids))).order_by(col(Article.id))
        )
    )


def explanation(
    session: Session, *, newsletter: str, ref: str | int | None, left_out: int = 10
) -> dict[str, Any]:
    """Why an issue holds what it holds: each item's score parts and the editor's hand on it,
    then the best ``left_out`` stories the build left out, with why. NotFound for no issue."""
    from digest.store.issues import get_issue, items_of

    issue = get_issue(session, newsletter=newsletter, ref=ref)
    assert issue.id is not None
    edits = edits_of(session, issue.id)
    moved = {article_id for article_id, _ in edits.moves}
    rows = items_of(session, issue.id)
    undated = {a.id for a in articles_by_id(session, [i.article_id for i in rows])
               if a.published_at is None}  # fmt: skip
    items = []
    for item in rows:
        editor = [
            label
            for label, applies in (
                ("pinned", item.pinned or item.article_id in edits.pinned),
                ("moved", item.article_id in moved),
                ("blurb edited", item.article_id in edits.blurbs),
            )
            if applies
        ]
        items.append(
            {
                "position": item.position,
                "article_id": item.article_id,
                "title": item.title,
                "source": item.source_name,
                "section": item.section,
                "score": item.score,
                "score_parts": dict(item.score_parts),
                "also_reported_by": list(item.also_reported_by),
                "editor": editor,
                "undated": item.article_id in undated,
            }
        )
    return {
        "id": issue.id,
        "week": issue.week,
        "status": str(issue.status),
        "subject": issue.subject,
        "subject_edited": edits.subject is not None,
        "preheader": issue.preheader,
        "preheader_edited": edits.preheader is not None,
        "items": items,
        "left_out": list(issue.left_out or [])[:left_out],
        "dropped": list(edits.dropped),
    }


def source_settings(session: Session) -> dict[int | None, tuple[float, str | None]]:
    """Each source's (weight, section) by id: what ranking and sectioning take from a source
    when the article itself says nothing."""
    rows = session.exec(select(Source.id, Source.weight, Source.section)).all()
    return {sid: (weight, section) for sid, weight, section in rows if sid is not None}
