"""Classifying bounces: hard, soft, policy, complaint, unknown — and never policy as hard."""

from __future__ import annotations

import pytest

from digest.bounces.classify import classify, explain
from digest.bounces.parse import BounceRecord
from digest.models import BounceKind


def record(
    status: str | None,
    diagnostic: str = "",
    *,
    report: str = "dsn",
    phase: str | None = None,
    action: str | None = "failed",
    code: int | None = None,
) -> BounceRecord:
    return BounceRecord(
        source="t",
        recipient="reader@example.net",
        report=report,  # type: ignore[arg-type]
        status=status,
        diagnostic=diagnostic,
        smtp_phase=phase,
        dsn_action=action,
        smtp_code=code,
    )


@pytest.mark.parametrize(
    ("status", "diagnostic", "kind"),
    [
        ("5.1.1", "550 5.1.1 user unknown", BounceKind.HARD),
        ("5.1.2", "550 5.1.2 host not found", BounceKind.HARD),
        ("5.1.10", "550 5.1.10 recipient not found", BounceKind.HARD),
        ("4.2.2", "452 4.2.2 mailbox full", BounceKind.SOFT),
        ("4.4.7", "delivery time expired", BounceKind.SOFT),
        ("5.2.2", "552 5.2.2 over quota", BounceKind.SOFT),
        ("5.3.4", "552 5.3.4 message too big for system", BounceKind.SOFT),
        ("5.7.26", "550 5.7.26 unauthenticated email is not accepted", BounceKind.POLICY),
        ("5.7.515", "550 5.7.515 access denied, sending domain does not meet", BounceKind.POLICY),
        ("5.7.1", "554 5.7.1 rejected: listed at zen.spamhaus.org", BounceKind.POLICY),
        ("5.7.13", "525 5.7.13 user account disabled", BounceKind.SOFT),
        ("5.1.8", "501 5.1.8 bad sender's system address", BounceKind.POLICY),
        ("5.6.0", "554 5.6.0 message content rejected", BounceKind.POLICY),
    ],
)
def test_it_classifies_by_enhanced_status(status: str, diagnostic: str, kind: BounceKind) -> None:
    assert classify(record(status, diagnostic)) is kind


@pytest.mark.parametrize(
    ("status", "diagnostic", "kind"),
    [
        ("5.0.0", "550 user unknown", BounceKind.HARD),
        (None, "550 No such user here", BounceKind.HARD),
        ("5.0.0", "550 Requested action not taken: mailbox is full", BounceKind.SOFT),
        ("5.0.0", "550 Message blocked because 192.0.2.1 is listed by spamhaus", BounceKind.POLICY),
        (None, "554 Your message was rejected as spam", BounceKind.POLICY),
        ("5.0.0", "550 DMARC policy of example.org requires rejection", BounceKind.POLICY),
        ("5.0.0", "571 No PTR record found, reverse DNS required", BounceKind.POLICY),
        (None, "554 Relay access denied", BounceKind.POLICY),
        ("5.0.0", "550 Rejected", BounceKind.UNKNOWN),
        (None, "", BounceKind.UNKNOWN),
    ],
)
def test_the_wording_decides_when_the_status_is_missing_or_generic(
    status: str | None, diagnostic: str, kind: BounceKind
) -> None:
    assert classify(record(status, diagnostic)) is kind


def test_a_policy_rejection_is_never_hard_even_with_an_addressing_status() -> None:
    # A blocklist rejection mislabelled 5.1.0 by the receiver: the reader did nothing wrong.
    verdict = explain(record("5.1.0", "550 5.1.0 blocked using bl.spamcop.net"))

    assert verdict.kind is BounceKind.POLICY
    assert "policy wording" in verdict.rule


def test_a_refusal_after_the_content_was_sent_is_policy_whatever_it_says_about_the_user() -> None:
    kind = classify(record("5.0.0", "550 Unknown user", phase="data", code=550))

    assert kind is BounceKind.POLICY


def test_an_unknown_user_at_rcpt_time_is_hard() -> None:
    assert classify(record("5.0.0", "550 Unknown user", phase="rcpt")) is BounceKind.HARD


def test_a_refusal_at_connection_time_is_the_senders_problem() -> None:
    kind = classify(record(None, "421 Service not available", phase="connect", code=421))

    assert kind is BounceKind.POLICY


def test_a_delayed_notice_is_soft() -> None:
    assert classify(record(None, "", action="delayed")) is BounceKind.SOFT


def test_a_locked_mailbox_is_soft_not_policy() -> None:
    diagnostic = "550 5.5.0 The recipient account is blocked"

    assert classify(record("5.5.0", diagnostic)) is BounceKind.SOFT


def test_a_full_mailbox_misreported_as_5_1_1_is_soft() -> None:
    assert classify(record("5.1.1", "552 5.1.1 mailbox full")) is BounceKind.SOFT


def test_a_feedback_report_is_a_complaint() -> None:
    assert classify(record(None, report="arf", action=None)) is BounceKind.COMPLAINT


def test_every_verdict_names_its_rule() -> None:
    verdict = explain(record("5.1.1", "550 5.1.1 user unknown"))

    assert verdict.rule == "status 5.1.1"
