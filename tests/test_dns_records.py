"""`digest dns-records`: SPF, DKIM (from the configured key) and DMARC to publish."""

from __future__ import annotations

import json
from pathlib import Path

import dkim
from typer.testing import CliRunner

from digest.check_dns import DnsRecord, dns_records
from digest.cli import app
from digest.send.dkim import DkimSigner, generate_key, key_file, make_default
from digest.settings import Settings


def test_without_a_key_it_prints_spf_and_dmarc_only(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, from_email="digest@news.example.org")

    records = {r.name: r for r in dns_records(settings)}

    assert records["news.example.org"].value == "v=spf1 mx ~all"
    assert records["_dmarc.news.example.org"].value.startswith("v=DMARC1; p=none;")
    assert not any("_domainkey" in name for name in records)


def test_the_dkim_record_verifies_what_the_signer_signs(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        from_email="digest@news.example.org",
        verp_domain="bounce.news.example.org",
        smtp_host="smtp.relay.example",
    )
    path = key_file(settings.data_dir, selector="s1", domain="news.example.org")
    generate_key(path=path)
    make_default(data_dir=settings.data_dir, selector="s1", domain="news.example.org", key=path)
    signer = DkimSigner.from_settings(settings)
    assert signer is not None
    signed = signer.sign(b"From: digest@news.example.org\r\nSubject: hi\r\n\r\nbody\r\n")

    records = {r.name: r for r in dns_records(settings)}
    published = records["s1._domainkey.news.example.org"].value
    table = {b"s1._domainkey.news.example.org.": published.encode()}

    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: table.get(name))
    assert records["bounce.news.example.org"].value == "v=spf1 mx a:smtp.relay.example ~all"


def test_a_long_txt_value_is_split_into_255_octet_strings() -> None:
    record = DnsRecord("s._domainkey.example.org", "TXT", "p=" + "A" * 400, "why")

    line = record.zone_line()

    strings = json.loads("[" + line.split(" TXT ", 1)[1].replace('" "', '", "') + "]")
    assert [len(s) for s in strings] == [255, 147]
    assert "".join(strings) == record.value


def test_the_command_prints_zone_lines_and_json(tmp_path: Path) -> None:
    env = {"DIGEST_DATA_DIR": str(tmp_path), "DIGEST_FROM_EMAIL": "digest@news.example.org"}

    text = CliRunner().invoke(app, ["dns-records"], env=env)
    as_json = CliRunner().invoke(app, ["dns-records", "--json"], env=env)

    assert text.exit_code == 0, text.output
    assert 'news.example.org. 3600 IN TXT "v=spf1 mx ~all"' in text.output
    assert {r["type"] for r in json.loads(as_json.stdout)} == {"TXT"}
