"""Parsing bounces: DSN (RFC 3464), ARF (RFC 5965) and plain-text notices.

Every fixture here is written for this project (no third-party bounce text is committed); the
Sisimai corpus is read at run time in ``test_bounce_corpus.py``.
"""

from __future__ import annotations

from digest.bounces.parse import parse_report

ORIGINAL = (
    "Return-Path: <bounces+d42.x7@mail.example.org>\r\n"
    "From: The Friday Digest <digest@example.org>\r\n"
    "To: reader@example.net\r\n"
    "Subject: This week\r\n"
    "Message-ID: <issue-7.42@example.org>\r\n"
    "\r\n"
    "Hello\r\n"
)


def dsn(*recipient_blocks: str, notice: str = "Your message could not be delivered.") -> bytes:
    blocks = "\r\n".join(recipient_blocks)
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        "To: bounces+d42.x7@mail.example.org\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n"
        "--B\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        f"{notice}\r\n"
        "\r\n"
        "--B\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n"
        "\r\n"
        f"{blocks}"
        "\r\n"
        "--B\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n"
        f"{ORIGINAL}"
        "--B--\r\n"
    ).encode()


def block(recipient: str, status: str, diagnostic: str, action: str = "failed") -> str:
    return (
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Remote-MTA: dns; mx.example.net\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n"
    )


def test_it_reads_one_record_per_recipient_of_a_dsn() -> None:
    raw = dsn(
        block("reader@example.net", "5.1.1", "550 5.1.1 <reader@example.net>: user unknown"),
        block("other@example.net", "4.2.2", "452 4.2.2 mailbox full", action="delayed"),
    )

    records = parse_report(raw, source="one.eml")

    assert [(r.recipient, r.status, r.dsn_action) for r in records] == [
        ("reader@example.net", "5.1.1", "failed"),
        ("other@example.net", "4.2.2", "delayed"),
    ]
    first = records[0]
    assert first.report == "dsn"
    assert first.diagnostic == "550 5.1.1 <reader@example.net>: user unknown"
    assert first.smtp_code == 550
    assert first.remote_mta == "mx.example.net"
    assert first.source == "one.eml"


def test_it_finds_the_original_message_id_and_the_verp_token() -> None:
    raw = dsn(block("reader@example.net", "5.1.1", "550 5.1.1 no such user"))

    (record,) = parse_report(raw, source="x", verp_domain="mail.example.org")

    assert record.original_message_id == "<issue-7.42@example.org>"
    assert record.verp_token == "d42.x7"


def test_it_ignores_a_verp_address_on_another_domain() -> None:
    raw = dsn(block("reader@example.net", "5.1.1", "550 5.1.1 no such user"))

    (record,) = parse_report(raw, source="x", verp_domain="lists.example.com")

    assert record.verp_token is None


def test_it_prefers_the_specific_code_in_the_diagnostic_over_a_generic_status() -> None:
    raw = dsn(block("reader@example.net", "5.0.0", "550 5.7.26 unauthenticated mail is blocked"))

    (record,) = parse_report(raw, source="x")

    assert record.status == "5.7.26"


def test_it_splits_recipient_blocks_that_lack_the_blank_line_between_them() -> None:
    glued = block("a@example.net", "5.2.2", "552 5.2.2 over quota") + block(
        "b@example.net", "5.1.1", "550 5.1.1 unknown user"
    )

    records = parse_report(dsn(glued), source="x")

    assert [(r.recipient, r.status) for r in records] == [
        ("a@example.net", "5.2.2"),
        ("b@example.net", "5.1.1"),
    ]


def test_it_reads_the_smtp_stage_from_the_notice_when_the_dsn_omits_it() -> None:
    raw = dsn(
        block("reader@example.net", "5.0.0", "550 Unknown user reader@example.net"),
        notice="<reader@example.net>: host mx.example.net said: 550 Unknown user "
        "(in reply to end of DATA command)",
    )

    (record,) = parse_report(raw, source="x")

    assert record.smtp_phase == "data"


ARF = (
    "From: feedback@isp.example.com\r\n"
    "To: abuse@example.org\r\n"
    "Subject: Abuse report\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\r\n'
    "\r\n"
    "--F\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "A recipient marked this message as spam.\r\n"
    "--F\r\n"
    "Content-Type: message/feedback-report\r\n"
    "\r\n"
    "Feedback-Type: abuse\r\n"
    "User-Agent: ExampleFBL/1.0\r\n"
    "Version: 1\r\n"
    "Original-Rcpt-To: <Reader@Example.net>\r\n"
    "\r\n"
    "--F\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    f"{ORIGINAL}"
    "--F--\r\n"
)


def test_it_reads_the_complaining_recipient_of_an_arf_report() -> None:
    (record,) = parse_report(ARF.encode(), source="arf.eml", verp_domain="mail.example.org")

    assert record.report == "arf"
    assert record.recipient == "reader@example.net"
    assert record.feedback_type == "abuse"
    assert record.original_message_id == "<issue-7.42@example.org>"
    assert record.verp_token == "d42.x7"


def test_it_falls_back_to_the_original_to_when_the_arf_names_nobody() -> None:
    raw = ARF.replace("Original-Rcpt-To: <Reader@Example.net>\r\n", "").encode()

    (record,) = parse_report(raw, source="x")

    assert record.recipient == "reader@example.net"


PLAIN = (
    "From: MAILER-DAEMON@relay.example.net\r\n"
    "To: digest@example.org\r\n"
    "Subject: failure notice\r\n"
    "\r\n"
    "We could not deliver your message to these addresses.\r\n"
    "\r\n"
    "<gone@example.net>:\r\n"
    "Remote host said: 550 5.1.1 <gone@example.net>... mailbox does not exist\r\n"
    "\r\n"
    "<full@example.net>:\r\n"
    "Remote host said: 552 5.2.2 <full@example.net>... mailbox is full\r\n"
    "\r\n"
    "--- Below this line is a copy of the message.\r\n"
    "\r\n"
    f"{ORIGINAL}"
)


def test_it_finds_recipients_and_reasons_in_a_plain_text_notice() -> None:
    records = parse_report(PLAIN.encode(), source="plain.eml")

    assert [(r.recipient, r.status, r.report) for r in records] == [
        ("gone@example.net", "5.1.1", "heuristic"),
        ("full@example.net", "5.2.2", "heuristic"),
    ]
    assert "mailbox does not exist" in records[0].diagnostic
    assert "full" not in records[0].diagnostic
    assert records[0].original_message_id == "<issue-7.42@example.org>"


def test_it_never_reports_the_sender_as_a_bounced_recipient() -> None:
    records = parse_report(PLAIN.encode(), source="plain.eml")

    assert "digest@example.org" not in {r.recipient for r in records}


def test_it_reads_a_sendmail_style_line_with_the_reason_on_the_same_line() -> None:
    raw = (
        b"From: Mail Delivery Subsystem <MAILER-DAEMON@old.example.net>\r\n"
        b"To: digest@example.org\r\n"
        b"\r\n"
        b"   ----- Transcript of session follows -----\r\n"
        b"550 <gone@example.net>... User unknown\r\n"
        b"421 <slow@example.net>... Deferred: Connection timed out\r\n"
    )

    records = parse_report(raw, source="x")

    assert [(r.recipient, r.diagnostic) for r in records] == [
        ("gone@example.net", "User unknown"),
        ("slow@example.net", "Deferred: Connection timed out"),
    ]


def test_it_returns_nothing_for_ordinary_mail() -> None:
    raw = b"From: someone@example.net\r\nTo: digest@example.org\r\nSubject: hi\r\n\r\nThanks!\r\n"

    assert parse_report(raw, source="x") == []


def test_it_survives_garbage() -> None:
    assert parse_report(b"\x00\xff not mail at all", source="x") == []
