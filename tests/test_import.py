"""CSV import: every row checked, good rows in one transaction, bad rows reported by line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from digest.db import session_scope
from digest.errors import InputError
from digest.models import ConsentEvent, Subscriber, SubscriberStatus
from digest.settings import Settings
from digest.store import subscribers as store
from digest.subscribers import chain, consent, service
from digest.subscribers.importer import import_csv

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
S = SubscriberStatus


def write(tmp_path: Path, text: str, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def count(session: Session, model: type) -> int:
    return int(session.exec(select(func.count()).select_from(model)).one())


def test_bad_rows_are_reported_by_line_and_reason_and_good_rows_imported(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    consent.suppress(session, email="gone@example.org", scope="friday", reason="unsubscribed",
                     now=NOW)  # fmt: skip
    csv_text = (
        "email,name,status,consent_evidence,consent_at\n"
        "ana@example.org,Ana,,,\n"                                  # 2 pending
        "bo@example.org,Bo,confirmed,paper form #12,2025-05-01\n"   # 3 confirmed
        "not an address,X,,,\n"                                     # 4 malformed
        "ANA@example.org,Ana again,,,\n"                            # 5 duplicate of 2
        "gone@example.org,,,,\n"                                    # 6 suppressed
        "cy@example.org,,confirmed,,\n"                             # 7 no evidence
        "di@example.org,,subscribed,,\n"                            # 8 unknown status
        "ed@example.org,,confirmed,web form,yesterday\n"            # 9 bad date
        "\n"                                                        # blank: not a row
        "fe@example.org,Fe,pending,,\n"                             # 11 pending
    )  # fmt: skip
    report = import_csv(session, settings=settings, path=write(tmp_path, csv_text), now=NOW)
    session.commit()
    assert (report.rows, report.pending, report.confirmed, report.unchanged) == (9, 2, 1, 0)
    got = [(b.line, b.reason.split(":")[0]) for b in report.bad]
    assert got == [
        (4, "malformed address"),
        (5, "duplicate of line 2"),
        (6, "suppressed (unsubscribed, bounced or erased)"),
        (7, "status confirmed needs consent_evidence"),
        (8, "status 'subscribed' is not pending or confirmed"),
        (9, "consent_at 'yesterday' is not an ISO 8601 date"),
    ]
    bo = store.subscriber_by_email(session, "bo@example.org")
    assert bo is not None and bo.status == S.CONFIRMED
    (event,) = session.exec(select(ConsentEvent).where(ConsentEvent.subscriber_id == bo.id)).all()
    assert event.source == "import" and event.evidence is not None
    assert "paper form #12" in event.evidence and "2025-05-01T00:00:00+00:00" in event.evidence
    assert store.subscriber_by_email(session, "ana@example.org").status == S.PENDING  # type: ignore[union-attr]
    assert store.subscriber_by_email(session, "gone@example.org") is None
    assert chain.verify_chain(session).ok


def test_a_dry_run_reports_the_same_and_writes_nothing(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "email,status,consent_evidence\na@example.org,,\nb@example.org,confirmed,x\nbad,,\n",
    )
    report = import_csv(session, settings=settings, path=path, now=NOW, dry_run=True)
    assert (report.pending, report.confirmed, len(report.bad)) == (1, 1, 1)
    assert count(session, Subscriber) == 0 and count(session, ConsentEvent) == 0


def test_known_subscribers_are_left_alone_unless_confirmed_with_evidence(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    service.add_confirmed(session, settings=settings, email="ana@example.org", evidence="form",
                          source="cli", now=NOW)  # fmt: skip
    service.subscribe(session, settings=settings, email="bo@example.org", source="web", now=NOW)
    path = write(tmp_path, "email,status,consent_evidence\nana@example.org,,\n"
                           "bo@example.org,confirmed,phone call 2026-11-01\n")  # fmt: skip
    report = import_csv(session, settings=settings, path=path, now=NOW)
    assert (report.unchanged, report.confirmed) == (1, 1)
    assert store.subscriber_by_email(session, "bo@example.org").status == S.CONFIRMED  # type: ignore[union-attr]


def test_erased_people_cannot_be_imported_back(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    service.add_confirmed(session, settings=settings, email="ana@example.org", evidence="form",
                          source="cli", now=NOW)  # fmt: skip
    service.erase(session, settings=settings, email="ana@example.org", now=NOW)
    path = write(tmp_path, "email,status,consent_evidence\nAna@Example.org,confirmed,old list\n")
    report = import_csv(session, settings=settings, path=path, now=NOW)
    assert report.imported == 0 and report.bad[0].reason.startswith("suppressed")


def test_confirmation_links_are_made_only_when_asked(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path, "email\na@example.org\nb@example.org\n")
    quiet = import_csv(session, settings=settings, path=path, now=NOW)
    assert quiet.confirmations == []
    session.rollback()
    loud = import_csv(session, settings=settings, path=path, now=NOW, send_confirmations=True)
    assert [c[0] for c in loud.confirmations] == ["a@example.org", "b@example.org"]
    token = loud.confirmations[0][2].rsplit("/", 1)[1]
    assert service.confirm(session, token=token, now=NOW).email == "a@example.org"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name\nAna\n", "needs an 'email' column"),
        ("email,emial\na@example.org,x\n", "unknown column(s) emial"),
    ],
)
def test_a_file_that_is_not_a_subscriber_csv_is_refused(
    session: Session, settings: Settings, tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_csv(session, settings=settings, path=write(tmp_path, text), now=NOW)


def test_bytes_that_are_not_utf8_are_refused_with_the_file_name(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("email,name\na@example.org,Jos\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        import_csv(session, settings=settings, path=path, now=NOW)
    with pytest.raises(InputError, match="cannot read"):
        import_csv(session, settings=settings, path=tmp_path / "missing.csv", now=NOW)


def test_an_import_interrupted_halfway_leaves_nothing(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path, "email\n" + "".join(f"p{n}@example.org\n" for n in range(200)))

    written: list[int] = []

    def stop_at_100(done: int) -> None:
        written.append(done)
        if done >= 100:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), session_scope(engine) as session:
        import_csv(session, settings=settings, path=path, now=NOW, progress=stop_at_100, batch=50)
    assert written == [50, 100]  # two batches were written before the interruption
    with Session(engine) as session:
        assert count(session, Subscriber) == 0 and count(session, ConsentEvent) == 0


# --- 10,000 rows ----------------------------------------------------------------------------------


def big_file(tmp_path: Path) -> tuple[Path, dict[int, str], set[str]]:
    """10,000 data rows: every 37th malformed, every 53rd a duplicate of the row before, every
    71st suppressed. Returns the file, the expected bad lines with reasons, and the good emails."""
    lines = ["email,name,status,consent_evidence,consent_at"]
    bad: dict[int, str] = {}
    good: set[str] = set()
    previous = ""
    for n in range(10_000):
        line = n + 2
        address = f"reader{n}@example.org"
        if n % 37 == 5:
            lines.append(f"reader{n}@@example.org,R{n},,,")
            bad[line] = "malformed"
        elif n % 53 == 7 and previous:
            lines.append(f"{previous.upper()},dup,,,")
            bad[line] = "duplicate"
        elif n % 71 == 3:
            lines.append(f"blocked{n}@example.org,B{n},,,")
            bad[line] = "suppressed"
        elif n % 2:
            lines.append(f"{address},R{n},confirmed,signed up at the fair,2026-06-0{1 + n % 9}")
            good.add(address)
            previous = address
        else:
            lines.append(f"{address},R{n},,,")
            good.add(address)
            previous = address
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, bad, good


def suppress_blocked(session: Session, bad: dict[int, str]) -> None:
    for line, reason in bad.items():
        if reason == "suppressed":
            consent.suppress(session, email=f"blocked{line - 2}@example.org", scope="global",
                             reason="bounced", now=NOW)  # fmt: skip


@pytest.mark.slow
def test_ten_thousand_rows_give_an_exact_report(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path, bad, good = big_file(tmp_path)
    with session_scope(engine) as session:
        suppress_blocked(session, bad)
    with session_scope(engine) as session:
        report = import_csv(session, settings=settings, path=path, now=NOW)
    assert report.rows == 10_000 and report.imported == len(good)
    assert {b.line: b.reason.split(" ")[0].split(":")[0] for b in report.bad} == bad
    with Session(engine) as session:
        assert count(session, Subscriber) == len(good)
        assert count(session, ConsentEvent) == len(good)
        assert chain.verify_chain(session).ok


@pytest.mark.slow
def test_killing_a_ten_thousand_row_import_midway_leaves_nothing(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path, bad, _ = big_file(tmp_path)
    with session_scope(engine) as session:
        suppress_blocked(session, bad)
    script = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from pathlib import Path\n"
        "from digest.db import make_engine, session_scope\n"
        "from digest.settings import Settings\n"
        "from digest.subscribers.importer import import_csv\n"
        "settings = Settings()\n"
        "def progress(done):\n"
        "    print(done, flush=True)\n"
        "with session_scope(make_engine(settings)) as session:\n"
        "    import_csv(session, settings=settings, path=Path(sys.argv[1]),\n"
        "               now=datetime.now(UTC), progress=progress, batch=500)\n"
        "print('committed', flush=True)\n"
    )
    env = {**os.environ, "DIGEST_DATA_DIR": str(settings.data_dir),
           "DIGEST_DATABASE_URL": settings.db_url, "DIGEST_SECRET_KEY": "k" * 32}  # fmt: skip
    with subprocess.Popen(
        [sys.executable, "-c", script, str(path)], env=env, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            if int(line) >= 4000:  # 8 batches written, well inside the transaction
                child.send_signal(signal.SIGKILL)
                break
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    with Session(engine) as session:
        assert count(session, Subscriber) == 0 and count(session, ConsentEvent) == 0
