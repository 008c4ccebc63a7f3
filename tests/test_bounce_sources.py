"""Reading bounce mail from a file, a folder, an mbox, a Maildir, and a mailbox that moves what
was handled (the in-memory twin of the IMAP mailbox; no IMAP server runs here)."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from digest.bounces.sources import Incoming, MemoryMailbox, drain, message_id_of, read_path
from digest.errors import InputError


def message(n: int) -> bytes:
    return (
        f"From: MAILER-DAEMON@mx.example.net\r\nTo: digest@example.org\r\n"
        f"Message-ID: <b{n}@mx.example.net>\r\nSubject: failure {n}\r\n\r\n"
        f"<gone{n}@example.net>:\r\n550 5.1.1 user unknown\r\n"
    ).encode()


def test_it_reads_one_message_file_under_its_name(tmp_path: Path) -> None:
    path = tmp_path / "one.eml"
    path.write_bytes(message(1))

    (found,) = read_path(str(path))

    assert (found.source, found.raw) == ("one.eml", message(1))


def test_it_reads_a_folder_of_eml_files_in_name_order(tmp_path: Path) -> None:
    for n in (2, 1):
        (tmp_path / f"{n}.eml").write_bytes(message(n))
    (tmp_path / "notes.txt").write_text("not mail")

    assert [m.source for m in read_path(str(tmp_path))] == ["1.eml", "2.eml"]


def test_it_reads_an_mbox_naming_messages_by_message_id(tmp_path: Path) -> None:
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path)
    for n in (1, 2):
        box.add(message(n))
    box.close()

    found = list(read_path(str(path)))

    assert [m.source for m in found] == ["<b1@mx.example.net>", "<b2@mx.example.net>"]
    assert b"gone2@example.net" in found[1].raw


def test_it_reads_a_maildir(tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "Maildir")
    box.add(message(7))
    box.close()

    (found,) = read_path(str(tmp_path / "Maildir"))

    assert found.source == "<b7@mx.example.net>"


def test_a_missing_path_or_an_empty_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        list(read_path(str(tmp_path / "absent")))
    with pytest.raises(InputError, match="no .eml files"):
        list(read_path(str(tmp_path)))


def test_message_id_of_reads_only_the_outer_header_block() -> None:
    raw = b"From: a@b.c\r\n\r\nMessage-ID: <inner@x>\r\n"

    assert message_id_of(raw) is None
    assert message_id_of(message(3)) == "<b3@mx.example.net>"


def test_draining_a_mailbox_moves_handled_messages_and_a_dry_run_moves_none() -> None:
    inbox = [Incoming(source=f"m{n}", raw=message(n), uid=str(n)) for n in range(3)]
    box = MemoryMailbox(inbox=list(inbox))
    seen: list[str] = []

    drain(box, lambda m: seen.append(m.source), dry_run=True)
    assert (len(box.inbox), box.done) == (3, [])

    drain(box, lambda m: seen.append(m.source), dry_run=False)
    assert box.inbox == [] and [m.uid for m in box.done] == ["0", "1", "2"]
    assert seen == ["m0", "m1", "m2"] * 2


def test_a_message_that_fails_to_process_is_not_moved() -> None:
    box = MemoryMailbox(inbox=[Incoming(source="m", raw=message(1), uid="9")])

    def broken(_: Incoming) -> None:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        drain(box, broken, dry_run=False)

    assert [m.uid for m in box.inbox] == ["9"] and box.done == []
