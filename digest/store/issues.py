"""Issues and their frozen items."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, delete, select

from digest.errors import NotFound
from digest.models import Issue, IssueItem


def issue_for_week(session: Session, *, newsletter: str, week: str) -> Issue | None:
    return session.exec(
        select(Issue).where(Issue.newsletter == newsletter, Issue.week == week)
    ).first()


def get_issue(session: Session, *, newsletter: str, ref: str | int | None = None) -> Issue:
    """An issue by id, by week key ("2017-W11"), or the latest one when ``ref`` is None.

    Raises NotFound with a hint when there is none.
    """
    query = select(Issue).where(Issue.newsletter == newsletter)
    if ref is None:
        issue = session.exec(query.order_by(col(Issue.week).desc(), col(Issue.id).desc())).first()
        if issue is None:
            raise NotFound("no issue has been built yet (run: digest issue build)")
        return issue
    text = str(ref)
    issue = session.exec(
        query.where(Issue.id == int(text)) if text.isdigit() else query.where(Issue.week == text)
    ).first()
    if issue is None:
        raise NotFound(f"no issue {text!r} (list them with: digest issue list)")
    return issue


def list_issues(session: Session, *, newsletter: str) -> list[Issue]:
    return list(
        session.exec(
            select(Issue).where(Issue.newsletter == newsletter).order_by(col(Issue.week).desc())
        )
    )


def items_of(session: Session, issue_id: int) -> list[IssueItem]:
    return list(
        session.exec(
            select(IssueItem)
            .where(IssueItem.issue_id == issue_id)
            .order_by(col(IssueItem.position))
        )
    )


def replace_items(session: Session, issue_id: int, items: Sequence[IssueItem]) -> None:
    """Swap a draft's items for a new selection (rebuilds happen only on drafts)."""
    session.exec(delete(IssueItem).where(col(IssueItem.issue_id) == issue_id))
    for item in items:
        item.issue_id = issue_id
        session.add(item)
    session.flush()
