"""Sending throughput and cost per recipient: digest's engine against a naive sender.

    .venv/bin/python -m bench.sending [--messages 2000] [--connections 8]
        [--more-connections 16] [--repeat 3] [--quick]

Receivers: a minimal asyncio SMTP sink on loopback (started here, in its own process) and, when
Debian's postfix is installed, postfix's own ``smtp-sink`` (a real MTA's benchmark receiver).
For each receiver, measured in the same run, each scenario in a fresh child process:

  * smtplib, pre-built: messages built and signed beforehand, pushed over one smtplib connection
    (the receiver's own limit for one connection; no building, no signing);
  * naive: ``email.message.EmailMessage`` + dkimpy RSA signing + one aiosmtplib connection;
  * digest pool: ``MessageTemplate`` + the DKIM fast path + ``SmtpPool`` with N connections;
  * digest engine: the whole ``digest issue send`` path on SQLite (the ledger, consent re-check,
    group commits, messages built ahead by the forked prebuild child) through the same pool;
    once more with ``--more-connections``; and with ``SendPolicy.prebuild_from`` at 0, where the
    send loop builds and signs every message itself.

The rows run in ``--repeat`` interleaved rounds (each round: the limit first, then every other
row once), and each run is divided by the limit of its own round: the receiver shares the two
cores, so a limit measured minutes earlier says little. Cells give the median and the range.

Reported: CPU per recipient (user+system) of the sending process and its children (the prebuild
child's CPU counts), messages per second (wall), peak resident memory of the sending process
(the child's own is not in it). All messages carry an RSA-2048 DKIM signature, except "smtplib,
pre-built", whose signing happened before the clock started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

SENDER = "digest@news.example.org"
DOMAIN = "news.example.org"


# --- the minimal sink ---------------------------------------------------------------------------


class _SinkProtocol(asyncio.Protocol):
    """Answers SMTP with fixed replies; in DATA it only looks for the end marker in new bytes."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.in_data = False
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.in_data:
            window = self.tail + data
            end = window.find(b"\r\n.\r\n")
            if end < 0:
                self.tail = window[-4:]
                return
            self.in_data, self.tail = False, b""
            self.transport.write(b"250 2.0.0 queued\r\n")
            data = window[end + 5 :]
        self.buffer += data
        while b"\r\n" in self.buffer and not self.in_data:
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.transport.write(b"250-sink\r\n250-SIZE 52428800\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                self.transport.write(b"354 go ahead\r\n")
                self.in_data, rest, self.buffer = True, self.buffer, b""
                if rest:
                    self.data_received(rest)
            elif verb == b"QUIT":
                self.transport.write(b"221 bye\r\n")
                self.transport.close()
                return
            else:
                self.transport.write(b"250 OK\r\n")


def serve_sink(port: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_SinkProtocol, "127.0.0.1", port, backlog=128)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- what is sent ---------------------------------------------------------------------------------


@dataclass
class Issue:
    subject: str
    html: str
    text: str


def sample_issue(data_dir: Path) -> Issue:
    from digest.render import render_digest
    from digest.render.sample import sample_content

    rendered = render_digest(sample_content(12), settings=bench_settings(data_dir, 0, 1))
    return Issue(rendered.subject, rendered.html, rendered.text)


def bench_settings(data_dir: Path, port: int, connections: int) -> Any:
    from digest.settings import Settings

    return Settings(
        data_dir=data_dir,
        base_url="https://news.example.org",
        from_email=SENDER,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_connections=connections,
        smtp_recycle_after=100_000,
        dkim_domain=DOMAIN,
        dkim_selector="bench",
        dkim_private_key=data_dir / "bench.pem",
    )


def addresses(n: int) -> list[tuple[str, str, str]]:
    return [
        (
            f"reader{i}@example.org",
            f"Reader {i}",
            f"https://news.example.org/u/{i:08d}-tokentokentokentoken",
        )
        for i in range(n)
    ]


# --- scenarios (each runs in a child process) -----------------------------------------------------


def issue_template(issue: Issue, settings: Any) -> Any:
    """digest's per-issue template for the sample issue, DKIM-signed with the bench key."""
    from digest.send.dkim import DkimSigner
    from digest.send.message import MessageTemplate

    return MessageTemplate.build(
        subject=issue.subject,
        html=issue.html,
        text=issue.text,
        settings=settings,
        campaign="2017-W11",
        signer=DkimSigner.from_settings(settings),
    )


def naive_message(issue: Issue, to: str, name: str, url: str, key: bytes) -> bytes:
    import dkim

    from digest.render import Personaliser, recipient_values

    values = recipient_values(unsubscribe_url=url, preferences_url=url, name=name)
    msg = EmailMessage()
    msg["From"] = f"The Friday Digest <{SENDER}>"
    msg["To"] = f"{name} <{to}>"
    msg["Subject"] = issue.subject
    msg["Date"] = "Fri, 17 Mar 2017 08:00:00 +0000"
    msg["Message-ID"] = f"<{time.time_ns()}@{DOMAIN}>"
    msg["List-Id"] = f"The Friday Digest <friday.{DOMAIN}>"
    msg["List-Unsubscribe"] = f"<{url}>, <mailto:unsubscribe@{DOMAIN}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(Personaliser(issue.text, html=False).fill(values))
    msg.add_alternative(Personaliser(issue.html, html=True).fill(values), subtype="html")
    data = msg.as_bytes().replace(b"\n", b"\r\n")
    headers = [
        b"from",
        b"to",
        b"subject",
        b"date",
        b"message-id",
        b"list-id",
        b"list-unsubscribe",
        b"list-unsubscribe-post",
        b"from",
        b"list-unsubscribe",
        b"list-unsubscribe-post",
    ]
    signature = dkim.sign(
        data,
        b"bench",
        DOMAIN.encode(),
        key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=headers,
    )
    return bytes(signature) + data


def run_scenario(name: str, *, port: int, n: int, connections: int, work: Path) -> dict[str, Any]:
    issue = Issue(**json.loads((work / "issue.json").read_text()))
    key = (work / "bench.pem").read_bytes()
    people = addresses(n)
    settings = bench_settings(work, port, connections)

    if name == "smtplib":
        from digest.send.message import Recipient

        template = issue_template(issue, settings)
        now = datetime.now(UTC)
        built = [
            (to, template.render(Recipient(to, nm, url, url), date=now, message_id=f"<{i}@x>"))
            for i, (to, nm, url) in enumerate(people)
        ]
        start_cpu, start = _cpu(), time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for to, data in built:
                smtp.sendmail(SENDER, [to], data)
        return _result(start_cpu, start, n)

    if name == "naive":
        import aiosmtplib

        async def go() -> None:
            smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
            await smtp.connect()
            for to, nm, url in people:
                await smtp.sendmail(SENDER, [to], naive_message(issue, to, nm, url, key))
            await smtp.quit()

        start_cpu, start = _cpu(), time.perf_counter()
        asyncio.run(go())
        return _result(start_cpu, start, n)

    if name == "pool":
        from digest.send.message import Recipient
        from digest.send.smtp import SmtpPool

        async def go_pool() -> None:
            template = issue_template(issue, settings)
            pool = SmtpPool(settings)
            queue = list(reversed(people))

            async def worker() -> None:
                while queue:
                    to, nm, url = queue.pop()
                    data = template.render(
                        Recipient(to, nm, url, url),
                        date=datetime.now(UTC),
                        message_id=f"<{time.time_ns()}@{DOMAIN}>",
                    )
                    await pool.send(envelope_from=SENDER, recipients=[to], message=data)

            await asyncio.gather(*(worker() for _ in range(connections)))
            await pool.aclose()

        start_cpu, start = _cpu(), time.perf_counter()
        asyncio.run(go_pool())
        return _result(start_cpu, start, n)

    if name in ("engine", "engine-inline"):
        from digest.send.commands import run_send
        from digest.send.engine import SendPolicy

        settings = engine_settings(work, port, connections)
        start_cpu, start = _cpu(), time.perf_counter()
        # "inline": the send loop builds and signs every message itself, nothing ahead.
        policy = SendPolicy(prebuild_from=0) if name == "engine-inline" else None
        report = run_send(settings=settings, now=datetime.now(UTC), policy=policy)
        assert report.sent == n, report.summary()
        result = _result(start_cpu, start, n)
        result["sent"] = report.sent
        result["built_ahead"] = report.built_ahead
        return result

    raise SystemExit(f"unknown scenario {name}")


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the engine's prebuild child)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _result(start_cpu: float, start: float, n: int) -> dict[str, Any]:
    wall = time.perf_counter() - start
    cpu = _cpu() - start_cpu
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"cpu_ms_per_msg": cpu / n * 1000, "per_s": n / wall, "rss_mb": rss_kb / 1024}


def build_cost(work: Path, n: int) -> dict[str, float]:
    """CPU per message of building + signing alone (no network), ours against the naive path."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from digest.send.dkim import load_rsa_key
    from digest.send.message import Recipient

    issue = Issue(**json.loads((work / "issue.json").read_text()))
    key = (work / "bench.pem").read_bytes()
    settings = bench_settings(work, 0, 1)
    people = addresses(n)
    start = time.process_time()
    template = issue_template(issue, settings)  # once per issue, so timed on its own
    once = (time.process_time() - start) * 1000
    now = datetime.now(UTC)
    size = 0
    passes = []
    for _ in range(3):
        start = time.process_time()
        for i, (to, nm, url) in enumerate(people):
            message = template.render(Recipient(to, nm, url, url), date=now, message_id=f"<{i}@x>")
            size = len(message)
        passes.append((time.process_time() - start) / n * 1000)
    ours = statistics.median(passes)
    # Where it goes: the RSA signature alone, and the same messages rendered unsigned.
    rsa_key = load_rsa_key(work / "bench.pem")
    data = b"x" * 800  # about what the canonical signed headers come to
    start = time.process_time()
    for _ in people:
        rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    rsa_ms = (time.process_time() - start) / n * 1000
    signer, template.signer = template.signer, None
    start = time.process_time()
    for i, (to, nm, url) in enumerate(people):
        template.render(Recipient(to, nm, url, url), date=now, message_id=f"<{i}@x>")
    unsigned_ms = (time.process_time() - start) / n * 1000
    template.signer = signer
    few = people[: max(20, n // 20)]
    start = time.process_time()
    for to, nm, url in few:
        naive_message(issue, to, nm, url, key)
    naive = (time.process_time() - start) / len(few) * 1000
    return {
        "ours_ms": ours,
        "naive_ms": naive,
        "size": size,
        "template_ms": once,
        "rsa_ms": rsa_ms,
        "unsigned_ms": unsigned_ms,
    }


# --- orchestration --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int) -> None:
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.recv(100)
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"receiver on port {port} did not start")


def engine_settings(work: Path, port: int, connections: int) -> Any:
    """Settings for one engine run, on a fresh copy of the prepared ledger (``prepare``)."""
    data_dir = Path(tempfile.mkdtemp(prefix="engine-", dir=work)) / "data"
    shutil.copytree(work / "engine-template", data_dir)
    return bench_settings(data_dir, port, connections).model_copy(
        update={"dkim_private_key": work / "bench.pem"}
    )


RECEIVERS = {"sink": "minimal asyncio sink", "smtp-sink": "postfix smtp-sink"}


@contextlib.contextmanager
def receiver(kind: str) -> Iterator[int | None]:
    """The port of a running receiver of ``kind`` (a key of RECEIVERS), stopped on exit; None
    when it is not installed."""
    started = start_receiver(kind)
    if started is None:
        yield None
        return
    proc, port = started
    try:
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def start_receiver(kind: str) -> tuple[subprocess.Popen[bytes], int] | None:
    port = free_port()
    if kind == "sink":
        cmd = [sys.executable, "-m", "bench.sending", "--sink", str(port)]
    else:
        binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
        if not Path(binary).exists():
            return None
        cmd = [binary, "-u", "nobody", f"127.0.0.1:{port}", "256"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def child(name: str, *, port: int, n: int, connections: int, work: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.sending",
            "--run",
            name,
            "--port",
            str(port),
            "--messages",
            str(n),
            "--connections",
            str(connections),
            "--work",
            str(work),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def prepare(work: Path, n: int) -> None:
    from digest.send.dkim import generate_key

    generate_key(path=work / "bench.pem")
    issue = sample_issue(work / "render")
    (work / "issue.json").write_text(json.dumps(issue.__dict__))
    prepare_engine_issue(work / "engine-template", issue=issue, n=n)


def prepare_engine_issue(data_dir: Path, *, issue: Issue, n: int) -> None:
    """A SQLite store with ``n`` confirmed subscribers and the issue, copied for each run."""
    from digest.db import make_engine, session_scope
    from digest.models import Issue as IssueRow
    from digest.models import IssueStatus, Subscriber, SubscriberStatus

    settings = bench_settings(data_dir, 0, 1)
    engine = make_engine(settings)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        session.add_all(
            Subscriber(email=to, name=name, status=SubscriberStatus.CONFIRMED, confirmed_at=now)
            for to, name, _ in addresses(n)
        )
        session.add(
            IssueRow(
                newsletter=settings.newsletter_id,
                week="2017-W11",
                subject=issue.subject,
                html=issue.html,
                text=issue.text,
                status=IssueStatus.APPROVED,
            )
        )
    engine.dispose()
    settings.secret()  # created once here, not raced for later


@dataclass(frozen=True)
class Row:
    title: str
    scenario: str
    messages: int
    connections: int
    every_round: bool = True  # False: measured in the first round only (the slow naive path)


def rows_for(n: int, naive_n: int, connections: int, more: int) -> list[Row]:
    rows = [
        Row("smtplib, pre-built (limit)", "smtplib", n, 1),
        Row("naive: EmailMessage + dkimpy, 1 aiosmtplib conn", "naive", naive_n, 1, False),
        Row(f"digest pool, {connections} connections", "pool", n, connections),
        Row(f"digest engine + ledger (SQLite), {connections} conn", "engine", n, connections),
    ]
    if more and more != connections:
        rows.append(Row(f"digest engine + ledger (SQLite), {more} conn", "engine", n, more))
    rows.append(
        Row(
            f"digest engine, each message built in the loop, {connections} conn",
            "engine-inline",
            n,
            connections,
        )
    )
    return rows


def measure(rows: list[Row], *, port: int, repeat: int, work: Path) -> list[list[dict[str, Any]]]:
    """Run every row ``repeat`` times, interleaved: round k runs each row once, starting with the
    limit, so every number has a limit measured moments before it. Each result gets ``ratio``:
    its rate over its own round's limit."""
    results: list[list[dict[str, Any]]] = [[] for _ in rows]
    for round_ in range(repeat):
        limit = None
        for i, row in enumerate(rows):
            if round_ and not row.every_round:
                continue
            r = child(
                row.scenario, port=port, n=row.messages, connections=row.connections, work=work
            )
            limit = limit or r["per_s"]
            r["ratio"] = r["per_s"] / limit
            results[i].append(r)
    return results


def _spread(values: list[float], fmt: str) -> str:
    """The median, with the range when there is more than one value."""
    middle = format(statistics.median(values), fmt)
    if len(values) < 2:
        return middle
    return f"{middle} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--more-connections", type=int, default=16, help="one more engine row (0: none)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds per receiver")
    parser.add_argument("--quick", action="store_true", help="500 messages, one round")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        serve_sink(args.sink)
        return
    if args.run:
        result = run_scenario(
            args.run, port=args.port, n=args.messages, connections=args.connections, work=args.work
        )
        print(json.dumps(result))
        return

    n = 500 if args.quick else args.messages
    naive_n = min(n, 200 if args.quick else 500)
    repeat = 1 if args.quick else max(1, args.repeat)
    rows = rows_for(n, naive_n, args.connections, args.more_connections)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prepare(work, n)
        cost = build_cost(work, min(n, 1000))
        load = os.getloadavg()[0]
        print(f"{os.cpu_count()} CPUs, load average {load:.1f} at the start (others' work counts)")
        print(f"message: {cost['size']:,} bytes (12-item sample issue), DKIM RSA-2048 on all")
        print(
            f"build + sign only, CPU per message: digest {cost['ours_ms']:.3f} ms (median of 3 "
            f"passes; the issue's template once: {cost['template_ms']:.0f} ms), "
            f"naive EmailMessage + dkimpy {cost['naive_ms']:.2f} ms"
        )
        print(
            f"  of which the RSA signature alone {cost['rsa_ms']:.3f} ms; the same messages "
            f"unsigned {cost['unsigned_ms']:.3f} ms"
        )
        if repeat > 1:
            print(
                f"{repeat} interleaved rounds per receiver, each cell the median (lowest–highest); "
                "'vs receiver limit' divides each run by the limit measured in its own round"
            )
        print()
        print(
            "| receiver | sender | messages | CPU per message (ms) | messages/s "
            "| vs receiver limit (%) | peak RSS |"
        )
        print("|---|---|---|---|---|---|---|")
        for kind, label in RECEIVERS.items():
            with receiver(kind) as port:
                if port is None:
                    print(f"| {label} | not installed (apt-get install postfix) | | | | | |")
                    continue
                results = measure(rows, port=port, repeat=repeat, work=work)
            for row, runs in zip(rows, results, strict=True):
                if not runs:
                    continue
                print(
                    f"| {label} | {row.title} | {row.messages:,} "
                    f"| {_spread([r['cpu_ms_per_msg'] for r in runs], '.3f')} "
                    f"| {_spread([r['per_s'] for r in runs], ',.0f')} "
                    f"| {_spread([r['ratio'] * 100 for r in runs], '.0f')} "
                    f"| {max(r['rss_mb'] for r in runs):.0f} MB |",
                    flush=True,
                )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
