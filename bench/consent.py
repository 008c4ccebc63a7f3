"""What the consent log costs: CSV import, chain verification and the recipient query.

Run: ``.venv/bin/python -m bench.consent [--rows 10000] [--database-url URL]``

Each measurement is compared with a baseline measured in the same run on the same data:

- import: ``import_csv`` (validation, one state-machine transition and one hash-chained consent
  event per row, one transaction) against inserting the same already-validated rows as bare
  subscriber rows in one transaction with no consent log (what an import without evidence does);
- verify: ``verify_chain`` (recompute every sha256 link) against reading the same event rows;
- recipients: ``confirmed_recipients`` paged 1,000 at a time (consent, pause, erasure and
  suppressions enforced in SQL) against paging the same table by ``status = confirmed`` only
  (the bare rows of the baseline import are confirmed and unsuppressed too, so both see them).

Run it on PostgreSQL with ``--database-url postgresql+psycopg://...`` (rows accumulate there:
addresses carry a per-run prefix, so the counts include earlier runs).

Default database: a fresh SQLite file in a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col, select

from digest.db import make_engine, session_scope
from digest.models import ConsentEvent, Subscriber, SubscriberStatus
from digest.settings import Settings
from digest.store.consent import iter_event_rows
from digest.subscribers import chain, consent
from digest.subscribers.importer import ImportReport, import_csv
from digest.subscribers.recipients import confirmed_recipients

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
T = TypeVar("T")


def write_csv(path: Path, rows: int, *, prefix: str) -> None:
    """``rows`` rows, half confirmed with evidence, 1 in 37 malformed, 1 in 53 duplicated."""
    lines = ["email,name,status,consent_evidence"]
    for n in range(rows):
        if n % 37 == 5:
            lines.append(f"{prefix}{n}@@example.org,R{n},,")
        elif n % 53 == 7:
            lines.append(f"{prefix}{n - 1}@example.org,dup,,")
        elif n % 2:
            lines.append(f"{prefix}{n}@example.org,R{n},confirmed,signed up at the fair")
        else:
            lines.append(f"{prefix}{n}@example.org,R{n},,")
    path.write_text("\n".join(lines) + "\n")


def timed(run: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="CSV rows (default 10,000).")
    parser.add_argument("--database-url", default="", help="Default: a fresh SQLite file.")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-consent-"))
    settings = Settings(data_dir=folder, database_url=args.database_url, secret_key="b" * 32)
    engine = make_engine(settings)
    path = folder / "people.csv"
    write_csv(path, args.rows, prefix=f"r{int(time.time())}-")

    # Import through the consent state machine.
    def through_consent() -> ImportReport:
        with session_scope(engine) as session:
            return import_csv(session, settings=settings, path=path, now=NOW)

    import_s, report = timed(through_consent)
    imported = report.imported

    # Baseline: the same validated rows as bare subscriber rows, no consent log.
    def bare() -> int:
        from digest.subscribers.importer import read_csv, validate

        with session_scope(engine) as session:
            good, _ = validate(session, list(read_csv(path)), newsletter="friday")
            session.execute(
                sa.insert(Subscriber),
                [
                    {"email": f"bare-{r.email}", "email_hash": consent.email_hash(r.email),
                     "name": r.name, "status": r.status, "paused": False, "soft_bounces": 0,
                     "created_at": NOW, "updated_at": NOW}
                    for r in good
                ],
            )  # fmt: skip
            return len(good)

    bare_s, bare_rows = timed(bare)

    # Suppress one in ten imported addresses, so the recipient query has work to do.
    with session_scope(engine) as session:
        emails = session.exec(
            select(Subscriber.email)
            .where(col(Subscriber.email).not_like("bare-%"))
            .order_by(col(Subscriber.id))
        ).all()
        for email in emails[::10]:
            consent.suppress(session, email=email, scope="global", reason="bounced", now=NOW)

    with Session(engine) as session:
        verify_s, checked = timed(lambda: chain.verify_chain(session))
        read_s, _ = timed(lambda: sum(1 for _ in iter_event_rows(session)))

        def page_recipients() -> int:
            after, total = 0, 0
            while page := confirmed_recipients(session, newsletter="friday", after_id=after):
                total += len(page)
                after = page[-1].id or after
            return total

        def page_plain() -> int:
            after, total = 0, 0
            while page := session.exec(
                select(Subscriber)
                .where(Subscriber.status == SubscriberStatus.CONFIRMED, col(Subscriber.id) > after)
                .order_by(col(Subscriber.id)).limit(1000)
            ).all():  # fmt: skip
                total += len(page)
                after = page[-1].id or after
            return total

        recipients_s, recipients = timed(page_recipients)
        plain_s, plain_rows = timed(page_plain)
        events = session.exec(select(sa.func.count()).select_from(ConsentEvent)).one()

    engine.dispose()
    backend = "PostgreSQL" if settings.db_url.startswith("postgresql") else "SQLite"
    print(f"{backend}, {args.rows:,} CSV rows, {imported:,} imported, {events:,} consent events, "
          f"chain ok: {checked.ok}")  # fmt: skip
    print()
    print("| step | rows | seconds | rows/s | vs baseline |")
    print("|---|---|---|---|---|")

    def line(name: str, rows: int, seconds: float, base: float | None) -> None:
        ratio = "1×" if base is None else f"{seconds / base:.1f}× the time"
        print(f"| {name} | {rows:,} | {seconds:.2f} | {rows / seconds:,.0f} | {ratio} |")

    line("bare insert, no consent log (baseline)", bare_rows, bare_s, None)
    line("import_csv through the consent log", imported, import_s, bare_s)
    line("read every event row (baseline)", int(events), read_s, None)
    line("verify_chain", int(events), verify_s, read_s)
    line("page confirmed by status only (baseline)", plain_rows, plain_s, None)
    line("confirmed_recipients (consent + suppressions in SQL)", recipients, recipients_s, plain_s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
