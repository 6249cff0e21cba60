"""Delivery channels against real servers on loopback: an aiosmtpd SMTP server and an
http.server webhook receiver that checks the signature."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from application.notification_rules import Channel, NotificationSpec
from application.notifications import DeliveryState, Notification, Notifications
from application.sqldb import Database
from tests.conftest import START
from workers.channels import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryError,
    EmailChannel,
    PermanentDeliveryError,
    WebhookChannel,
    channels_from_env,
    message_id_for,
    sign,
    verify_signature,
)

SECRET = b"ecocase-webhook-test-secret-0123456789"
SUBJECT = "【杭州市生态环境局】温馨提醒函 杭环温提〔2026〕7号"
BODY = "杭州某新材料有限公司（李四）：\n\n请于2026年12月31日前完成整改。\n\n电话 0571-88156310"
PROJECT = uuid.uuid5(uuid.NAMESPACE_URL, "ecocase:test:project-1")
UNIT = "unit:91330100716105852F"


def notification(
    channel: Channel = Channel.EMAIL, address: str = "lisi@example.cn"
) -> Notification:
    return Notification(
        key=f"42:{UNIT}:{channel}",
        notification_id=42,
        project_id=PROJECT,
        window="xihu",
        recipient=UNIT,
        channel=channel,
        address=address,
        subject=SUBJECT,
        body=BODY,
        state=DeliveryState.PENDING,
        attempts=1,
        last_error=None,
        created_at=START,
        sent_at=None,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- SMTP --------------------------------------------------------------------------------------
@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what it receives, or refuses recipients with ``refuse``."""

    received: list[Envelope] = field(default_factory=list)
    refuse: str | None = None

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self,
        _server: SMTP,
        _session: Session,
        envelope: Envelope,
        address: str,
        _options: list[str],
    ) -> str:
        if self.refuse is not None:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, _server: SMTP, _session: Session, envelope: Envelope
    ) -> str:
        self.received.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        found = []
        for envelope in self.received:
            content = envelope.original_content or envelope.content
            assert isinstance(content, bytes)
            parsed = email.message_from_bytes(content, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
        return found


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def test_email_arrives_with_the_chinese_subject_and_body(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    channel = EmailChannel("127.0.0.1", port, "杭州市生态环境局 <noreply@hzeeb.example.cn>")
    channel.send(notification())
    (envelope,) = mailbox.received
    assert envelope.mail_from == "noreply@hzeeb.example.cn"
    assert envelope.rcpt_tos == ["lisi@example.cn"]
    (message,) = mailbox.messages()
    assert message["Subject"] == SUBJECT
    assert str(message["From"]) == "杭州市生态环境局 <noreply@hzeeb.example.cn>"
    assert message["To"] == "lisi@example.cn"
    part = message.get_body()
    assert part is not None
    assert isinstance(part, EmailMessage)
    assert part.get_content_charset() == "utf-8"
    assert part["Content-Transfer-Encoding"] == "base64"  # 7-bit safe through any relay
    assert part.get_content().replace("\r\n", "\n").rstrip("\n") == BODY
    assert message[DELIVERY_HEADER] == f"42:{UNIT}:email"


def test_a_resent_email_carries_the_same_message_id(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    channel = EmailChannel("127.0.0.1", port, "noreply@hzeeb.example.cn")
    n = notification()
    channel.send(n)
    channel.send(replace(n, attempts=2))
    channel.send(replace(n, key=f"43:{UNIT}:email", notification_id=43))
    first, resent, other = mailbox.messages()
    assert first["Message-ID"] == resent["Message-ID"] == message_id_for(n.key, "hzeeb.example.cn")
    assert first["Date"] == resent["Date"]
    assert other["Message-ID"] != first["Message-ID"]


def test_a_refused_recipient_is_permanent(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    mailbox.refuse = "550 5.1.1 mailbox unavailable"
    channel = EmailChannel("127.0.0.1", port, "noreply@hzeeb.example.cn")
    with pytest.raises(PermanentDeliveryError, match="550"):
        channel.send(notification())
    assert mailbox.received == []


def test_a_deferred_recipient_is_transient(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    mailbox.refuse = "451 4.3.0 try again later"
    channel = EmailChannel("127.0.0.1", port, "noreply@hzeeb.example.cn")
    with pytest.raises(DeliveryError, match="451"):
        channel.send(notification())


def test_an_unreachable_smtp_server_is_transient() -> None:
    channel = EmailChannel("127.0.0.1", free_port(), "noreply@hzeeb.example.cn", timeout=2)
    with pytest.raises(DeliveryError, match="unreachable"):
        channel.send(notification())


def test_an_email_without_address_is_permanent() -> None:
    channel = EmailChannel("127.0.0.1", free_port(), "noreply@hzeeb.example.cn")
    for address in ("", "not an address", "a@b@c", "王芳@例子.中国"):
        with pytest.raises(PermanentDeliveryError):
            channel.send(notification(address=address))
    with pytest.raises(PermanentDeliveryError):
        channel.send(notification(Channel.WEBHOOK, "zheliban"))


# --- webhooks ----------------------------------------------------------------------------------
@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    signed: bool


@dataclass
class Receiver:
    """A loopback HTTP receiver: answers the queued statuses in turn (then 200), records every
    request and whether its signature checks out."""

    url: str
    answers: list[int]
    requests: list[Request]
    delay: float = 0.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="", answers=[], requests=[])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = dict(self.headers.items())
            signed = verify_signature(
                SECRET, headers.get(TIMESTAMP_HEADER), body, headers.get(SIGNATURE_HEADER)
            )
            state.requests.append(Request(self.path, headers, body, signed))
            if state.delay:
                time.sleep(state.delay)
            status = state.answers.pop(0) if state.answers else 200
            if not signed:
                status = 401
            reply = json.dumps({"status": status}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            if status in (429, 503):
                self.send_header("Retry-After", "7")
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def webhook(receiver: Receiver) -> Iterator[WebhookChannel]:
    channel = WebhookChannel(
        {"zheliban": f"{receiver.url}/zlb", "zhezhengding": f"{receiver.url}/zzd"},
        SECRET,
        timeout=2,
    )
    yield channel
    channel.close()


def webhook_notification() -> Notification:
    return notification(Channel.WEBHOOK, "zheliban")


def test_a_webhook_is_posted_signed_to_its_target(
    receiver: Receiver, webhook: WebhookChannel
) -> None:
    webhook.send(webhook_notification())
    (request,) = receiver.requests
    assert request.path == "/zlb"
    assert request.signed
    assert request.headers[DELIVERY_HEADER] == f"42:{UNIT}:webhook"
    assert request.headers["Content-Type"].startswith("application/json")
    assert abs(int(request.headers[TIMESTAMP_HEADER]) - time.time()) < 60
    assert json.loads(request.body) == {
        "key": f"42:{UNIT}:webhook",
        "notification_id": 42,
        "project_id": str(PROJECT),
        "recipient": UNIT,
        "subject": SUBJECT,
        "body": BODY,
        "created_at": START.isoformat(),
    }
    assert SUBJECT.encode() in request.body  # Chinese as is, not \\u escapes


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
def test_server_errors_and_throttling_are_transient(
    receiver: Receiver, webhook: WebhookChannel, status: int
) -> None:
    receiver.answers = [status]
    with pytest.raises(DeliveryError, match=str(status)) as failed:
        webhook.send(webhook_notification())
    assert failed.value.retry_after == (7.0 if status in (429, 503) else None)


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_other_client_errors_are_permanent(
    receiver: Receiver, webhook: WebhookChannel, status: int
) -> None:
    receiver.answers = [status]
    with pytest.raises(PermanentDeliveryError, match=str(status)):
        webhook.send(webhook_notification())


def test_a_receiver_with_another_secret_refuses_for_good(receiver: Receiver) -> None:
    channel = WebhookChannel({"zheliban": receiver.url}, b"another-secret-0123456789")
    try:
        with pytest.raises(PermanentDeliveryError, match="401"):
            channel.send(webhook_notification())
    finally:
        channel.close()
    assert not receiver.requests[0].signed


def test_a_retried_webhook_sends_the_same_delivery_key_and_body(
    receiver: Receiver, webhook: WebhookChannel
) -> None:
    """The receiver answers 500, then 200: the caller's retry is the same delivery."""
    receiver.answers = [500, 200]
    n = webhook_notification()
    attempts = 0
    for _ in range(5):  # the caller's retry loop (the dramatiq actor in production)
        attempts += 1
        try:
            webhook.send(replace(n, attempts=attempts))
            break
        except DeliveryError:
            continue
    assert attempts == 2
    first, second = receiver.requests
    assert first.headers[DELIVERY_HEADER] == second.headers[DELIVERY_HEADER] == n.key
    assert first.body == second.body
    assert first.signed
    assert second.signed


def test_500_then_200_ends_sent_after_two_attempts(receiver: Receiver) -> None:
    """Storage and channel together, as the delivery actor uses them."""
    db = Database("sqlite", path=":memory:")
    store = Notifications(db)
    channel = WebhookChannel({"zheliban": receiver.url}, SECRET, timeout=2)
    spec = NotificationSpec(UNIT, Channel.WEBHOOK, "zheliban", SUBJECT, BODY)
    try:
        with db.transaction() as cursor:
            (key,) = store.add(
                cursor, notification_id=42, project_id=PROJECT, window="xihu", specs=[spec],
                now=START,
            )  # fmt: skip
        receiver.answers = [500, 200]
        for attempt in range(3):
            n = store.start_attempt(key)
            if n is None:
                break
            try:
                channel.send(n)
            except DeliveryError as e:
                store.mark_failed(key, str(e), START + timedelta(seconds=attempt))
                continue
            store.mark_sent(key, START + timedelta(seconds=attempt))
        sent = store.get(key)
        assert sent is not None
        assert (sent.state, sent.attempts) == (DeliveryState.SENT, 2)
        assert sent.last_error is not None
        assert "500" in sent.last_error
        assert [r.headers[DELIVERY_HEADER] for r in receiver.requests] == [key, key]
        assert len({r.body for r in receiver.requests}) == 1
    finally:
        channel.close()
        db.close()


def test_a_slow_receiver_times_out_as_transient(
    receiver: Receiver, webhook: WebhookChannel
) -> None:
    receiver.delay = 1.0
    channel = WebhookChannel({"zheliban": receiver.url}, SECRET, timeout=0.2)
    try:
        with pytest.raises(DeliveryError, match="timed out"):
            channel.send(webhook_notification())
    finally:
        channel.close()


def test_an_unreachable_receiver_is_transient() -> None:
    channel = WebhookChannel({"zheliban": f"http://127.0.0.1:{free_port()}/"}, SECRET)
    try:
        with pytest.raises(DeliveryError, match="ConnectError"):
            channel.send(webhook_notification())
    finally:
        channel.close()


def test_an_unknown_target_is_permanent(webhook: WebhookChannel) -> None:
    with pytest.raises(PermanentDeliveryError, match="no URL"):
        webhook.send(notification(Channel.WEBHOOK, "nowhere"))
    with pytest.raises(PermanentDeliveryError):
        webhook.send(notification(Channel.EMAIL))


def test_a_given_client_is_used_and_not_closed(receiver: Receiver) -> None:
    with httpx.Client() as client:
        channel = WebhookChannel({"zheliban": receiver.url}, SECRET, client=client)
        channel.send(webhook_notification())
        channel.close()
        assert not client.is_closed
    assert receiver.requests[0].signed


def test_non_ascii_keys_are_sent_percent_encoded(
    receiver: Receiver, webhook: WebhookChannel
) -> None:
    n = replace(webhook_notification(), key="42:officer:王芳:webhook")
    webhook.send(n)
    assert receiver.requests[0].headers[DELIVERY_HEADER] == "42:officer:%E7%8E%8B%E8%8A%B3:webhook"


# --- signatures ---------------------------------------------------------------------------------
def test_verify_signature_accepts_only_the_signed_fresh_body() -> None:
    body = b'{"key":"42:unit:x:webhook"}'
    ts = 1_800_000_000
    header = sign(SECRET, ts, body)
    assert header.startswith("sha256=")
    assert len(header) == len("sha256=") + 64
    assert verify_signature(SECRET, str(ts), body, header, now=ts + 10)
    assert verify_signature(SECRET, ts, body, header, now=ts - 299)
    assert not verify_signature(SECRET, ts, body + b" ", header, now=ts)
    assert not verify_signature(b"another-secret-0123456789", ts, body, header, now=ts)
    assert not verify_signature(SECRET, ts + 1, body, header, now=ts)
    assert not verify_signature(SECRET, ts, body, header, now=ts + 301)
    assert verify_signature(SECRET, ts, body, header, now=ts + 3600, tolerance_s=3600)
    assert not verify_signature(SECRET, ts, body, header.removeprefix("sha256="), now=ts)
    assert not verify_signature(SECRET, "yesterday", body, header, now=ts)
    assert not verify_signature(SECRET, None, body, header, now=ts)
    assert not verify_signature(SECRET, ts, body, None, now=ts)


# --- configuration ------------------------------------------------------------------------------
def test_channels_from_env() -> None:
    assert channels_from_env({}) == {}
    channels = channels_from_env(
        {
            "ECOCASE_SMTP_HOST": "smtp.example.cn",
            "ECOCASE_SMTP_PORT": "2525",
            "ECOCASE_SMTP_FROM": "杭州市生态环境局 <noreply@hzeeb.example.cn>",
            "ECOCASE_WEBHOOK_ZHELIBAN_URL": "https://zlb.example.cn/hook",
            "ECOCASE_WEBHOOK_SECRET": SECRET.decode(),
        }
    )
    email_channel = channels[Channel.EMAIL]
    assert isinstance(email_channel, EmailChannel)
    assert (email_channel.host, email_channel.port) == ("smtp.example.cn", 2525)
    hooks = channels[Channel.WEBHOOK]
    assert isinstance(hooks, WebhookChannel)
    assert hooks.targets == {"zheliban": "https://zlb.example.cn/hook"}
    hooks.close()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ECOCASE_SMTP_HOST": "smtp.example.cn"}, "ECOCASE_SMTP_FROM"),
        (
            {"ECOCASE_SMTP_HOST": "h", "ECOCASE_SMTP_FROM": "a@b.cn", "ECOCASE_SMTP_PORT": "x"},
            "ECOCASE_SMTP_PORT",
        ),
        ({"ECOCASE_WEBHOOK_ZHEZHENGDING_URL": "https://zzd.example.cn"}, "ECOCASE_WEBHOOK_SECRET"),
        (
            {"ECOCASE_WEBHOOK_ZHELIBAN_URL": "ftp://x", "ECOCASE_WEBHOOK_SECRET": "s" * 32},
            "ECOCASE_WEBHOOK_ZHELIBAN_URL",
        ),
    ],
)
def test_channels_from_env_refuses_incomplete_settings(env: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        channels_from_env(env)
