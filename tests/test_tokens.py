"""Unsubscribe/preferences tokens are unforgeable; confirmation tokens are stored hashed."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.errors import InputError
from digest.settings import Settings
from digest.subscribers import tokens


@pytest.fixture
def keyed(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, secret_key="k" * 32)  # type: ignore[arg-type]


def test_an_unsubscribe_token_names_the_subscriber_and_the_newsletter(keyed: Settings) -> None:
    token = tokens.unsubscribe_token(settings=keyed, subscriber_id=42, newsletter="friday")
    assert tokens.read_unsubscribe_token(token, settings=keyed) == (42, "friday")


def test_changing_the_subscriber_in_a_token_is_detected(keyed: Settings) -> None:
    token = tokens.unsubscribe_token(settings=keyed, subscriber_id=42, newsletter="friday")
    other = tokens.unsubscribe_token(settings=keyed, subscriber_id=43, newsletter="friday")
    forged = other.split(".")[0] + "." + token.split(".")[1]
    with pytest.raises(InputError, match="not valid"):
        tokens.read_unsubscribe_token(forged, settings=keyed)


def test_a_token_signed_with_another_secret_is_refused(keyed: Settings, tmp_path: Path) -> None:
    stranger = Settings(data_dir=tmp_path / "x", secret_key="z" * 32)  # type: ignore[arg-type]
    token = tokens.unsubscribe_token(settings=stranger, subscriber_id=1, newsletter="friday")
    with pytest.raises(InputError):
        tokens.read_unsubscribe_token(token, settings=keyed)


def test_an_unsubscribe_token_does_not_open_the_preferences_page(keyed: Settings) -> None:
    token = tokens.unsubscribe_token(settings=keyed, subscriber_id=7, newsletter="friday")
    with pytest.raises(InputError, match="preferences link"):
        tokens.read_preferences_token(token, settings=keyed)
    pref = tokens.preferences_token(settings=keyed, subscriber_id=7, newsletter="friday")
    assert tokens.read_preferences_token(pref, settings=keyed) == (7, "friday")
    with pytest.raises(InputError):
        tokens.read_unsubscribe_token(pref, settings=keyed)


def test_the_secret_is_created_once_when_none_is_configured(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path)
    token = tokens.unsubscribe_token(settings=first, subscriber_id=5, newsletter="friday")
    again = Settings(data_dir=tmp_path)
    assert tokens.read_unsubscribe_token(token, settings=again) == (5, "friday")


@given(st.text(max_size=120))
def test_arbitrary_text_is_never_accepted_as_a_token(text: str) -> None:
    keyed = Settings(data_dir=Path("/nonexistent"), secret_key="k" * 32)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        tokens.read_unsubscribe_token(text, settings=keyed)


def test_confirm_tokens_are_random_and_only_their_hash_is_kept() -> None:
    token, digest = tokens.new_confirm_token()
    other, _ = tokens.new_confirm_token()
    assert token != other and len(token) >= 43
    assert digest == tokens.hash_confirm_token(token) and token not in digest
    assert len(digest) == 64
