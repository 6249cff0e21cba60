"""Delivery channels of stored notifications: e-mail over SMTP and signed webhooks.

A channel makes one attempt and says how it went: it returns when the message was handed over,
raises :class:`DeliveryError` when another attempt may succeed (connection refused, timeout,
SMTP 4xx, HTTP 5xx/429/408) and :class:`PermanentDeliveryError` when it will not (SMTP 5xx,
other HTTP 4xx, no address, unknown target). Retries and their backoff belong to the caller
(the dramatiq actor); a channel never loops.

Webhooks: ``POST`` of the JSON body ``{key, notification_id, project_id, recipient, subject, body,
created_at}`` (the same bytes on every attempt) with the headers

- ``X-Ecocase-Timestamp``: unix seconds of this attempt;
- ``X-Ecocase-Signature``: ``sha256=<hex HMAC-SHA256(secret, f"{timestamp}." + body)>``;
- ``X-Ecocase-Delivery``: the notification key; a receiver dedupes on it (a retry after a lost
  answer sends the same key again).

Receivers check with :func:`verify_signature`. E-mails carry a ``Message-ID`` derived from the
notification key (and ``X-Ecocase-Delivery``), so a resend is recognisable as the same message.

Environment (:func:`channels_from_env`):

- ``ECOCASE_SMTP_HOST``: the SMTP relay; unset means no e-mail channel.
- ``ECOCASE_SMTP_PORT``: its port (default 25).
- ``ECOCASE_SMTP_FROM``: the sender address, e.g. ``杭州市生态环境局 <noreply@example.gov.cn>``
  (needed with a host).
- ``ECOCASE_SMTP_TIMEOUT``: seconds per SMTP attempt (default 10).
- ``ECOCASE_WEBHOOK_ZHEZHENGDING_URL``: the 浙政钉 receiver (target ``zhezhengding``).
- ``ECOCASE_WEBHOOK_ZHELIBAN_URL``: the 浙里办 receiver (target ``zheliban``).
- ``ECOCASE_WEBHOOK_SECRET``: the HMAC key shared with the receivers (at least 16 characters;
  needed with any webhook URL).
- ``ECOCASE_WEBHOOK_TIMEOUT``: seconds per webhook attempt (default 5).
"""

from __future__ import annotations

import hashlib
import hmac
import smtplib
import time
from collections.abc import Mapping
from datetime import datetime
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Final
from urllib.parse import quote, urlsplit
from uuid import UUID

import httpx
import msgspec

from application.notification_rules import ZHELIBAN, ZHEZHENGDING, Channel
from application.notifications import Notification

__all__ = [
    "DeliveryError",
    "EmailChannel",
    "PermanentDeliveryError",
    "WebhookChannel",
    "WebhookPayload",
    "channels_from_env",
    "message_id_for",
    "sign",
    "verify_signature",
]

TIMESTAMP_HEADER: Final = "X-Ecocase-Timestamp"
SIGNATURE_HEADER: Final = "X-Ecocase-Signature"
DELIVERY_HEADER: Final = "X-Ecocase-Delivery"
MIN_SECRET_LENGTH: Final = 16

#: Webhook target names and the variables that give their URLs.
WEBHOOK_URL_VARIABLES: Final[Mapping[str, str]] = {
    ZHEZHENGDING: "ECOCASE_WEBHOOK_ZHEZHENGDING_URL",
    ZHELIBAN: "ECOCASE_WEBHOOK_ZHELIBAN_URL",
}


class DeliveryError(Exception):
    """This attempt failed; a later one may succeed (retry with backoff). ``retry_after`` is
    the receiver's hint in seconds, if it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(Exception):
    """The receiver refused the message for good: do not retry."""


# --- e-mail -----------------------------------------------------------------------------------
def message_id_for(key: str, domain: str = "ecocase.invalid") -> str:
    """The Message-ID of a notification: the same for every send of the same key."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<ecocase.{digest}@{domain}>"


def _ascii_header(value: str) -> str:
    """A header value HTTP can carry: non-ASCII characters percent-encoded (deterministic)."""
    return value if value.isascii() else quote(value, safe=":@/+=-._~")


class EmailChannel:
    """Sends e-mail notifications through one SMTP server, one connection per message."""

    def __init__(self, host: str, port: int, sender: str, timeout: float = 10) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.timeout = timeout
        _, sender_address = parseaddr(sender)
        self._domain = sender_address.rpartition("@")[2] or "ecocase.invalid"

    def message(self, n: Notification) -> EmailMessage:
        """The e-mail of a notification (UTF-8 subject and body)."""
        if n.channel is not Channel.EMAIL or not n.address:
            msg = f"notification {n.key} is not an e-mail with an address"
            raise PermanentDeliveryError(msg)
        m = EmailMessage()
        m["From"] = self.sender
        try:
            m["To"] = Address(addr_spec=n.address)
        except (ValueError, IndexError, MessageError) as e:
            msg = f"notification {n.key}: not an e-mail address: {n.address!r}"
            raise PermanentDeliveryError(msg) from e
        m["Subject"] = n.subject
        m["Date"] = format_datetime(n.created_at)
        m["Message-ID"] = message_id_for(n.key, self._domain)
        m[DELIVERY_HEADER] = _ascii_header(n.key)
        m.set_content(n.body, charset="utf-8", cte="base64")  # 7-bit safe for any relay
        return m

    def send(self, n: Notification) -> None:
        message = self.message(n)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as e:
            codes = [code for code, _ in e.recipients.values()]
            detail = "; ".join(f"{r}: {c} {m!r}" for r, (c, m) in e.recipients.items())
            if codes and all(500 <= c < 600 for c in codes):
                raise PermanentDeliveryError(f"SMTP refused the recipient: {detail}") from e
            raise DeliveryError(f"SMTP deferred the recipient: {detail}") from e
        except smtplib.SMTPResponseException as e:
            text = f"SMTP {e.smtp_code}: {e.smtp_error!r}"
            if 500 <= e.smtp_code < 600:
                raise PermanentDeliveryError(text) from e
            raise DeliveryError(text) from e
        except (smtplib.SMTPException, OSError) as e:  # OSError covers timeouts
            msg = f"SMTP {self.host}:{self.port} unreachable: {type(e).__name__}: {e}"
            raise DeliveryError(msg) from e


# --- webhooks ---------------------------------------------------------------------------------
class WebhookPayload(msgspec.Struct, kw_only=True):
    key: str
    notification_id: int
    project_id: UUID
    recipient: str
    subject: str
    body: str
    created_at: datetime


_ENCODER = msgspec.json.Encoder()


def payload_of(n: Notification) -> bytes:
    """The webhook body of a notification: the same bytes on every attempt."""
    return _ENCODER.encode(
        WebhookPayload(
            key=n.key,
            notification_id=n.notification_id,
            project_id=n.project_id,
            recipient=n.recipient,
            subject=n.subject,
            body=n.body,
            created_at=n.created_at,
        )
    )


def sign(secret: bytes, timestamp: int | str, body: bytes) -> str:
    """The ``X-Ecocase-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``"{ts}." + body``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: bytes,
    timestamp: str | int | None,
    body: bytes,
    header: str | None,
    *,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """Whether a webhook request is authentic and fresh: ``header`` is the signature of
    ``timestamp`` and ``body`` under ``secret``, and ``timestamp`` (unix seconds) lies within
    ``tolerance_s`` of ``now`` (default: the current time)."""
    if timestamp is None or header is None or not header.startswith("sha256="):
        return False
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), header.strip())


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


class WebhookChannel:
    """Posts signed notifications to named targets (``targets``: target name → URL)."""

    def __init__(
        self,
        targets: Mapping[str, str],
        secret: bytes,
        timeout: float = 5,
        client: httpx.Client | None = None,
    ) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            msg = f"the webhook secret must have at least {MIN_SECRET_LENGTH} bytes"
            raise ValueError(msg)
        self.targets = dict(targets)
        self._secret = secret
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self.timeout = timeout

    def send(self, n: Notification) -> None:
        if n.channel is not Channel.WEBHOOK or not n.address:
            msg = f"notification {n.key} is not a webhook with a target"
            raise PermanentDeliveryError(msg)
        url = self.targets.get(n.address)
        if url is None:
            msg = f"notification {n.key}: no URL for webhook target {n.address!r}"
            raise PermanentDeliveryError(msg)
        body = payload_of(n)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            DELIVERY_HEADER: _ascii_header(n.key),
        }
        try:
            response = self._client.post(url, content=body, headers=headers, timeout=self.timeout)
        except httpx.TimeoutException as e:
            msg = f"webhook {n.address}: timed out after {self.timeout}s ({type(e).__name__})"
            raise DeliveryError(msg) from e
        except httpx.TransportError as e:
            msg = f"webhook {n.address}: {type(e).__name__}: {e}"
            raise DeliveryError(msg) from e
        status = response.status_code
        if 200 <= status < 300:
            return
        text = f"webhook {n.address}: HTTP {status} {response.text[:200]!r}"
        if status >= 500 or status in (408, 429):
            raise DeliveryError(text, retry_after=_retry_after(response))
        raise PermanentDeliveryError(text)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


# --- configuration ----------------------------------------------------------------------------
def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        msg = f"{name} must be a number, not {raw!r}"
        raise ValueError(msg) from None
    if value <= 0:
        msg = f"{name} must be positive, not {raw!r}"
        raise ValueError(msg)
    return value


def webhook_targets_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """The configured webhook targets (name → URL)."""
    targets: dict[str, str] = {}
    for target, variable in WEBHOOK_URL_VARIABLES.items():
        url = (env.get(variable) or "").strip()
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            msg = f"{variable} must be an http(s) URL, not {url!r}"
            raise ValueError(msg)
        targets[target] = url
    return targets


def channels_from_env(env: Mapping[str, str]) -> dict[Channel, EmailChannel | WebhookChannel]:
    """The channels the environment configures (see the module's docstring); a channel whose
    variables are unset is absent. Raises ValueError on an incomplete or invalid setting."""
    channels: dict[Channel, EmailChannel | WebhookChannel] = {}
    host = (env.get("ECOCASE_SMTP_HOST") or "").strip()
    if host:
        port_text = (env.get("ECOCASE_SMTP_PORT") or "25").strip()
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            msg = f"ECOCASE_SMTP_PORT must be a port number, not {port_text!r}"
            raise ValueError(msg)
        sender = (env.get("ECOCASE_SMTP_FROM") or "").strip()
        if "@" not in parseaddr(sender)[1]:
            msg = "ECOCASE_SMTP_FROM must be the sender's address when ECOCASE_SMTP_HOST is set"
            raise ValueError(msg)
        channels[Channel.EMAIL] = EmailChannel(
            host, int(port_text), sender, timeout=_number(env, "ECOCASE_SMTP_TIMEOUT", 10)
        )
    targets = webhook_targets_from_env(env)
    if targets:
        secret = env.get("ECOCASE_WEBHOOK_SECRET") or ""
        if len(secret.encode()) < MIN_SECRET_LENGTH:
            msg = (
                f"ECOCASE_WEBHOOK_SECRET must have at least {MIN_SECRET_LENGTH} characters "
                f"when a webhook URL is set ({', '.join(sorted(targets))})"
            )
            raise ValueError(msg)
        channels[Channel.WEBHOOK] = WebhookChannel(
            targets, secret.encode(), timeout=_number(env, "ECOCASE_WEBHOOK_TIMEOUT", 5)
        )
    return channels
