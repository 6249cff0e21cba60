"""Notification rules: which recipients and channels each event calls for, with Chinese texts.

Projects are built through the use cases on POPO; each test reads the last stored event and the
project as it stood right after it, as the notification worker does."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from types import SimpleNamespace
from uuid import UUID

import pytest

from application.cases import Acting, Cases
from application.notification_rules import (
    TEMPLATES,
    Channel,
    NotificationSpec,
    notifications_for,
)
from domain.actor import Actor
from domain.builder import Builder
from domain.helper_service import HelperReason
from domain.intervention import Stage
from domain.letters import FoundIn, IssueSpec, Severity
from domain.materials import DeferralReason
from domain.officers import OfficerRole
from domain.tiers import Tier
from domain.warnings import WarningKind, WarningSpec
from domain.windows import Window
from tests.application.scenario import work_the_case
from tests.conftest import CREDIT_CODE, Clock, RegisterMajor

TARGETS = {"zhezhengding": "http://127.0.0.1:9/zzd", "zheliban": "http://127.0.0.1:9/zlb"}
UNIT = f"unit:{CREDIT_CODE}"
SUPERVISOR = "supervisor:xihu"
LEAD = "officer-lead-01"
EMAIL = "lisi@example.cn"
XIHU_PHONE = "0571-88156310"
LETTER_NO = "杭环温提〔2026〕7号"
PREFIX = "【杭州市生态环境局】"

Specs = dict[tuple[str, Channel], NotificationSpec]


def last(cases: Cases, project_id: UUID, targets: Mapping[str, str] = TARGETS) -> tuple[str, Specs]:
    """The last event's kind and its notifications, by (recipient, channel)."""
    event = list(cases.store.history(project_id))[-1]
    project = cases.store.get_project(project_id, version=event.originator_version)
    specs = notifications_for(event, project, webhook_targets=targets)
    by = {(s.recipient, s.channel): s for s in specs}
    assert len(by) == len(specs), "one notification per recipient and channel"
    return type(event).__name__, by


@pytest.fixture
def store_env() -> dict[str, str]:
    """Rules are pure: the in-memory store is enough (overrides the conftest's three stores)."""
    return {"PERSISTENCE_MODULE": "eventsourcing.popo"}


@pytest.fixture
def acting(officer: Actor) -> Acting:
    return Acting(officer, "req-rules")


@pytest.fixture
def pid(register_major: RegisterMajor) -> UUID:
    return register_major().id


def with_lead(cases: Cases, acting: Acting, pid: UUID) -> None:
    cases.assign_officer(acting, pid, officer=LEAD, name="张伟", role=OfficerRole.LEAD)


def issue_letter(cases: Cases, acting: Acting, pid: UUID) -> str:
    _, letter_id = cases.issue_reminder_letter(
        acting,
        pid,
        letter_no=LETTER_NO,
        deadline=date(2026, 12, 31),
        issues=(
            IssueSpec(Severity.KEY, FoundIn.EXPERT_REVIEW, "大气预测因子不全", "补充VOCs预测"),
            IssueSpec(Severity.GENERAL, FoundIn.SITE_INSPECTION, "围挡破损", "修复围挡"),
        ),
    )
    return letter_id


def assert_to_unit(spec: NotificationSpec) -> None:
    """A message to the unit: Chinese, signed by the window, with the window's phone."""
    assert spec.subject.startswith(PREFIX)
    assert "杭州某新材料有限公司（李四）" in spec.body
    assert XIHU_PHONE in spec.body
    assert spec.body.rstrip().endswith("杭州市生态环境局西湖分局")


# --- each event ----------------------------------------------------------------------------
def test_registered_goes_to_the_windows_supervisor_inbox(cases: Cases, pid: UUID) -> None:
    kind, specs = last(cases, pid)
    assert kind == "Registered"
    assert list(specs) == [(SUPERVISOR, Channel.INBOX)]
    spec = specs[SUPERVISOR, Channel.INBOX]
    assert spec.address is None
    assert spec.subject == f"{PREFIX}新登记重点项目：杭州湾新材料产业园一期工程"
    assert "市重点项目、“千项万亿”工程项目" in spec.body
    assert "2024-330100-44-01-123456" in spec.body


def test_officer_assigned_tells_the_officer_and_the_unit(
    cases: Cases, acting: Acting, pid: UUID
) -> None:
    with_lead(cases, acting, pid)
    kind, specs = last(cases, pid)
    assert kind == "OfficerAssigned"
    assert set(specs) == {(f"officer:{LEAD}", Channel.INBOX), (UNIT, Channel.EMAIL)}
    inbox = specs[f"officer:{LEAD}", Channel.INBOX]
    assert "主办" in inbox.subject
    assert "专人对接" in inbox.body
    email = specs[UNIT, Channel.EMAIL]
    assert email.address == EMAIL
    assert email.subject == f"{PREFIX}已为贵单位项目指定专人对接"
    assert "已为贵单位项目指定专人对接" in email.body
    assert "张伟同志担任主办" in email.body
    assert "2026年12月4日" in email.body
    assert_to_unit(email)


def test_officer_released_tells_the_released_officer(
    cases: Cases, acting: Acting, pid: UUID
) -> None:
    with_lead(cases, acting, pid)
    cases.release_officer(acting, pid, LEAD, reason="岗位调整")
    _, specs = last(cases, pid)
    assert list(specs) == [(f"officer:{LEAD}", Channel.INBOX)]
    assert "岗位调整" in specs[f"officer:{LEAD}", Channel.INBOX].body


def test_lead_handed_over_tells_both_leads_and_the_unit(
    cases: Cases, acting: Acting, pid: UUID
) -> None:
    with_lead(cases, acting, pid)
    cases.hand_over_lead(
        acting, pid, from_officer=LEAD, to_officer="officer-lead-02", name="刘强", reason="调岗"
    )
    kind, specs = last(cases, pid)
    assert kind == "LeadHandedOver"
    assert set(specs) == {
        ("officer:officer-lead-02", Channel.INBOX),
        (f"officer:{LEAD}", Channel.INBOX),
        (UNIT, Channel.EMAIL),
    }
    assert "移交给您" in specs["officer:officer-lead-02", Channel.INBOX].subject
    assert "刘强同志" in specs[f"officer:{LEAD}", Channel.INBOX].body
    unit = specs[UNIT, Channel.EMAIL]
    assert "由张伟同志变更为刘强同志" in unit.body
    assert_to_unit(unit)


def test_helper_dispatched_tells_the_unit_the_helper_and_the_supervisor(
    cases: Cases, acting: Acting, pid: UUID
) -> None:
    cases.dispatch_helper(
        acting,
        pid,
        helper="helper-03",
        name="吴助企",
        reason=HelperReason.LEGACY_ISSUES,
        visit_every_days=14,
    )
    kind, specs = last(cases, pid)
    assert kind == "HelperDispatched"
    assert set(specs) == {
        (UNIT, Channel.EMAIL),
        ("officer:helper-03", Channel.INBOX),
        (SUPERVISOR, Channel.INBOX),
    }
    unit = specs[UNIT, Channel.EMAIL]
    assert "助企服务员吴助企同志" in unit.body
    assert "历史遗留问题较多" in unit.body
    assert "每14天" in unit.body
    assert_to_unit(unit)


def test_reminder_letter_goes_to_the_unit_by_email_and_zheliban_and_to_the_supervisor(
    cases: Cases, acting: Acting, pid: UUID
) -> None:
    issue_letter(cases, acting, pid)
    kind, specs = last(cases, pid)
    assert kind == "ReminderLetterIssued"
    assert set(specs) == {
        (UNIT, Channel.EMAIL),
        (UNIT, Channel.WEBHOOK),
        (SUPERVISOR, Channel.INBOX),
    }
    email = specs[UNIT, Channel.EMAIL]
    assert email.subject == f"{PREFIX}温馨提醒函 {LETTER_NO}"
    assert "请于2026年12月31日前完成整改" in email.body
    assert "1. 【重点问题】（专家评估）大气预测因子不全" in email.body
    assert "整改要求：补充VOCs预测" in email.body
    assert "2. 【一般问题】（现场核查）围挡破损" in email.body
    assert "共2项问题，其中重点问题1项、一般问题1项" in email.body
    assert_to_unit(email)
    webhook = specs[UNIT, Channel.WEBHOOK]
    assert webhook.address == "zheliban"
    assert (webhook.subject, webhook.body) == (email.subject, email.body)
    supervisor = specs[SUPERVISOR, Channel.INBOX]
    assert LETTER_NO in supervisor.subject
    assert "整改期限2026年12月31日" in supervisor.body
    assert "大气预测因子不全" in supervisor.body


def test_without_webhook_targets_no_webhook_is_produced(
    cases: Cases, acting: Acting, pid: UUID
) -> None:
    issue_letter(cases, acting, pid)
    _, specs = last(cases, pid, targets={})
    assert set(specs) == {(UNIT, Channel.EMAIL), (SUPERVISOR, Channel.INBOX)}
    cases.refer_violation(
        acting, pid, description="未批先建", legal_basis=None, letter_id=None, issue_id=None
    )
    _, specs = last(cases, pid, targets={"zheliban": "http://127.0.0.1:9/"})
    assert set(specs) == {(SUPERVISOR, Channel.INBOX)}


def test_rectification_submitted_asks_the_officers_to_review(
    cases: Cases, acting: Acting, pid: UUID
) -> None:
    with_lead(cases, acting, pid)
    letter = issue_letter(cases, acting, pid)
    cases.submit_rectification(
        acting, pid, letter, f"{letter}-I1", summary="已补充预测", evidence=("附件1.pdf",)
    )
    _, specs = last(cases, pid)
    assert list(specs) == [(f"officer:{LEAD}", Channel.INBOX)]
    body = specs[f"officer:{LEAD}", Channel.INBOX].body
    assert "已补充预测" in body
    assert "附件1.pdf" in body


def test_rectification_submitted_without_officers_goes_to_the_supervisor(
    cases: Cases, acting: Acting, pid: UUID
) -> None:
    letter = issue_letter(cases, acting, pid)
    cases.submit_rectification(acting, pid, letter, f"{letter}-I1", summary="已整改", evidence=())
    _, specs = last(cases, pid)
    assert list(specs) == [(SUPERVISOR, Channel.INBOX)]
    assert "佐证材料：无" in specs[SUPERVISOR, Channel.INBOX].body


def test_returned_rectification_goes_to_the_unit_with_the_reason(
    cases: Cases, acting: Acting, pid: UUID
) -> None:
    letter = issue_letter(cases, acting, pid)
    issue = f"{letter}-I1"
    cases.submit_rectification(acting, pid, letter, issue, summary="已补充", evidence=())
    cases.return_rectification(acting, pid, letter, issue, reason="缺少非正常工况")
    kind, specs = last(cases, pid)
    assert kind == "RectificationReturned"
    assert set(specs) == {(UNIT, Channel.EMAIL), (UNIT, Channel.WEBHOOK)}
    email = specs[UNIT, Channel.EMAIL]
    assert email.subject == f"{PREFIX}整改材料退回：{LETTER_NO}"
    assert "退回原因：缺少非正常工况" in email.body
    assert "大气预测因子不全" in email.body
    assert "2026年12月31日前重新提交" in email.body
    assert_to_unit(email)


def test_accepted_rectification_goes_to_the_unit(cases: Cases, acting: Acting, pid: UUID) -> None:
    letter = issue_letter(cases, acting, pid)
    issue = f"{letter}-I2"
    cases.submit_rectification(acting, pid, letter, issue, summary="围挡已修复", evidence=())
    cases.accept_rectification(acting, pid, letter, issue, comment="同意")
    kind, specs = last(cases, pid)
    assert kind == "RectificationAccepted"
    assert list(specs) == [(UNIT, Channel.EMAIL)]
    email = specs[UNIT, Channel.EMAIL]
    assert email.subject == f"{PREFIX}整改通过：{LETTER_NO}"
    assert "围挡破损" in email.body
    assert "审核意见：同意" in email.body
    assert_to_unit(email)


def test_closed_letter_goes_to_the_unit_and_the_supervisor(
    cases: Cases, acting: Acting, pid: UUID
) -> None:
    letter = issue_letter(cases, acting, pid)
    for n in (1, 2):
        issue = f"{letter}-I{n}"
        cases.submit_rectification(acting, pid, letter, issue, summary="已整改", evidence=())
        cases.accept_rectification(acting, pid, letter, issue, comment=None)
    cases.close_reminder_letter(acting, pid, letter)
    kind, specs = last(cases, pid)
    assert kind == "ReminderLetterClosed"
    assert set(specs) == {(UNIT, Channel.EMAIL), (SUPERVISOR, Channel.INBOX)}
    assert "2项问题已全部整改到位" in specs[UNIT, Channel.EMAIL].body
    assert "闭环" in specs[SUPERVISOR, Channel.INBOX].subject


def test_deferred_material_tells_the_unit_the_promised_date(
    cases: Cases, acting: Acting, pid: UUID
) -> None:
    cases.defer_material(
        acting,
        pid,
        material="取水许可批复",
        department="市林水局",
        reason=DeferralReason.OTHER_DEPARTMENT_PERMIT,
        promised_by=date(2026, 12, 20),
    )
    kind, specs = last(cases, pid)
    assert kind == "MaterialDeferred"
    assert list(specs) == [(UNIT, Channel.EMAIL)]
    email = specs[UNIT, Channel.EMAIL]
    assert email.subject == f"{PREFIX}容缺受理告知：取水许可批复"
    assert "取水许可批复（市林水局）" in email.body
    assert "请于2026年12月20日前补交" in email.body
    assert_to_unit(email)


def test_violation_referral_goes_to_the_supervisor_and_zhezhengding(
    cases: Cases, acting: Acting, pid: UUID
) -> None:
    letter = issue_letter(cases, acting, pid)
    cases.refer_violation(
        acting,
        pid,
        description="未批先建嫌疑",
        legal_basis="《环境影响评价法》第三十一条",
        letter_id=letter,
        issue_id=f"{letter}-I1",
    )
    kind, specs = last(cases, pid)
    assert kind == "ViolationReferred"
    assert set(specs) == {(SUPERVISOR, Channel.INBOX), (SUPERVISOR, Channel.WEBHOOK)}
    inbox = specs[SUPERVISOR, Channel.INBOX]
    assert "未批先建嫌疑" in inbox.body
    assert "《环境影响评价法》第三十一条" in inbox.body
    assert f"关联温馨提醒函：{LETTER_NO}（{letter}-I1）" in inbox.body
    webhook = specs[SUPERVISOR, Channel.WEBHOOK]
    assert webhook.address == "zhezhengding"
    assert webhook.body == inbox.body


def test_closed_project_tells_the_unit_the_supervisor_and_the_officers(
    cases: Cases, acting: Acting, pid: UUID
) -> None:
    with_lead(cases, acting, pid)
    cases.close_project(acting, pid, summary="环评已批复，服务办结")
    kind, specs = last(cases, pid)
    assert kind == "ProjectClosed"
    assert set(specs) == {
        (UNIT, Channel.EMAIL),
        (SUPERVISOR, Channel.INBOX),
        (f"officer:{LEAD}", Channel.INBOX),
    }
    assert "环评已批复，服务办结" in specs[UNIT, Channel.EMAIL].body
    assert_to_unit(specs[UNIT, Channel.EMAIL])


def test_early_intervention_tells_the_unit_the_guidance(
    cases: Cases, acting: Acting, pid: UUID
) -> None:
    cases.start_early_intervention(acting, pid, stage=Stage.APPROVAL, guidance="大气专题先行")
    _, specs = last(cases, pid)
    assert list(specs) == [(UNIT, Channel.EMAIL)]
    assert "立项阶段" in specs[UNIT, Channel.EMAIL].body
    assert "大气专题先行" in specs[UNIT, Channel.EMAIL].body


# --- early warnings ------------------------------------------------------------------------
def test_rectification_warning_goes_to_the_unit_the_officers_and_the_supervisor(
    cases: Cases, acting: Acting, pid: UUID
) -> None:
    with_lead(cases, acting, pid)
    letter = issue_letter(cases, acting, pid)
    message = f"温馨提醒函 {LETTER_NO} 的整改期限为 2026-12-31，还剩 3 个工作日"
    spec = WarningSpec(
        f"letter:{letter}:due_soon",
        WarningKind.RECTIFICATION_DUE_SOON,
        letter,
        date(2026, 12, 31),
        message,
    )
    assert cases.raise_warnings(acting, pid, (spec,)) == 1
    kind, specs = last(cases, pid)
    assert kind == "WarningRaised"
    assert set(specs) == {
        (UNIT, Channel.EMAIL),
        (UNIT, Channel.WEBHOOK),
        (f"officer:{LEAD}", Channel.INBOX),
        (SUPERVISOR, Channel.INBOX),
    }
    email = specs[UNIT, Channel.EMAIL]
    assert email.subject == f"{PREFIX}预警温馨提醒：整改期限临近"
    assert message in email.body
    assert f"事项：温馨提醒函{LETTER_NO}" in email.body
    assert "期限：2026年12月31日" in email.body
    assert_to_unit(email)
    staff = specs[SUPERVISOR, Channel.INBOX]
    assert "整改期限临近" in staff.subject
    assert message in staff.body


def test_helper_visit_warning_is_for_staff_only(cases: Cases, acting: Acting, pid: UUID) -> None:
    cases.dispatch_helper(
        acting,
        pid,
        helper="helper-03",
        name="吴助企",
        reason=HelperReason.COMPLEX_SITUATION,
        visit_every_days=14,
    )
    spec = WarningSpec(
        "helper:helper-03:overdue:2026-12-18",
        WarningKind.HELPER_VISIT_OVERDUE,
        "helper-03",
        date(2026, 12, 18),
        "助企服务员 吴助企（helper-03）应于 2026-12-18 前走访（每 14 天一次），已逾期",
    )
    cases.raise_warnings(acting, pid, (spec,))
    _, specs = last(cases, pid)
    assert set(specs) == {("officer:helper-03", Channel.INBOX), (SUPERVISOR, Channel.INBOX)}
    assert "助企服务员吴助企的帮扶走访" in specs[SUPERVISOR, Channel.INBOX].body


def test_a_warning_event_of_unknown_kind_reads_as_a_warning(
    cases: Cases, acting: Acting, pid: UUID
) -> None:
    class WarningRaised:  # the event as a later warning kind would record it
        warning = SimpleNamespace(
            key="permit:P1:expiring",
            kind="permit_expiring",
            subject_id="P1",
            due_on=date(2027, 3, 1),
            message="排污许可证将于 2027-03-01 到期，请及时申请延续",
        )

    project = cases.store.get_project(pid)
    specs = notifications_for(WarningRaised(), project, webhook_targets={})
    email = next(s for s in specs if s.channel is Channel.EMAIL)
    assert email.subject == f"{PREFIX}预警温馨提醒：预警提醒"
    assert "排污许可证将于 2027-03-01 到期" in email.body
    assert "期限：2027年3月1日" in email.body


# --- recipients in general -----------------------------------------------------------------
def test_a_unit_without_contact_gets_no_email_but_still_zheliban(
    cases: Cases, acting: Acting
) -> None:
    project = cases.register(
        acting,
        name="无联系人项目",
        project_code="2024-330100-44-01-654321",
        builder=Builder(name="杭州某新材料有限公司", credit_code=CREDIT_CODE, contact=None),
        window=Window.XIHU,
        tiers=(Tier.DISTRICT_KEY,),
        industry="制造",
        location="西湖区",
        two_high_one_low=True,
    )
    _, specs = last(cases, project.id)
    assert "两高一低" in specs[SUPERVISOR, Channel.INBOX].body
    issue_letter(cases, acting, project.id)
    _, specs = last(cases, project.id)
    assert set(specs) == {(UNIT, Channel.WEBHOOK), (SUPERVISOR, Channel.INBOX)}
    assert specs[UNIT, Channel.WEBHOOK].body.startswith("杭州某新材料有限公司：")


def test_the_unit_sees_the_phone_of_its_projects_window(
    cases: Cases, acting: Acting, register_major: RegisterMajor, clock: Clock
) -> None:
    city = Acting(Actor("officer-city-01", "钱进", acting.actor.role, Window.CITY), "req-city")
    pid = register_major("2024-330100-44-01-222222", acting=city, window=Window.CITY).id
    _, specs = last(cases, pid)
    assert set(specs) == {("supervisor:city", Channel.INBOX)}
    cases.defer_material(
        city,
        pid,
        material="规划许可证",
        department="市规划和自然资源局",
        reason=DeferralReason.OTHER_DEPARTMENT_PERMIT,
        promised_by=clock.now.date() + timedelta(days=10),
    )
    _, specs = last(cases, pid)
    body = specs[UNIT, Channel.EMAIL].body
    assert "0571-85085326" in body
    assert "杭州市生态环境局许可受理窗口" in body
    assert XIHU_PHONE not in body


def test_unknown_events_call_for_nothing(cases: Cases, acting: Acting, pid: UUID) -> None:
    project = cases.store.get_project(pid)
    assert notifications_for(object(), project, webhook_targets=TARGETS) == []
    cases.add_audit_note(acting, pid, note="审计抽查")
    assert last(cases, pid) == ("AuditNoteAdded", {})


def test_a_whole_case_renders_every_message_once_per_recipient_and_channel(
    cases: Cases, acting: Acting, pid: UUID, clock: Clock
) -> None:
    work_the_case(cases, acting, pid, clock)
    kinds: set[str] = set()
    for event in cases.store.history(pid):
        project = cases.store.get_project(pid, version=event.originator_version)
        specs = notifications_for(event, project, webhook_targets=TARGETS)
        assert len({(s.recipient, s.channel) for s in specs}) == len(specs)
        for s in specs:
            kinds.add(type(event).__name__)
            assert s.subject.startswith(PREFIX)
            assert "{" not in s.subject + s.body, "a placeholder left unfilled"
            if s.recipient == UNIT:
                assert XIHU_PHONE in s.body
            assert (s.address is None) == (s.channel is Channel.INBOX)
            if s.channel is Channel.EMAIL:
                assert s.address == EMAIL
    assert kinds >= {
        "Registered",
        "OfficerAssigned",
        "HelperDispatched",
        "MaterialDeferred",
        "ReminderLetterIssued",
        "RectificationReturned",
        "RectificationAccepted",
        "ReminderLetterClosed",
        "ViolationReferred",
    }


def test_templates_are_chinese_and_bureau_prefixed() -> None:
    for name, template in TEMPLATES.items():
        if name.startswith("footer."):
            assert template.subject == ""
            continue
        assert template.subject.startswith(PREFIX), name
        assert template.body.strip(), name
