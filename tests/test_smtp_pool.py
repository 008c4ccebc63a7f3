"""The SMTP pool against real aiosmtpd servers on 127.0.0.1: bytes, reuse, TLS, errors."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from support_send import free_port, self_signed, smtp_server

from digest.errors import RelayUnavailable, SendError
from digest.send.message import MessageTemplate, Recipient
from digest.send.smtp import SmtpPool, Throttled, is_wire_clean
from digest.settings import Settings


@dataclass
class Scripted:
    """An aiosmtpd handler that answers from a script: per address RCPT replies, per message
    DATA replies, an optional MAIL reply, or a dropped connection at DATA."""

    received: list[tuple[str, list[str], bytes, Any]] = field(default_factory=list)
    rcpt: dict[str, list[str]] = field(default_factory=dict)
    data: list[str] = field(default_factory=list)
    mail: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.mail:
            return self.mail.pop(0)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        script = self.rcpt.get(address)
        if script:
            return script.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = self.data.pop(0) if self.data else "250 OK"
        if reply == "drop":
            server.transport.close()
            return "451 dropped"
        if reply.startswith("250"):
            with self.lock:
                self.received.append(
                    (
                        envelope.mail_from,
                        list(envelope.rcpt_tos),
                        bytes(envelope.original_content),
                        session.peer,
                    )
                )
        return reply


@pytest.fixture
def server() -> Iterator[tuple[Scripted, int]]:
    handler = Scripted()
    with smtp_server(handler) as port:
        yield handler, port


def pool_settings(port: int, **over: object) -> Settings:
    values: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_timeout": 5.0,
        "base_url": "https://news.example.org",
        "from_email": "digest@news.example.org",
    }
    values.update(over)
    return Settings(**values)  # type: ignore[arg-type]


def a_message(to: str = "ann@example.net") -> bytes:
    template = MessageTemplate.build(
        subject="Five stories",
        html="<p>Hi %%NAME%%</p>\n"
        + "<p>  body  </p>\n" * 500
        + '<a href="%%UNSUBSCRIBE_URL%%">u</a>',
        text="Hi %%NAME%%\n.\n%%UNSUBSCRIBE_URL%%\n",
        settings=pool_settings(0),
        campaign="w",
    )
    who = Recipient(
        email=to,
        name="Ann",
        unsubscribe_url="https://news.example.org/u/T",
        preferences_url="https://news.example.org/p/T",
    )
    return template.render(
        who, date=datetime(2017, 3, 17, tzinfo=UTC), message_id="<m@news.example.org>"
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def send_all(pool: SmtpPool, messages: list[tuple[str, bytes]]) -> list[BaseException | None]:
    results: list[BaseException | None] = []
    try:
        for to, data in messages:
            try:
                await pool.send(
                    envelope_from="digest@news.example.org", recipients=[to], message=data
                )
                results.append(None)
            except RelayUnavailable:
                raise
            except SendError as exc:
                results.append(exc)
    finally:
        await pool.aclose()
    return results


def test_clean_bytes_arrive_byte_identical(server: tuple[Scripted, int]) -> None:
    handler, port = server
    data = a_message()
    assert is_wire_clean(data)
    assert run(send_all(SmtpPool(pool_settings(port)), [("ann@example.net", data)])) == [None]
    assert handler.received[0][2] == data
    assert handler.received[0][1] == ["ann@example.net"]


def test_unclean_bytes_are_normalised_and_dot_stuffed_like_aiosmtplib(
    server: tuple[Scripted, int],
) -> None:
    handler, port = server
    data = b"From: a@news.example.org\nSubject: x\n\n.leading dot\nbare lf\r\n..two dots"
    run(send_all(SmtpPool(pool_settings(port)), [("ann@example.net", data)]))
    expected = (
        b"From: a@news.example.org\r\nSubject: x\r\n\r\n.leading dot\r\nbare lf\r\n..two dots\r\n"
    )
    assert handler.received[0][2] == expected


def test_connections_are_reused_and_recycled_after_m_messages(server: tuple[Scripted, int]) -> None:
    handler, port = server
    pool = SmtpPool(pool_settings(port, smtp_connections=2, smtp_recycle_after=5))
    run(send_all(pool, [(f"r{i}@example.net", a_message(f"r{i}@example.net")) for i in range(20)]))
    assert len(handler.received) == 20
    assert pool.connects == 4
    assert len({peer for *_, peer in handler.received}) == 4


def test_concurrent_sends_use_at_most_n_connections(server: tuple[Scripted, int]) -> None:
    handler, port = server
    pool = SmtpPool(pool_settings(port, smtp_connections=3))

    async def go() -> None:
        await asyncio.gather(
            *(
                pool.send(
                    envelope_from="digest@news.example.org",
                    recipients=[f"r{i}@example.net"],
                    message=a_message(),
                )
                for i in range(30)
            )
        )
        await pool.aclose()

    run(go())
    assert len(handler.received) == 30
    assert pool.connects <= 3


def test_a_550_recipient_is_permanent_with_code_and_text(server: tuple[Scripted, int]) -> None:
    handler, port = server
    handler.rcpt["gone@example.net"] = ["550 5.1.1 no such user"]
    results = run(
        send_all(
            SmtpPool(pool_settings(port)),
            [("gone@example.net", a_message()), ("ann@example.net", a_message())],
        )
    )
    error = results[0]
    assert isinstance(error, SendError) and error.permanent and error.code == 550
    assert "5.1.1 no such user" in str(error)
    assert results[1] is None and len(handler.received) == 1


def test_a_451_is_temporary(server: tuple[Scripted, int]) -> None:
    handler, port = server
    handler.rcpt["busy@example.net"] = ["451 4.3.0 try later"]
    [error] = run(send_all(SmtpPool(pool_settings(port)), [("busy@example.net", a_message())]))
    assert isinstance(error, SendError) and not error.permanent and error.code == 451


def test_a_554_after_data_is_permanent(server: tuple[Scripted, int]) -> None:
    handler, port = server
    handler.data = ["554 5.7.1 content rejected"]
    [error] = run(send_all(SmtpPool(pool_settings(port)), [("ann@example.net", a_message())]))
    assert isinstance(error, SendError) and error.permanent and error.code == 554


def test_a_421_closes_the_connection_and_the_next_message_reconnects(
    server: tuple[Scripted, int],
) -> None:
    handler, port = server
    handler.rcpt["a@example.net"] = ["421 4.4.2 closing"]
    pool = SmtpPool(pool_settings(port, smtp_connections=1))
    results = run(send_all(pool, [("a@example.net", a_message()), ("b@example.net", a_message())]))
    assert isinstance(results[0], SendError) and results[0].code == 421 and not results[0].permanent
    assert results[1] is None
    assert pool.connects == 2


def test_a_dropped_connection_mid_data_is_temporary_and_recovers(
    server: tuple[Scripted, int],
) -> None:
    handler, port = server
    handler.data = ["drop"]
    pool = SmtpPool(pool_settings(port, smtp_connections=1))
    results = run(send_all(pool, [("a@example.net", a_message()), ("a@example.net", a_message())]))
    assert isinstance(results[0], SendError) and not results[0].permanent
    assert results[1] is None and len(handler.received) == 1


def test_gmail_4_7_28_pauses_the_pool_and_resumes_on_one_connection(
    server: tuple[Scripted, int],
) -> None:
    handler, port = server
    handler.rcpt["a@example.net"] = ["421 4.7.28 unusual rate of mail, slow down"]
    pool = SmtpPool(pool_settings(port, smtp_connections=4), quota_pause=0.2, ramp_every=2)

    async def go() -> tuple[BaseException | None, int, int]:
        first: BaseException | None = None
        try:
            await pool.send(
                envelope_from="digest@news.example.org",
                recipients=["a@example.net"],
                message=a_message(),
            )
        except Throttled as exc:
            first = exc
        limit_after = pool.gate.limit
        for i in range(4):
            await pool.send(
                envelope_from="digest@news.example.org",
                recipients=[f"r{i}@example.net"],
                message=a_message(),
            )
        await pool.aclose()
        return first, limit_after, pool.gate.limit

    first, limit_after, limit_end = run(go())
    assert isinstance(first, Throttled) and first.code == 421 and not first.permanent
    assert limit_after == 1
    assert limit_end == 3  # one more connection after every two accepted messages
    assert len(handler.received) == 4


def test_a_dead_relay_raises_relay_unavailable_naming_it() -> None:
    port = free_port()
    pool = SmtpPool(pool_settings(port), connect_attempts=2, connect_backoff=0.01)
    with pytest.raises(RelayUnavailable, match=f"127.0.0.1:{port}"):
        run(send_all(pool, [("a@example.net", a_message())]))


def test_a_refused_sender_stops_the_send(server: tuple[Scripted, int]) -> None:
    handler, port = server
    handler.mail = ["550 5.7.1 sender not allowed"]
    with pytest.raises(RelayUnavailable, match="refuses the sender"):
        run(send_all(SmtpPool(pool_settings(port)), [("a@example.net", a_message())]))


# --- TLS and AUTH --------------------------------------------------------------------------------


class Recorder(Scripted):
    """Also remembers whether each accepted message came over TLS and after AUTH."""

    sessions: list[tuple[bool, bool]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sessions.append((session.ssl is not None, bool(session.authenticated)))
        return await super().handle_DATA(server, session, envelope)


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult

    ok = data.login == b"digest" and data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def tls_server(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Recorder, int]]:
    import ssl

    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts our test certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = Recorder()
    handler.sessions = []
    with smtp_server(
        handler, tls_context=context, authenticator=check_login, auth_require_tls=True
    ) as port:
        yield handler, port


def test_starttls_and_auth_are_used_when_configured(tls_server: tuple[Recorder, int]) -> None:
    handler, port = tls_server
    cfg = pool_settings(port, smtp_tls="starttls", smtp_user="digest", smtp_password="s3cret")
    assert run(send_all(SmtpPool(cfg), [("a@example.net", a_message())])) == [None]
    assert handler.sessions == [(True, True)]


def test_tls_none_never_upgrades_quietly(tls_server: tuple[Recorder, int]) -> None:
    handler, port = tls_server
    assert run(send_all(SmtpPool(pool_settings(port)), [("a@example.net", a_message())])) == [None]
    assert handler.sessions == [(False, False)]  # the server offered STARTTLS; we said no


def test_a_refused_login_stops_the_send_naming_the_settings(
    tls_server: tuple[Recorder, int],
) -> None:
    _, port = tls_server
    cfg = pool_settings(port, smtp_tls="starttls", smtp_user="digest", smtp_password="wrong")
    with pytest.raises(RelayUnavailable, match="DIGEST_SMTP_PASSWORD"):
        run(send_all(SmtpPool(cfg), [("a@example.net", a_message())]))


# --- the handover gate: the end-of-data marker waits for the ledger ------------------------


def test_the_end_of_data_marker_waits_for_the_handover_gate(server: tuple[Scripted, int]) -> None:
    handler, port = server
    pool = SmtpPool(pool_settings(port))
    data = a_message()

    async def go() -> tuple[int, int]:
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sending = asyncio.ensure_future(
            pool.send(
                envelope_from="digest@news.example.org",
                recipients=["ann@example.net"],
                message=data,
                handover_after=gate,
            )
        )
        # Envelope and body are on the wire; without the marker the server has nothing yet.
        await asyncio.sleep(0.5)
        before = len(handler.received)
        gate.set_result(None)
        await sending
        await pool.aclose()
        return before, len(handler.received)

    assert run(go()) == (0, 1)
    assert handler.received[0][2] == data


def test_a_failed_handover_gate_hands_nothing_over_and_the_pool_recovers(
    server: tuple[Scripted, int],
) -> None:
    handler, port = server
    pool = SmtpPool(pool_settings(port, smtp_connections=1))

    async def go() -> None:
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        gate.set_exception(OSError("ledger commit failed"))
        with pytest.raises(OSError, match="ledger commit failed"):
            await pool.send(
                envelope_from="digest@news.example.org",
                recipients=["ann@example.net"],
                message=a_message("ann@example.net"),
                handover_after=gate,
            )
        await pool.send(
            envelope_from="digest@news.example.org",
            recipients=["bob@example.net"],
            message=a_message("bob@example.net"),
        )
        await pool.aclose()

    run(go())
    # The connection was dropped mid-DATA, so the server discarded Ann's transaction.
    assert [rcpts for _, rcpts, _, _ in handler.received] == [["bob@example.net"]]
    assert pool.connects == 2
