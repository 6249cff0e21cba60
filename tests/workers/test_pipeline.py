"""The whole worker pipeline, from a command to its audit record and delivered notifications:
the relay, the event actor and the delivery actor, on the embedded in-process broker (POPO and
SQLite) and on a real Redis broker with a dramatiq worker in this process (PostgreSQL).

E-mail goes to a real aiosmtpd server and webhooks to a loopback receiver that checks the
signature (both from tests/workers/test_channels.py).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import dramatiq
import pytest
import redis

from application.audit import AuditRecord, AuditTrail
from application.cases import Acting, Cases
from application.notification_rules import Channel
from application.notifications import DeliveryState, Notification, Notifications
from application.project_index import ProjectIndex
from application.settings import Settings
from application.sqldb import Database, open_database
from application.store import CaseStore
from domain.actor import Actor
from domain.builder import Builder
from domain.letters import FoundIn, IssueSpec, Severity
from domain.officers import OfficerRole
from domain.project import KeyProject
from domain.tiers import Tier
from domain.windows import Window
from tests.conftest import CREDIT_CODE, PROJECT_CODE, Clock, register_major_project
from tests.pg import store_param
from tests.workers import test_channels as channel_tests
from tests.workers.test_channels import SECRET, Mailbox, Receiver
from workers.actors import DELIVERIES, EVENTS, SCANS, Actors, declare_actors
from workers.broker import BrokerSettings, build_broker
from workers.channels import DELIVERY_HEADER
from workers.messages import EventNotice
from workers.processes import EmbeddedWorkers, _policy
from workers.relay import Relay
from workers.runtime import LazyContext, build_context

REDIS_URL = os.environ.get("ECOCASE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

#: popo and sqlite run the embedded workers (StubBroker); postgres runs Redis and a real worker.
PIPELINES = [
    store_param("popo"),
    store_param("sqlite"),
    pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis], id="postgres-redis"),
]
pytestmark = pytest.mark.parametrize("store_env", PIPELINES, indirect=True)

# The loopback servers of the channel tests.
smtp = channel_tests.smtp
receiver = channel_tests.receiver

UNIT = f"unit:{CREDIT_CODE}"
SUPERVISOR = "supervisor:xihu"
EMAIL = "lisi@example.cn"


@dataclass
class Pipeline:
    """What a test sees: the API's side (store, use cases, the workers' tables) and the
    workers' actors, with a way to wait until everything stored has been processed."""

    store: CaseStore
    cases: Cases
    db: Database
    actors: Actors
    join: Callable[[float], bool]

    @property
    def notifications(self) -> Notifications:
        return Notifications(self.db)

    def rows(self) -> list[Notification]:
        page, _ = self.notifications.list(limit=200)
        return sorted(page, key=lambda n: n.key)

    def audit_records(self) -> list[AuditRecord]:
        return list(AuditTrail(self.db).iter_all())

    def notices(self) -> list[EventNotice]:
        """Every stored event as the relay sends it."""
        return [
            EventNotice(n.id, str(n.originator_id), n.originator_version, n.topic)
            for n in self.store.recorder.select_notifications(start=1, limit=10_000)
        ]

    def settle(self, timeout: float = 20.0) -> None:
        assert self.join(timeout), "the workers did not finish in time"


StartPipeline = Callable[[Mapping[str, str]], Pipeline]


def _settings(kind: str, data_dir: Path, store_env: Mapping[str, str], redis_url: str | None
              ) -> Settings:  # fmt: skip
    return Settings(
        store=kind, data_dir=data_dir,
        postgres_dsn_env={k: v for k, v in store_env.items() if k.startswith("POSTGRES_")},
        redis_url=redis_url, secret="ecocase-pipeline-tests-secret-0123456789",
        log_format="console", log_level="WARNING",
    )  # fmt: skip


def _delete_namespace(namespace: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def start_pipeline(
    store_env: dict[str, str], store_kind: str, tmp_path: Path, clock: Clock
) -> Iterator[StartPipeline]:
    """Starts the pipeline with the given worker environment; stops it at teardown."""
    cleanups: list[Callable[[], None]] = []

    def embedded(env: Mapping[str, str]) -> Pipeline:
        store = CaseStore(env=store_env)
        index = ProjectIndex(store, store_env)
        db = open_database(store_env)
        workers = EmbeddedWorkers(_settings(store_kind, tmp_path, store_env, None), env,
                                  store=store, db=db, index=index)  # fmt: skip
        workers.start()

        def stop() -> None:
            workers.stop()
            index.close()
            db.close()
            store.close()

        cleanups.append(stop)
        return Pipeline(store, Cases(store, clock=clock), db, workers.actors, workers.join)

    def with_redis(env: Mapping[str, str]) -> Pipeline:
        """As `ecocase worker` and `ecocase relay` run, in threads of this process: the
        workers build their own store and database connections from the settings."""
        namespace = f"ecocase-test-{uuid.uuid4().hex}"
        cleanups.append(lambda: _delete_namespace(namespace))
        settings = _settings(store_kind, tmp_path, store_env, REDIS_URL)
        broker = build_broker(BrokerSettings(redis_url=REDIS_URL, namespace=namespace))
        context = LazyContext(lambda: build_context(settings, env))
        actors = declare_actors(broker, context, _policy(env))
        worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
        relay = Relay(context().store, context().db, actors.publish)
        stop_relay = threading.Event()
        relay_thread = threading.Thread(target=relay.run, args=(stop_relay,), daemon=True)
        store = CaseStore(env=store_env)
        db = open_database(store_env)

        def stop() -> None:
            stop_relay.set()
            relay_thread.join(timeout=5)
            worker.stop(timeout=5_000)
            broker.close()
            context.close()
            db.close()
            store.close()

        cleanups.append(stop)
        worker.start()
        relay_thread.start()

        def join(timeout: float) -> bool:
            """Everything relayed, and every queue (with its delay queue) empty and acked:
            events first, since handling an event enqueues its deliveries."""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if relay.lag() == 0 and all(
                    _queue_size(broker, q) == 0 for q in (EVENTS, SCANS, DELIVERIES)
                ):
                    return True
                time.sleep(0.02)
            return False

        return Pipeline(store, Cases(store, clock=clock), db, actors, join)

    yield with_redis if store_kind == "postgres" else embedded
    for cleanup in reversed(cleanups):
        cleanup()


def _queue_size(broker: dramatiq.Broker, queue: str) -> int:
    """Messages of ``queue`` and its delay queue not yet acked (queued or in progress)."""
    do_qsize: Callable[[str], Any] = getattr(broker, "do_qsize")  # noqa: B009 - dispatched
    return int(do_qsize(queue))


def _worker_env(**extra: str) -> dict[str, str]:
    return {"ECOCASE_RETRY_SCALE": "0.01", "ECOCASE_SCAN_EVERY_S": "3600", **extra}


def _smtp_env(port: int) -> dict[str, str]:
    return {
        "ECOCASE_SMTP_HOST": "127.0.0.1",
        "ECOCASE_SMTP_PORT": str(port),
        "ECOCASE_SMTP_FROM": "杭州市生态环境局 <noreply@hzeeb.example.cn>",
        "ECOCASE_SMTP_TIMEOUT": "5",
    }


def _webhook_env(url: str, *, zhezhengding: bool = True) -> dict[str, str]:
    env = {"ECOCASE_WEBHOOK_ZHELIBAN_URL": f"{url}/zlb", "ECOCASE_WEBHOOK_SECRET": SECRET.decode(),
           "ECOCASE_WEBHOOK_TIMEOUT": "2"}  # fmt: skip
    if zhezhengding:
        env["ECOCASE_WEBHOOK_ZHEZHENGDING_URL"] = f"{url}/zzd"
    return env


def _issue_letter(cases: Cases, acting: Acting, project_id: UUID) -> str:
    _, letter = cases.issue_reminder_letter(
        acting, project_id, letter_no="杭环提〔2026〕12号",
        deadline=cases.today() + timedelta(days=15),
        issues=(
            IssueSpec(Severity.KEY, FoundIn.EXPERT_REVIEW, "大气预测因子不全", "补充VOCs预测"),
            IssueSpec(Severity.GENERAL, FoundIn.SITE_INSPECTION, "围挡破损", "修复围挡"),
        ),
    )  # fmt: skip
    return letter


def _register_without_contact(cases: Cases, acting: Acting) -> KeyProject:
    """A project whose unit gave no contact: its messages to the unit go only to 浙里办."""
    return cases.register(
        acting, name="杭州湾新材料产业园二期工程", project_code=PROJECT_CODE,
        builder=Builder(name="杭州某新材料有限公司", credit_code=CREDIT_CODE),
        window=Window.XIHU, tiers=(Tier.CITY_KEY,), industry="新材料制造",
        location="杭州市西湖区三墩镇", two_high_one_low=False,
    )  # fmt: skip


def _snapshot(p: Pipeline) -> tuple[list[tuple[Any, ...]], list[AuditRecord]]:
    rows = [(n.key, n.state, n.attempts, n.last_error, n.sent_at) for n in p.rows()]
    return rows, p.audit_records()


def test_a_whole_case_is_audited_and_notified_exactly_once(
    start_pipeline: StartPipeline,
    smtp: tuple[Mailbox, int],
    receiver: Receiver,
    officer: Actor,
) -> None:
    mailbox, port = smtp
    p = start_pipeline(_worker_env(**_smtp_env(port), **_webhook_env(receiver.url)))
    requests = iter(f"req-{n}" for n in range(1, 100))

    def acting() -> Acting:
        return Acting(officer, next(requests))

    project = register_major_project(p.cases, acting())
    pid = project.id
    p.cases.assign_officer(acting(), pid, officer="officer-xihu-02", name="张伟",
                           role=OfficerRole.LEAD)  # fmt: skip
    p.cases.assign_officer(acting(), pid, officer="expert-07", name="周协办",
                           role=OfficerRole.CO_ORGANIZER)  # fmt: skip
    letter = _issue_letter(p.cases, acting(), pid)
    issue = f"{letter}-I1"
    p.cases.submit_rectification(acting(), pid, letter, issue, summary="已补充预测",
                                 evidence=("附件1.pdf",))  # fmt: skip
    p.cases.return_rectification(acting(), pid, letter, issue, reason="缺少非正常工况")
    p.cases.refer_violation(acting(), pid, description="未批先建嫌疑",
                            legal_basis="《环境影响评价法》第三十一条", letter_id=letter,
                            issue_id=issue)  # fmt: skip
    p.cases.add_audit_note(acting(), pid, note="全过程资料已归档")
    p.settle()

    # One audit record per event, with who acted and in which request.
    notices = p.notices()
    records = p.audit_records()
    assert [r.notification_id for r in records] == [n.notification_id for n in notices]
    assert [(r.version, r.kind) for r in records] == [
        (1, "Registered"), (2, "OfficerAssigned"), (3, "OfficerAssigned"),
        (4, "ReminderLetterIssued"), (5, "RectificationSubmitted"),
        (6, "RectificationReturned"), (7, "ViolationReferred"), (8, "AuditNoteAdded"),
    ]  # fmt: skip
    assert {(r.actor_sub, r.actor_name, r.actor_role) for r in records} == {
        (officer.sub, officer.name, str(officer.role))
    }
    assert [r.request_id for r in records] == [f"req-{n}" for n in range(1, 9)]
    assert {(r.project_id, r.project_code, r.window) for r in records} == {
        (pid, project.project_code, "xihu")
    }

    # The notifications the rules call for, each delivered once.
    ids = {n.version: n.notification_id for n in notices}
    rows = p.rows()
    assert sorted((n.notification_id, n.recipient, n.channel) for n in rows) == sorted([
        (ids[1], SUPERVISOR, Channel.INBOX),
        (ids[2], "officer:officer-xihu-02", Channel.INBOX), (ids[2], UNIT, Channel.EMAIL),
        (ids[3], "officer:expert-07", Channel.INBOX), (ids[3], UNIT, Channel.EMAIL),
        (ids[4], UNIT, Channel.EMAIL), (ids[4], UNIT, Channel.WEBHOOK),
        (ids[4], SUPERVISOR, Channel.INBOX),
        (ids[5], "officer:officer-xihu-02", Channel.INBOX),
        (ids[5], "officer:expert-07", Channel.INBOX),
        (ids[6], UNIT, Channel.EMAIL), (ids[6], UNIT, Channel.WEBHOOK),
        (ids[7], SUPERVISOR, Channel.INBOX), (ids[7], SUPERVISOR, Channel.WEBHOOK),
    ])  # fmt: skip
    assert {n.state for n in rows} == {DeliveryState.SENT}
    assert all(n.sent_at is not None and n.last_error is None for n in rows)
    assert {n.attempts for n in rows if n.channel is Channel.INBOX} == {0}
    assert {n.attempts for n in rows if n.channel is not Channel.INBOX} == {1}

    emails = {n.key: n for n in rows if n.channel is Channel.EMAIL}
    messages = mailbox.messages()
    assert sorted(m[DELIVERY_HEADER] for m in messages) == sorted(emails)
    for message in messages:
        n = emails[message[DELIVERY_HEADER]]
        assert message["To"] == EMAIL == n.address
        assert message["Subject"] == n.subject
    assert [e.rcpt_tos for e in mailbox.received] == [[EMAIL]] * 4

    hooks = {n.key: n for n in rows if n.channel is Channel.WEBHOOK}
    assert sorted(r.headers[DELIVERY_HEADER] for r in receiver.requests) == sorted(hooks)
    assert all(r.signed for r in receiver.requests)
    assert sorted(r.path for r in receiver.requests) == ["/zlb", "/zlb", "/zzd"]

    # Every message is done: no attempt count is kept for it.
    assert p.db.query("SELECT count(*) FROM message_attempts") == [(0,)]

    # A relay that redelivers everything changes nothing.
    before = _snapshot(p)
    p.actors.publish(notices)
    p.settle()
    assert _snapshot(p) == before
    assert len(mailbox.received) == 4
    assert len(receiver.requests) == 3
    assert p.db.query("SELECT count(*) FROM message_attempts") == [(0,)]


def test_a_webhook_answering_500_then_200_is_sent_on_the_second_attempt(
    start_pipeline: StartPipeline, receiver: Receiver, officer: Actor
) -> None:
    receiver.answers = [500, 200]
    p = start_pipeline(_worker_env(**_webhook_env(receiver.url, zhezhengding=False)))
    acting = Acting(officer, "req-500")
    project = _register_without_contact(p.cases, acting)
    _issue_letter(p.cases, acting, project.id)
    p.settle()

    (hook,) = [n for n in p.rows() if n.channel is Channel.WEBHOOK]
    assert (hook.recipient, hook.address) == (UNIT, "zheliban")
    assert (hook.state, hook.attempts) == (DeliveryState.SENT, 2)
    assert hook.last_error is not None
    assert "HTTP 500" in hook.last_error
    first, second = receiver.requests
    assert first.headers[DELIVERY_HEADER] == second.headers[DELIVERY_HEADER] == hook.key
    assert first.body == second.body
    assert first.signed
    assert second.signed


def test_a_channel_that_is_not_configured_leaves_the_notification_dead(
    start_pipeline: StartPipeline, officer: Actor
) -> None:
    p = start_pipeline(_worker_env())  # no ECOCASE_SMTP_*
    acting = Acting(officer, "req-no-smtp")
    project = register_major_project(p.cases, acting)
    p.cases.assign_officer(acting, project.id, officer="officer-xihu-02", name="张伟",
                           role=OfficerRole.LEAD)  # fmt: skip
    p.settle()

    rows = p.rows()
    (mail,) = [n for n in rows if n.channel is Channel.EMAIL]
    assert (mail.recipient, mail.address) == (UNIT, EMAIL)
    assert (mail.state, mail.attempts, mail.sent_at) == (DeliveryState.DEAD, 1, None)
    assert mail.last_error == "no email channel configured"
    inbox = [n for n in rows if n.channel is Channel.INBOX]
    assert sorted(n.recipient for n in inbox) == ["officer:officer-xihu-02", SUPERVISOR]
    assert {n.state for n in inbox} == {DeliveryState.SENT}
    assert not [n for n in rows if n.channel is Channel.WEBHOOK]  # no target, no webhook


def test_a_400_from_the_receiver_is_dead_without_retries(
    start_pipeline: StartPipeline, receiver: Receiver, officer: Actor
) -> None:
    receiver.answers = [400]
    p = start_pipeline(_worker_env(**_webhook_env(receiver.url, zhezhengding=False)))
    acting = Acting(officer, "req-400")
    project = _register_without_contact(p.cases, acting)
    _issue_letter(p.cases, acting, project.id)
    p.settle()

    (hook,) = [n for n in p.rows() if n.channel is Channel.WEBHOOK]
    assert (hook.state, hook.attempts, hook.sent_at) == (DeliveryState.DEAD, 1, None)
    assert hook.last_error is not None
    assert "HTTP 400" in hook.last_error
    assert len(receiver.requests) == 1

    p.actors.deliver.send(hook.key)  # a redelivered message does not try again
    p.settle()
    assert len(receiver.requests) == 1
    assert p.notifications.get(hook.key) == hook


def test_a_receiver_that_keeps_failing_ends_dead_after_the_retries(
    start_pipeline: StartPipeline, receiver: Receiver, officer: Actor
) -> None:
    receiver.answers = [500] * 50
    p = start_pipeline(_worker_env(**_webhook_env(receiver.url, zhezhengding=False)))
    acting = Acting(officer, "req-500s")
    project = _register_without_contact(p.cases, acting)
    _issue_letter(p.cases, acting, project.id)
    p.settle(30)

    (hook,) = [n for n in p.rows() if n.channel is Channel.WEBHOOK]
    retries = _policy(_worker_env()).delivery_retries
    assert (hook.state, hook.attempts) == (DeliveryState.DEAD, retries + 1)
    assert hook.last_error is not None
    assert hook.last_error.startswith(f"retries exhausted ({retries}); last error: ")
    assert "HTTP 500" in hook.last_error  # the cause of the last failure is kept
    assert len(receiver.requests) == retries + 1
    assert {r.headers[DELIVERY_HEADER] for r in receiver.requests} == {hook.key}
