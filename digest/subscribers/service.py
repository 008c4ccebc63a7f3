"""The subscriber flows that the CLI and the web call, under one name: subscribe, confirm,
unsubscribe, preferences, remove, erase, and the lookups and links they need. Each flow takes a
session and an explicit ``now``; the caller commits. Status changes go through
``consent.transition``.

The code lives by concern: ``lifecycle`` (the states of a subscription), ``preferences`` (the
``/p/`` page), ``recipients`` (addresses, lookups, suppressions, who gets mail) and ``links``
(the signed URLs); this module gathers them for callers that think in flows.
"""

from __future__ import annotations

from digest.subscribers.consent import is_suppressed, may_receive
from digest.subscribers.lifecycle import (
    SubscribeOutcome,
    add_confirmed,
    check_confirm_token,
    confirm,
    erase,
    issue_confirm_token,
    remove,
    subscribe,
    unsubscribe,
)
from digest.subscribers.links import confirm_url, preferences_url, unsubscribe_url
from digest.subscribers.preferences import subscriber_for_preferences, update_preferences
from digest.subscribers.recipients import (
    LIFTED_BY_FRESH_CONSENT,
    confirmed_recipients,
    find_by_email,
    parse_address,
)

__all__ = [
    "LIFTED_BY_FRESH_CONSENT",
    "SubscribeOutcome",
    "add_confirmed",
    "check_confirm_token",
    "confirm",
    "confirm_url",
    "confirmed_recipients",
    "erase",
    "find_by_email",
    "is_suppressed",
    "issue_confirm_token",
    "may_receive",
    "parse_address",
    "preferences_url",
    "remove",
    "subscribe",
    "subscriber_for_preferences",
    "unsubscribe",
    "unsubscribe_url",
    "update_preferences",
]
