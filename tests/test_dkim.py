"""DKIM: our own signatures must verify with dkimpy against an offline DNS table."""

from __future__ import annotations

import re
import stat
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.errors import ConfigError
from digest.send.dkim import DkimSigner, generate_key, key_file, make_default, public_txt
from digest.send.message import MessageTemplate, Recipient
from digest.settings import Settings

NOW = datetime(2017, 3, 17, 8, 0, tzinfo=UTC)
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
DNS = {b"sel._domainkey.news.example.org.": public_txt(KEY).encode()}


def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
    return DNS.get(name)


def signed_message(*, name: str = "Ann Lee", url: str = "https://news.example.org/u/T1") -> bytes:
    settings = Settings(base_url="https://news.example.org", from_email="digest@news.example.org")
    signer = DkimSigner(domain="news.example.org", selector="sel", rsa_key=KEY)
    template = MessageTemplate.build(
        subject="Die Woche — five stories",
        html="<p>Hello   %%NAME%%</p>\n"
        + "<td>   indented   cell  </td>\n" * 300
        + '<a href="%%UNSUBSCRIBE_URL%%">unsubscribe</a>\n',
        text="Hello %%NAME%%\n\nUnsubscribe: %%UNSUBSCRIBE_URL%%\n",
        settings=settings,
        campaign="2017-W11",
        signer=signer,
    )
    who = Recipient(
        email="ann@example.net",
        name=name,
        unsubscribe_url=url,
        preferences_url="https://news.example.org/p/T1",
    )
    return template.render(who, date=NOW, message_id="<m1@news.example.org>")


def test_dkimpy_verifies_the_fast_path_signature() -> None:
    assert dkim.verify(signed_message(), dnsfunc=dnsfunc)


@pytest.mark.parametrize("name", ["", "Zoë   Ångström", "Lee, Ann", "a" * 120])
def test_it_verifies_for_every_kind_of_recipient_value(name: str) -> None:
    assert dkim.verify(signed_message(name=name), dnsfunc=dnsfunc)


def test_the_signature_covers_list_unsubscribe_post_and_oversigns() -> None:
    data = signed_message()
    header = data.split(b"\r\nFrom:")[0].decode()
    tags = "".join(header.split())
    h = tags.split("h=")[1].split(";")[0].split(":")
    for name in ("from", "subject", "list-unsubscribe", "list-unsubscribe-post"):
        assert name in h
    for name in ("from", "list-unsubscribe", "list-unsubscribe-post"):
        assert h.count(name) == 2, name
    assert "c=relaxed/relaxed" in tags and "a=rsa-sha256" in tags


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b""),
        lambda m: m.replace(b"\r\n\r\n", b"\r\nFrom: Mallory <m@evil.example>\r\n\r\n", 1),
        lambda m: m.replace(b"indented", b"intended", 1),
        lambda m: re.sub(rb"\r\nSubject: [^\r]*", b"\r\nSubject: Something else", m),
    ],
    ids=["drop-one-click", "second-from", "body", "subject"],
)
def test_any_change_to_signed_content_breaks_the_signature(change: object) -> None:
    data = signed_message()
    assert callable(change)
    tampered = change(data)
    assert tampered != data
    assert not dkim.verify(tampered, dnsfunc=dnsfunc)


def test_the_general_sign_path_verifies_for_arbitrary_bytes() -> None:
    signer = DkimSigner(domain="news.example.org", selector="sel", rsa_key=KEY)
    message = (
        b"From: a@news.example.org\r\nTo: b@example.net\r\nSubject:  spaced   out \r\n"
        b"\r\nline with trailing space   \r\n\tindented\t\ttabs\r\n\r\n\r\n"
    )
    assert dkim.verify(signer.sign(message), dnsfunc=dnsfunc)


def test_an_ed25519_signature_is_added_beside_the_rsa_one() -> None:
    pytest.importorskip("nacl", reason="dkimpy needs PyNaCl to verify ed25519")
    ed = ed25519.Ed25519PrivateKey.generate()
    signer = DkimSigner(domain="news.example.org", selector="sel", rsa_key=KEY, ed25519_key=ed)
    table = dict(DNS)
    table[b"sel-ed._domainkey.news.example.org."] = public_txt(ed).encode()
    signed = signer.sign(b"From: a@news.example.org\r\nSubject: x\r\n\r\nbody\r\n")
    assert signed.count(b"DKIM-Signature:") == 2
    assert dkim.verify(signed, dnsfunc=lambda n, timeout=5: table.get(n))


def test_keygen_writes_a_private_pem_and_returns_the_txt_record(tmp_path: Path) -> None:
    path = key_file(tmp_path, selector="s1", domain="news.example.org")
    txt = generate_key(path=path)
    assert txt.startswith("v=DKIM1; k=rsa; p=")
    assert "\n" not in txt
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ConfigError, match="exists"):
        generate_key(path=path)


def test_from_settings_uses_the_keygen_default_and_signs_verifiably(tmp_path: Path) -> None:
    assert DkimSigner.from_settings(Settings(data_dir=tmp_path)) is None
    path = key_file(tmp_path, selector="s1", domain="news.example.org")
    txt = generate_key(path=path)
    make_default(data_dir=tmp_path, selector="s1", domain="news.example.org", key=path)
    signer = DkimSigner.from_settings(Settings(data_dir=tmp_path))
    assert signer is not None and signer.selector == "s1"
    table = {b"s1._domainkey.news.example.org.": txt.encode()}
    signed = signer.sign(b"From: a@news.example.org\r\nSubject: x\r\n\r\nbody\r\n")
    assert dkim.verify(signed, dnsfunc=lambda n, timeout=5: table.get(n))


def test_a_configured_domain_without_a_key_file_names_the_fix(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, dkim_domain="news.example.org", dkim_selector="nope")
    with pytest.raises(ConfigError, match="dkim keygen"):
        DkimSigner.from_settings(settings)


def test_a_short_rsa_key_is_refused() -> None:
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ConfigError, match="2048"):
        DkimSigner(domain="d.example", selector="s", rsa_key=short)


def test_a_configured_ed25519_key_adds_a_verifiable_second_signature(tmp_path: Path) -> None:
    pytest.importorskip("nacl", reason="dkimpy needs PyNaCl to verify ed25519")
    from cryptography.hazmat.primitives import serialization

    rsa_path = key_file(tmp_path, selector="s1", domain="news.example.org")
    rsa_txt = generate_key(path=rsa_path)
    ed = ed25519.Ed25519PrivateKey.generate()
    ed_path = tmp_path / "ed.pem"
    ed_path.write_bytes(
        ed.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    settings = Settings(
        data_dir=tmp_path,
        dkim_domain="news.example.org",
        dkim_selector="s1",
        dkim_ed25519_key=ed_path,
    )
    signer = DkimSigner.from_settings(settings)
    assert signer is not None
    table = {
        b"s1._domainkey.news.example.org.": rsa_txt.encode(),
        b"s1-ed._domainkey.news.example.org.": public_txt(ed).encode(),
    }
    signed = signer.sign(b"From: a@news.example.org\r\nSubject: x\r\n\r\nbody\r\n")
    assert signed.count(b"DKIM-Signature:") == 2
    assert b"a=ed25519-sha256" in signed and b"a=rsa-sha256" in signed
    checker = dkim.DKIM(signed)
    for index in (0, 1):  # dkim.verify() checks only the first signature
        assert checker.verify(idx=index, dnsfunc=lambda n, timeout=5: table.get(n))
