"""Per-recipient message bytes: structure, headers, encoding, injection, wire-cleanliness."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from digest.errors import InputError
from digest.render.personalise import Personaliser, recipient_values
from digest.send.message import (
    MessageTemplate,
    Recipient,
    WireBytes,
    _encode_value,
    new_message_id,
    qp_lines,
)
from digest.send.smtp import is_wire_clean
from digest.settings import Settings

NOW = datetime(2017, 3, 17, 8, 0, tzinfo=UTC)
HTML = (
    "<html><body><p>Hello %%NAME%%,</p>\n"
    + "<p>   A story   with  spaces, ümlauts — and a very long line "
    + "x" * 300
    + "</p>\n" * 40
    + '.\n<a href="%%UNSUBSCRIBE_URL%%">Unsubscribe</a> · <a href="%%PREFERENCES_URL%%">Prefs</a>'
    + "\n<p>Example Newsroom, 1 Market Street</p></body></html>\n"
)
TEXT = (
    "Hello %%NAME%%,\n\n. a line starting with a dot\ntrailing space \n\n"
    "Unsubscribe: %%UNSUBSCRIBE_URL%%\n"
)


def make_settings(**over: object) -> Settings:
    values: dict[str, object] = {
        "base_url": "https://news.example.org",
        "from_email": "digest@news.example.org",
    }
    values.update(over)
    return Settings(**values)  # type: ignore[arg-type]


def recipient(**over: object) -> Recipient:
    values: dict[str, object] = {
        "email": "ann@example.net",
        "name": "Ann Lee",
        "unsubscribe_url": "https://news.example.org/u/TOKEN1",
        "preferences_url": "https://news.example.org/p/TOKEN1?a=1&b=2",
    }
    values.update(over)
    return Recipient(**values)  # type: ignore[arg-type]


def build(subject: str = "The week: five stories", **over: object) -> MessageTemplate:
    return MessageTemplate.build(
        subject=subject, html=HTML, text=TEXT, settings=make_settings(**over), campaign="2017-W11"
    )


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def render(template: MessageTemplate, who: Recipient | None = None) -> bytes:
    return template.render(who or recipient(), date=NOW, message_id="<m1@news.example.org>")


def norm(s: str) -> str:
    """Decoded parts use CRLF line breaks; compare them with the template's LF form."""
    return s.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")


def expected(template: str, who: Recipient, *, html: bool) -> str:
    values = recipient_values(
        unsubscribe_url=who.unsubscribe_url, preferences_url=who.preferences_url, name=who.name
    )
    return Personaliser(template, html=html).fill(values)


def test_it_puts_the_text_part_before_the_html_part() -> None:
    msg = parse(render(build()))
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_each_part_decodes_to_what_the_personaliser_fills_in() -> None:
    who = recipient(name="Zoë O'Hara & Co")
    text_part, html_part = parse(render(build(), who)).iter_parts()
    assert norm(text_part.get_content()) == norm(expected(TEXT, who, html=False))
    assert norm(html_part.get_content()) == norm(expected(HTML, who, html=True))


def test_a_missing_name_gets_the_same_stand_in_as_the_renderer() -> None:
    who = recipient(name="")
    text_part, _ = parse(render(build(), who)).iter_parts()
    assert text_part.get_content().startswith(expected(TEXT, who, html=False).split(",")[0])
    assert parse(render(build(), who))["To"] == "ann@example.net"


def test_required_headers_appear_exactly_once() -> None:
    data = render(build())
    msg = parse(data)
    for name in (
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Feedback-ID",
        "MIME-Version",
    ):
        assert len(msg.get_all(name) or []) == 1, name
    assert msg["Message-ID"] == "<m1@news.example.org>"
    assert msg["List-Id"] == "The Friday Digest <friday.news.example.org>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_list_unsubscribe_has_exactly_one_https_uri_and_a_mailto() -> None:
    value = str(parse(render(build()))["List-Unsubscribe"])
    uris = [u.strip().strip("<>") for u in value.split(",")]
    assert [u for u in uris if u.startswith("https:")] == ["https://news.example.org/u/TOKEN1"]
    assert len([u for u in uris if u.startswith("mailto:")]) == 1


def test_an_http_unsubscribe_link_gets_no_one_click_header() -> None:
    msg = parse(render(build(), recipient(unsubscribe_url="http://127.0.0.1:8000/u/T")))
    assert msg["List-Unsubscribe"] is not None
    assert msg["List-Unsubscribe-Post"] is None


def test_feedback_id_is_the_same_for_every_recipient() -> None:
    template = build()
    a = parse(render(template, recipient()))["Feedback-ID"]
    b = parse(render(template, recipient(email="bob@example.com", name="Bob")))["Feedback-ID"]
    assert a == b == "2017-W11:friday:digest:news.example.org"


def test_message_ids_are_unique_and_on_our_own_domain() -> None:
    s = make_settings()
    ids = {new_message_id(settings=s) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("<") and i.endswith("@news.example.org>") for i in ids)


def test_a_forked_child_mints_message_ids_of_its_own() -> None:
    import os

    s = make_settings()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child writes one id and leaves at once
        os.write(write, new_message_id(settings=s).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 200).decode()
    parent = new_message_id(settings=s)
    assert child.split(".")[1][:12] != parent.split(".")[1][:12]  # a prefix of its own


@hsettings(max_examples=200, deadline=None)
@given(
    value=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=300)
    | st.from_regex(r"https://[a-z.]{1,40}/u/[A-Za-z0-9_.-]{20,120}", fullmatch=True)
)
def test_a_spliced_value_is_encoded_as_the_general_encoder_does(value: str) -> None:
    # Links and plain names take a short cut; it must give exactly the general encoder's bytes.
    general = ("\r\n".join(qp_lines(value, value=True)) + "=\r\n").encode() if value else b""
    assert _encode_value(value) == general


def test_non_ascii_subject_and_names_are_encoded_and_decode_back() -> None:
    subject = "Wöchentliche Übersicht — die Nachrichten der Woche, kurz und bündig, mit Überlänge"
    data = render(build(subject, from_name="Die Wochenschau"), recipient(name="Zoë Ångström"))
    head = data.split(b"\r\n\r\n")[0]
    assert head.isascii()
    msg = parse(data)
    assert msg["Subject"] == subject
    assert msg["To"].addresses[0].display_name == "Zoë Ångström"


def test_a_name_with_specials_is_quoted() -> None:
    msg = parse(render(build(), recipient(name='Lee, Ann "The Reader"')))
    assert msg["To"].addresses[0].display_name == 'Lee, Ann "The Reader"'
    assert msg["To"].addresses[0].addr_spec == "ann@example.net"


@pytest.mark.parametrize(
    "field, value",
    [
        ("name", "Ann\r\nBcc: victim@example.com"),
        ("email", "ann@example.net\nBcc: x@y.z"),
        ("unsubscribe_url", "https://news.example.org/u/T\r\nX-Evil: 1"),
    ],
)
def test_it_refuses_line_breaks_in_recipient_header_values(field: str, value: str) -> None:
    with pytest.raises(InputError):
        render(build(), recipient(**{field: value}))


def test_it_refuses_line_breaks_in_the_subject() -> None:
    with pytest.raises(InputError, match="Subject"):
        build("Hello\r\nBcc: victim@example.com")


def test_an_international_domain_is_sent_as_punycode() -> None:
    msg = parse(render(build(), recipient(email="ann@bücher.example")))
    assert msg["To"].addresses[0].addr_spec == "ann@xn--bcher-kva.example"


def test_the_bytes_are_wire_ready_crlf_short_lines_no_leading_dot() -> None:
    data = render(build())
    assert isinstance(data, WireBytes)
    assert is_wire_clean(bytes(data))
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    body = data.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


def test_verp_puts_the_token_in_the_envelope_sender() -> None:
    template = build(verp_domain="bounces.example.org")
    assert template.envelope_from(recipient(verp_token="d42")) == "bounces+d42@bounces.example.org"
    assert build().envelope_from(recipient(verp_token="d42")) == "digest@news.example.org"


def test_quoted_printable_lines_never_start_with_a_dot_or_end_in_space() -> None:
    lines = qp_lines("." * 200 + " \n.x \t\n" + "a" * 74 + ".b")
    assert all(not line.startswith(".") for line in lines)
    assert all(not line.endswith((" ", "\t")) for line in lines)
    assert all(len(line) <= 76 for line in lines)


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=400
)
_piece = st.one_of(
    _text, st.sampled_from(["%%NAME%%", "%%UNSUBSCRIBE_URL%%", "%%PREFERENCES_URL%%"])
)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    html=st.lists(_piece, max_size=8),
    text=st.lists(_piece, max_size=8),
    name=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40),
)
def test_any_template_and_name_decode_exactly_and_stay_wire_clean(
    html: list[str], text: list[str], name: str
) -> None:
    html_s, text_s = "".join(html), "".join(text)
    template = MessageTemplate.build(
        subject="s", html=html_s, text=text_s, settings=make_settings(), campaign="c"
    )
    who = recipient(name=name)
    data = render(template, who)
    assert is_wire_clean(data)
    text_part, html_part = parse(data).iter_parts()

    assert norm(text_part.get_content()) == norm(expected(text_s, who, html=False))
    assert norm(html_part.get_content()) == norm(expected(html_s, who, html=True))
