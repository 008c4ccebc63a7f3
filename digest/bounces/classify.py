"""Classify a parsed bounce: whose problem is it, and what should happen to the recipient?

- ``hard``: the address cannot receive mail (5.1.x, unknown user or domain) → suppress now;
- ``soft``: a passing or mailbox-side condition (4.x.x, 5.2.2 mailbox full, 5.3.4 too big,
  disabled or suspended mailboxes, delivery expired) → count, suppress after several;
- ``policy``: the receiver refused the *sender* (5.7.x authentication or policy, Gmail 5.7.26,
  Microsoft 5.7.515, blocklists, spam or content filters, DMARC/SPF/DKIM, reverse DNS, relaying,
  a rejected sender address) → never suppress the recipient; alert the operator;
- ``complaint``: a feedback report (ARF) → suppress from every list at once;
- ``unknown``: nothing reliable → no action.

The one mistake that must never happen is calling a policy rejection hard: that would remove a
good reader for the sender's own fault. So policy evidence in the text always wins over
"hard" evidence, and a status that names the sender (5.1.7, 5.1.8, 5.7.x) is never hard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from digest.bounces.parse import BounceRecord
from digest.models import BounceKind


def _phrases(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


# The receiver refused the sender, its infrastructure or its content.
POLICY_TEXT = _phrases(
    r"\bspam",
    r"\bblack\s?list",
    r"\bblock\s?list",
    r"\bblocked\b",
    r"\bdeny\s?list",
    r"spamhaus|spamcop|sorbs|barracuda|abuseat|uceprotect|mailspike|senderscore|proofpoint",
    r"\b(?:rbl|dnsbl|dnsrbl)\b",
    r"\blisted (?:at|on|in|by)\b",
    r"\breputation\b",
    r"\bdmarc\b",
    r"\bspf\b",
    r"\bdkim\b",
    r"not authenticated|unauthenticated|authentication (?:failed|required|failure)",
    r"\bptr\b|reverse dns|\brdns\b|reverse (?:lookup|dns lookup)",
    r"\bpolicy\b|policies",
    r"\bvirus|malware|infected",
    r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited)|not permitted to relay",
    r"unable to relay|we do not relay|relay not permitted",
    r"sender (?:address )?(?:rejected|denied|refused|blocked|verify failed)",
    r"sender verification",
    r"domain of sender|sender domain|sending domain",
    r"unsolicited|bulk mail",
    r"message (?:content )?rejected|content rejected|rejected (?:for|due to|because of)",
    r"not accepted for policy|administrative prohibition|access denied.*(?:ip|sender|client)",
    r"client host rejected|your ip|ip address .*(?:block|reject|listed)",
    r"too many (?:complaints|user complaints)|user complaints|unexpected volume",
    r"rate limit|too much mail|sending limit|quota for sender",
    r"mail rejete|mail rejected|refused to accept",
    r"ip .*(?:listed|blacklisted)|poor reputation|low reputation",
    r"authentication.*(?:spf|dkim|dmarc)|unauthenticated mail",
    r"not allowed to (?:send|post)|permission to post|no permission",
    r"not authorized to (?:send|post)",
    r"smtp auth(?:entication)?\b",
    r"invalid ip|\bip\b.{0,40}(?:not allowed|not permitted|mismatch)|mismatches client ip",
)

# The address does not exist (user or whole domain).
HARD_TEXT = _phrases(
    r"user unknown|unknown user|unknown recipient|recipient unknown|addressee unknown",
    r"no such (?:user|mailbox|recipient|address|account|person)",
    r"(?:user|mailbox|recipient|address|account|addressee)(?: name)? (?:does not|doesn't|did not)"
    r" exist",
    r"(?:user|mailbox|recipient|address|account)(?: name)? (?:is )?(?:not found|unknown|invalid)",
    r"invalid (?:recipient|mailbox|address|user|account)",
    r"not a (?:valid|registered) (?:mailbox|user|recipient|address)",
    r"(?:user|mailbox|recipient|address|account) (?:does )?not exist",
    r"invalid (?:\w+ ){0,2}(?:recipient|mailbox|user ?id|user|account)",
    r"recipient (?:name )?is not recognized|not recognized",
    r"unknown local[- ]part|unrouteable address|bad destination mailbox",
    r"doesn't have an? .{0,40} account|does not have an? .{0,40} account",
    r"mailbox (?:unavailable|not available)\b.*(?:no such|unknown|not exist)",
    r"requested action not taken: no such user",
    r"recipient address rejected: (?:user unknown|undeliverable|access denied)",
    r"this (?:user|address|account) (?:doesn't|does not) exist",
    r"host (?:or domain name )?not found|host unknown|unknown host|domain not found",
    r"no (?:mx|such domain)|domain (?:does not|doesn't) exist",
    r"(?:couldn't|could not|can't|cannot) find (?:a |any )?mail exchanger|no smtp service",
    r"unrouteable mail domain|unroutable|not have any mx|nxdomain",
    r"account has been deleted|address no longer|has moved|no longer (?:valid|available|in use)",
    r"does not accept mail|null mx",
)

FULL_TEXT = _phrases(r"mailbox (?:is )?full|over quota|quota exceeded|exceeded (?:the )?storage")

# A full, disabled or busy mailbox, a passing network or system condition.
SOFT_TEXT = _phrases(
    r"mailbox (?:is )?full|over quota|quota exceeded|exceeded (?:the )?(?:storage|quota)",
    r"insufficient (?:storage|disk)|mailbox exceeds|storage (?:limit|allocation)|exceeds allowed",
    r"message (?:is )?too (?:big|large)|size (?:limit|exceeds)|exceeds (?:the )?(?:maximum )?size",
    r"disabled|suspended|inactive|deactivated|discontinued|locked|frozen|not active",
    r"delayed|will be retried|try(?:ing)? again later|temporar|deferred|retry time",
    r"timed? ?out|expired|connection (?:refused|reset|lost)|network (?:error|unreachable)",
    r"too many (?:connections|concurrent|recipients|messages)|(?:over|exceeded).* limit",
    r"system error|internal error|loop|local error|mailer error|i/o error|resources",
    r"service (?:is )?(?:currently |temporarily )?(?:unavailable|not available)|not reachable",
    r"(?:did not|could not|unable to) (?:accept our requests to )?connect|\d+ attempts",
)

# The recipient's own mailbox is switched off or locked: it may come back, so soft, whatever
# other words ("blocked", "rejected") the server adds.
MAILBOX_STATE_TEXT = _phrases(
    r"(?:recipient|user|mailbox|account)(?: account)?(?: \S+@\S+)? (?:is |has been |was )?"
    r"(?:temporar\w* )?(?:blocked|locked|disabled|suspended|inactive|deactivated|frozen)",
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The kind, and the one rule that decided it (shown beside every decision)."""

    kind: BounceKind
    rule: str


def classify(record: BounceRecord) -> BounceKind:
    """The kind of one bounced recipient. Never raises."""
    return explain(record).kind


def explain(record: BounceRecord) -> Verdict:
    """Like ``classify``, with the rule that decided, for logs and the consent evidence."""
    if record.report == "arf":
        return Verdict(BounceKind.COMPLAINT, "feedback report")
    text = record.diagnostic or ""
    status = record.status or ""
    klass, subject, detail = _parts(status)
    policy_text = POLICY_TEXT.search(text)
    hard_text = HARD_TEXT.search(text)
    soft_text = SOFT_TEXT.search(text)

    # Statuses that name the sender or its message are never the recipient's fault.
    names_sender = (subject, detail) in {(1, 7), (1, 8), (7, 27)}
    if names_sender or (subject in {6, 7} and (subject, detail) != (7, 13)):
        return Verdict(BounceKind.POLICY, f"status {status} (sender or content)")
    if (subject, detail) == (7, 13):
        return Verdict(BounceKind.SOFT, "status x.7.13 (account disabled)")
    mailbox_state = MAILBOX_STATE_TEXT.search(text)
    if mailbox_state and subject not in {1}:
        return Verdict(BounceKind.SOFT, f"mailbox state {mailbox_state.group(0)!r}")
    if policy_text:
        return Verdict(BounceKind.POLICY, f"policy wording {policy_text.group(0)!r}")
    if record.smtp_phase in {"connect", "mail"}:
        # Refused before any recipient was named: the receiver refused the sender.
        return Verdict(BounceKind.POLICY, f"refused at the {record.smtp_phase} stage")
    permanent = klass == 5 or (not klass and (record.smtp_code or 0) >= 500)
    if record.smtp_phase == "data" and permanent and subject not in {1, 2, 3}:
        # The recipient was accepted at RCPT TO and the message refused after its content was
        # seen: a judgement of the message, whatever the wording says about the user.
        return Verdict(BounceKind.POLICY, "refused after the message content (DATA)")

    if klass == 4 or record.dsn_action == "delayed":
        return Verdict(BounceKind.SOFT, f"temporary failure {status or record.dsn_action}")
    if klass == 5:
        full = bool(FULL_TEXT.search(text))
        by_status = _by_status(
            subject, detail, hard=bool(hard_text), soft=bool(soft_text), full=full
        )
        if by_status is not None:
            return Verdict(by_status, f"status {status}")
    if hard_text:
        return Verdict(BounceKind.HARD, f"unknown-address wording {hard_text.group(0)!r}")
    if soft_text:
        return Verdict(BounceKind.SOFT, f"transient wording {soft_text.group(0)!r}")
    if record.smtp_code is not None and 400 <= record.smtp_code < 500:
        return Verdict(BounceKind.SOFT, f"reply code {record.smtp_code}")
    return Verdict(BounceKind.UNKNOWN, "no reliable status or wording")


def _by_status(
    subject: int, detail: int, *, hard: bool, soft: bool, full: bool
) -> BounceKind | None:
    """A permanent status that decides on its own; ``None`` when only the wording can."""
    if subject == 1:
        # 5.1.x addressing: unknown user (1), unknown domain (2), bad syntax (3), moved (6)...
        # but a full mailbox wrongly reported as 5.1.1 still reads "full".
        return BounceKind.SOFT if full and not hard else BounceKind.HARD
    if subject == 2:
        # 5.2.x mailbox: full (2), too big (3), disabled (1). Disabled mailboxes come back,
        # unless the wording says the user does not exist.
        if detail == 1 and hard and not soft:
            return BounceKind.HARD
        return BounceKind.SOFT
    if subject == 3:
        # 5.3.x mail system: full, too big (4), not accepting. Passing, unless "no such user".
        return BounceKind.HARD if hard and not soft else BounceKind.SOFT
    if subject == 4:
        # 5.4.x routing: an unknown host is hard; loops, timeouts and "no answer" pass.
        return BounceKind.HARD if hard and not soft else BounceKind.SOFT
    return None


def _parts(status: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"([245])\.(\d{1,3})\.(\d{1,3})", status.strip())
    if not match:
        return (0, -1, -1)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3)))
