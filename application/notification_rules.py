"""Which notifications an event of a key project calls for: pure rules, no I/O.

:func:`notifications_for` maps one stored event, and the project's state right after it, to the
messages it calls for. Recipients and their channels:

- the construction unit's contact (建设单位联系人): ``unit:{credit_code}`` by e-mail to the
  contact's address; none when the unit gave no contact. Messages that ask the unit to act (a
  reminder letter, a returned rectification, an early warning) also go to 浙里办 as a webhook
  (recipient ``unit:{credit_code}``, address ``zheliban``) when that target is configured.
  Early warnings about the bureau's own duties (a progress check or helper visit overdue) are
  for staff only;
- the officers on the case (经办人员): ``officer:{sub}`` in the in-app inbox;
- the window's supervisor (科室/分局负责人): ``supervisor:{window}`` in the in-app inbox, and for a
  referred violation also 浙政钉 as a webhook (address ``zhezhengding``) when configured.

Subjects and bodies come from the one table :data:`TEMPLATES`. Every message to the unit ends with
the window that handles the project and its phone (0571-xxxxxxxx). Events without a rule, and
events of a kind this module does not know, call for nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from domain.helper_service import HelperReason
from domain.intervention import Stage
from domain.letters import FoundIn, Issue, ReminderLetter, Severity
from domain.officers import OfficerAssignment, OfficerRole
from domain.project import KeyProject
from domain.tiers import Tier
from domain.warnings import WarningKind
from domain.windows import AREA_CODE, WINDOWS, Window

__all__ = [
    "TEMPLATES",
    "ZHELIBAN",
    "ZHEZHENGDING",
    "Channel",
    "NotificationSpec",
    "Template",
    "notifications_for",
    "officer_recipient",
    "supervisor_recipient",
    "unit_recipient",
]


class Channel(StrEnum):
    INBOX = "inbox"  # in-app (GET /notifications); delivered by being stored
    EMAIL = "email"  # SMTP, to ``address``
    WEBHOOK = "webhook"  # signed POST to the target named by ``address``


#: Webhook target names (keys of ``webhook_targets``).
ZHEZHENGDING: Final = "zhezhengding"  # 浙政钉: the government staff's platform
ZHELIBAN: Final = "zheliban"  # 浙里办: the enterprises' and citizens' platform

BUREAU: Final = "杭州市生态环境局"


@dataclass(frozen=True)
class NotificationSpec:
    """One message to one recipient over one channel (not yet stored)."""

    recipient: str
    channel: Channel
    address: str | None  # e-mail address, webhook target name, or None for the inbox
    subject: str
    body: str


@dataclass(frozen=True)
class Template:
    subject: str
    body: str


def unit_recipient(credit_code: str) -> str:
    return f"unit:{credit_code}"


def officer_recipient(sub: str) -> str:
    return f"officer:{sub}"


def supervisor_recipient(window: str) -> str:
    return f"supervisor:{window}"


# --- labels -----------------------------------------------------------------------------------
ROLE_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        OfficerRole.LEAD: "主办",
        OfficerRole.CO_ORGANIZER: "协办",
        OfficerRole.ASSESSOR: "帮办",
        OfficerRole.JOINT: "联办",
    }
)
SEVERITY_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {Severity.KEY: "重点问题", Severity.GENERAL: "一般问题"}
)
FOUND_IN_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        FoundIn.EXPERT_REVIEW: "专家评估",
        FoundIn.PUBLIC_PARTICIPATION: "公众参与",
        FoundIn.DOCUMENT_REVIEW: "资料审查",
        FoundIn.SITE_INSPECTION: "现场核查",
        FoundIn.DISCHARGE_PERMIT: "排污许可",
        FoundIn.HAZARDOUS_WASTE_PERMIT: "危废经营许可",
        FoundIn.RADIATION_PERMIT: "辐射安全许可",
    }
)
HELPER_REASON_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        HelperReason.COMPLEX_SITUATION: "情况复杂",
        HelperReason.LEGACY_ISSUES: "历史遗留问题较多",
        HelperReason.MEASURES_NOT_IN_PLACE: "污染防治措施落实不到位",
    }
)
STAGE_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {Stage.FEASIBILITY: "可研", Stage.APPROVAL: "立项", Stage.PRELIMINARY_DESIGN: "初设"}
)
TIER_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        Tier.DISTRICT_KEY: "区县（市）级重点项目",
        Tier.CITY_KEY: "市重点项目",
        Tier.PROVINCIAL_KEY: "省重点项目",
        Tier.QIANXIANG_WANYI: "“千项万亿”工程项目",
        Tier.MINISTRY_CONTACT: "部司重点联系项目",
        Tier.PROVINCIAL_DEPT_CONTACT: "省厅重点联系项目",
    }
)
#: Early-warning kinds (预警温馨提醒); an unknown kind reads as 预警提醒.
WARNING_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        WarningKind.RECTIFICATION_DUE_SOON: "整改期限临近",
        WarningKind.RECTIFICATION_OVERDUE: "整改期限已过",
        WarningKind.MATERIAL_DUE_SOON: "容缺材料承诺补交日期临近",
        WarningKind.MATERIAL_OVERDUE: "容缺材料逾期未补交",
        WarningKind.PROGRESS_CHECK_OVERDUE: "定期调度逾期",
        WarningKind.HELPER_VISIT_OVERDUE: "助企服务走访逾期",
    }
)
#: Warnings about the bureau's own duties (a check or a visit it owes): staff only, not the unit.
STAFF_ONLY_WARNINGS: Final = frozenset(
    {WarningKind.PROGRESS_CHECK_OVERDUE, WarningKind.HELPER_VISIT_OVERDUE}
)

# --- the one table of message texts -----------------------------------------------------------
_P = "【" + BUREAU + "】"

#: Every subject and body. Placeholders: {project} {project_code} {unit} {greeting}
#: {window_org} {window_phone} and the event's own fields named in each text.
TEMPLATES: Final[Mapping[str, Template]] = MappingProxyType(
    {
        "footer.unit": Template(
            "",
            "\n\n如有疑问，请联系{window_org}许可受理窗口，电话 {window_phone}。\n"
            "本通知由系统自动发送，请勿直接回复。\n\n{window_org}",
        ),
        "footer.staff": Template(
            "", "\n\n项目：{project}（项目代码 {project_code}），{window_org}"
        ),
        "registered.supervisor": Template(
            _P + "新登记重点项目：{project}",
            "{window_org}已登记重点项目「{project}」（项目代码 {project_code}）。\n"
            "建设单位：{unit}\n项目类别：{tiers}\n行业：{industry}；建设地点：{location}"
            "{two_high_one_low}",
        ),
        "early_intervention.unit": Template(
            _P + "项目提前介入服务启动",
            "{greeting}：\n\n我局已于{started_on}对贵单位「{project}」（项目代码 {project_code}）"
            "启动提前介入服务（{stage}阶段），环评编制指导意见如下：\n{guidance}",
        ),
        "officer_assigned.officer": Template(
            _P + "您已被指定为项目{role}：{project}",
            "您已被指定为重点项目「{project}」的{role}人员（专人对接），自{assigned_on}起负责。\n"
            "建设单位：{unit}",
        ),
        "officer_assigned.unit": Template(
            _P + "已为贵单位项目指定专人对接",
            "{greeting}：\n\n已为贵单位项目指定专人对接：「{project}」（项目代码 {project_code}）"
            "由{officer_name}同志担任{role}，自{assigned_on}起为贵单位提供对接服务。",
        ),
        "officer_released.officer": Template(
            _P + "您已不再对接项目：{project}",
            "您自{released_on}起不再对接重点项目「{project}」。原因：{reason}",
        ),
        "lead_handed_over.new_lead": Template(
            _P + "项目主办已移交给您：{project}",
            "{from_name}同志已将重点项目「{project}」的主办职责移交给您，自{assigned_on}起生效。\n"
            "移交原因：{reason}",
        ),
        "lead_handed_over.old_lead": Template(
            _P + "项目主办移交完成：{project}",
            "您对重点项目「{project}」的主办职责已于{assigned_on}移交给{to_name}同志。\n"
            "移交原因：{reason}",
        ),
        "lead_handed_over.unit": Template(
            _P + "贵单位项目对接主办人员变更",
            "{greeting}：\n\n贵单位「{project}」（项目代码 {project_code}）的对接主办人员"
            "自{assigned_on}起由{from_name}同志变更为{to_name}同志。",
        ),
        "helper_dispatched.unit": Template(
            _P + "已为贵单位项目派驻助企服务员",
            "{greeting}：\n\n鉴于贵单位「{project}」（项目代码 {project_code}）{reason}，"
            "我局已于{dispatched_on}派驻助企服务员{helper_name}同志，"
            "原则上每{visit_every_days}天开展一次帮扶走访。",
        ),
        "helper_dispatched.helper": Template(
            _P + "您已被派驻为助企服务员：{project}",
            "您已被派驻为重点项目「{project}」的助企服务员（原因：{reason}），"
            "请每{visit_every_days}天开展一次帮扶走访并记录。\n建设单位：{unit}",
        ),
        "helper_dispatched.supervisor": Template(
            _P + "派驻助企服务员：{project}",
            "已于{dispatched_on}为重点项目「{project}」派驻助企服务员{helper_name}"
            "（原因：{reason}，走访周期{visit_every_days}天）。",
        ),
        "material_deferred.unit": Template(
            _P + "容缺受理告知：{material}",
            "{greeting}：\n\n贵单位「{project}」（项目代码 {project_code}）已按容缺办理受理，"
            "技术评估和资料审查同步开展。以下材料暂缺：\n{material}（{department}），"
            "请于{promised_by}前补交。",
        ),
        "letter_issued.unit": Template(
            _P + "温馨提醒函 {letter_no}",
            "{greeting}：\n\n我局在办理贵单位「{project}」（项目代码 {project_code}）"
            "过程中发现以下问题，现予温馨提醒（{letter_no}），"
            "请于{deadline}前完成整改并提交整改材料：\n\n{issues}\n\n"
            "共{count}项问题，其中重点问题{key_count}项、一般问题{general_count}项。",
        ),
        "letter_issued.supervisor": Template(
            _P + "已发温馨提醒函 {letter_no}：{project}",
            "已向{unit}发出温馨提醒函{letter_no}，整改期限{deadline}，"
            "共{count}项问题（重点问题{key_count}项、一般问题{general_count}项）：\n\n{issues}",
        ),
        "rectification_submitted.staff": Template(
            _P + "整改材料待审核：{letter_no} {issue_id}",
            "{unit}已提交温馨提醒函{letter_no}第{issue_id}项问题的整改材料，请及时审核。\n"
            "问题：{description}\n整改说明：{summary}\n佐证材料：{evidence}",
        ),
        "rectification_returned.unit": Template(
            _P + "整改材料退回：{letter_no}",
            "{greeting}：\n\n贵单位针对温馨提醒函{letter_no}所列问题（{issue_id}：{description}）"
            "提交的整改材料未予通过，退回原因：{reason}\n"
            "请按要求继续整改，并于{deadline}前重新提交。",
        ),
        "rectification_accepted.unit": Template(
            _P + "整改通过：{letter_no}",
            "{greeting}：\n\n贵单位针对温馨提醒函{letter_no}所列问题（{issue_id}：{description}）"
            "的整改已于{reviewed_on}审核通过。{comment}",
        ),
        "letter_closed.unit": Template(
            _P + "温馨提醒函 {letter_no} 整改闭环",
            "{greeting}：\n\n温馨提醒函{letter_no}所列{count}项问题已全部整改到位，"
            "该提醒函已于{closed_on}闭环。感谢贵单位的配合。",
        ),
        "letter_closed.supervisor": Template(
            _P + "温馨提醒函已闭环：{letter_no}",
            "{unit}的温馨提醒函{letter_no}（{count}项问题）已于{closed_on}整改闭环，"
            "整改期限为{deadline}。",
        ),
        "violation_referred.supervisor": Template(
            _P + "涉嫌违法线索移交：{project}",
            "重点项目「{project}」（项目代码 {project_code}）发现涉嫌违法情形，已于{referred_on}"
            "移交依法处理（包容审慎监管）。\n建设单位：{unit}\n情况：{description}\n"
            "依据：{legal_basis}{letter}",
        ),
        "project_closed.unit": Template(
            _P + "重点项目服务办结：{project}",
            "{greeting}：\n\n贵单位「{project}」（项目代码 {project_code}）的重点项目服务"
            "已于{closed_on}办结。\n办结说明：{summary}",
        ),
        "project_closed.staff": Template(
            _P + "重点项目已办结：{project}",
            "重点项目「{project}」已于{closed_on}办结。\n办结说明：{summary}",
        ),
        "warning.unit": Template(
            _P + "预警温馨提醒：{warning}",
            "{greeting}：\n\n{message}\n事项：{subject}\n期限：{due_on}\n请及时处理。",
        ),
        "warning.staff": Template(
            _P + "预警：{warning}（{project}）",
            "{message}\n建设单位：{unit}\n事项：{subject}\n期限：{due_on}",
        ),
    }
)


# --- rendering --------------------------------------------------------------------------------
def cn_date(day: date | None) -> str:
    """``2026年12月31日``; ``—`` when there is no date."""
    if day is None:
        return "—"
    return f"{day.year}年{day.month}月{day.day}日"


_WINDOW_INFO = {w.code: w for w in WINDOWS}


def window_org(window: Window) -> str:
    """The handling window's full name: 杭州市生态环境局西湖分局, 杭州市生态环境局, …"""
    name = _WINDOW_INFO[window].name
    return BUREAU + name if name.endswith("分局") else name


def window_phone(window: Window) -> str:
    return f"{AREA_CODE}-{_WINDOW_INFO[window].phone}"


def _issue_lines(issues: Iterable[Issue]) -> str:
    return "\n".join(
        f"{n}. 【{SEVERITY_LABELS.get(i.severity, str(i.severity))}】"
        f"（{FOUND_IN_LABELS.get(i.found_in, str(i.found_in))}）{i.description}\n"
        f"   整改要求：{i.requirement}"
        for n, i in enumerate(issues, start=1)
    )


def _letter_values(letter: ReminderLetter) -> dict[str, object]:
    return {
        "letter_no": letter.letter_no,
        "deadline": cn_date(letter.deadline),
        "issues": _issue_lines(letter.issues),
        "count": len(letter.issues),
        "key_count": sum(1 for i in letter.issues if i.severity is Severity.KEY),
        "general_count": sum(1 for i in letter.issues if i.severity is not Severity.KEY),
    }


_NONE: Final[Mapping[str, object]] = MappingProxyType({})


class _Out:
    """Collects the specs of one event, at most one per recipient and channel."""

    def __init__(self, project: KeyProject, webhook_targets: Mapping[str, str]) -> None:
        self.project = project
        self.targets = webhook_targets
        contact = project.builder.contact
        self.base: dict[str, object] = {
            "project": project.name,
            "project_code": project.project_code,
            "unit": project.builder.name,
            "greeting": (
                f"{project.builder.name}（{contact.name}）" if contact else project.builder.name
            ),
            "window_org": window_org(project.window),
            "window_phone": window_phone(project.window),
        }
        self.specs: list[NotificationSpec] = []
        self._seen: set[tuple[str, Channel]] = set()

    def _render(self, name: str, footer: str, values: Mapping[str, object]) -> tuple[str, str]:
        merged = {**self.base, **values}
        template = TEMPLATES[name]
        body = template.body.format_map(merged) + TEMPLATES[footer].body.format_map(merged)
        return template.subject.format_map(merged), body

    def _add(
        self, recipient: str, channel: Channel, address: str | None, text: tuple[str, str]
    ) -> None:
        if (recipient, channel) in self._seen:
            return
        self._seen.add((recipient, channel))
        self.specs.append(NotificationSpec(recipient, channel, address, *text))

    def unit(
        self, name: str, values: Mapping[str, object] = _NONE, *, zheliban: bool = False
    ) -> None:
        text = self._render(name, "footer.unit", values)
        recipient = unit_recipient(self.project.builder.credit_code)
        contact = self.project.builder.contact
        if contact is not None and contact.email.strip():
            self._add(recipient, Channel.EMAIL, contact.email.strip(), text)
        if zheliban and ZHELIBAN in self.targets:
            self._add(recipient, Channel.WEBHOOK, ZHELIBAN, text)

    def officer(self, sub: str, name: str, values: Mapping[str, object] = _NONE) -> None:
        self._add(
            officer_recipient(sub), Channel.INBOX, None, self._render(name, "footer.staff", values)
        )

    def officers(self, name: str, values: Mapping[str, object] = _NONE) -> int:
        """Every active officer of the case; returns how many."""
        active = self.project.active_officers
        for o in active:
            self.officer(o.officer, name, values)
        return len(active)

    def supervisor(
        self, name: str, values: Mapping[str, object] = _NONE, *, zhezhengding: bool = False
    ) -> None:
        recipient = supervisor_recipient(self.project.window)
        text = self._render(name, "footer.staff", values)
        self._add(recipient, Channel.INBOX, None, text)
        if zhezhengding and ZHEZHENGDING in self.targets:
            self._add(recipient, Channel.WEBHOOK, ZHEZHENGDING, text)


def _officer_name(project: KeyProject, sub: str) -> str:
    return next((o.name for o in reversed(project.officers) if o.officer == sub), sub)


def _assignment_values(a: OfficerAssignment) -> dict[str, object]:
    return {
        "officer_name": a.name,
        "role": ROLE_LABELS.get(a.role, str(a.role)),
        "assigned_on": cn_date(a.assigned_on),
    }


def _issue_of(project: KeyProject, letter_id: str, issue_id: str) -> tuple[ReminderLetter, Issue]:
    letter = project.reminder_letters[letter_id]
    issue = letter.issue(issue_id)
    if issue is None:  # pragma: no cover - the event names an issue of the letter
        raise KeyError(issue_id)
    return letter, issue


def _warning_subject(project: KeyProject, subject_id: str | None) -> str:
    """What a warning is about, in words: a letter's number, a material's name, a check …"""
    if not subject_id:
        return project.name
    found: list[str] = []
    if subject_id in project.reminder_letters:
        found.append(f"温馨提醒函{project.reminder_letters[subject_id].letter_no}")
    found += [
        f"温馨提醒函{le.letter_no}第{subject_id}项问题"
        for le in project.reminder_letters.values()
        if le.issue(subject_id) is not None
    ]
    if subject_id in project.deferred_materials:
        m = project.deferred_materials[subject_id]
        found.append(f"容缺材料「{m.material}」（{m.department}）")
    if subject_id in project.progress_checks:
        check = project.progress_checks[subject_id]
        found.append(f"定期调度{check.id}（原定{cn_date(check.due_on)}）")
    if subject_id in project.helpers:
        found.append(f"助企服务员{project.helpers[subject_id].name}的帮扶走访")
    return found[0] if found else subject_id


# --- the rules --------------------------------------------------------------------------------
def notifications_for(
    event: Any, project: KeyProject, *, webhook_targets: Mapping[str, str]
) -> list[NotificationSpec]:
    """The notifications ``event`` calls for; ``project`` is the state right after it.

    ``webhook_targets`` maps target names (:data:`ZHEZHENGDING`, :data:`ZHELIBAN`) to URLs; a
    webhook is only produced for a configured target. Unknown events give ``[]``.
    """
    out = _Out(project, webhook_targets)
    kind = type(event).__name__
    rule = _RULES.get(kind)
    if rule is not None:
        rule(out, event)
    return out.specs


def _registered(out: _Out, event: Any) -> None:
    out.supervisor(
        "registered.supervisor",
        {
            "tiers": "、".join(TIER_LABELS.get(t, str(t)) for t in event.tiers),
            "industry": event.industry,
            "location": event.location,
            "two_high_one_low": "\n属“两高一低”项目，请按更严格要求开展现场指导。"
            if event.two_high_one_low
            else "",
        },
    )


def _early_intervention(out: _Out, event: Any) -> None:
    i = event.intervention
    out.unit(
        "early_intervention.unit",
        {
            "started_on": cn_date(i.started_on),
            "stage": STAGE_LABELS.get(i.stage, str(i.stage)),
            "guidance": i.guidance,
        },
    )


def _officer_assigned(out: _Out, event: Any) -> None:
    a: OfficerAssignment = event.assignment
    values = _assignment_values(a)
    out.officer(a.officer, "officer_assigned.officer", values)
    out.unit("officer_assigned.unit", values)


def _officer_released(out: _Out, event: Any) -> None:
    out.officer(
        event.officer,
        "officer_released.officer",
        {"reason": event.reason, "released_on": cn_date(event.released_on)},
    )


def _lead_handed_over(out: _Out, event: Any) -> None:
    a: OfficerAssignment = event.assignment
    values = {
        "from_name": _officer_name(out.project, event.from_officer),
        "to_name": a.name,
        "reason": event.reason,
        "assigned_on": cn_date(a.assigned_on),
    }
    out.officer(a.officer, "lead_handed_over.new_lead", values)
    out.officer(event.from_officer, "lead_handed_over.old_lead", values)
    out.unit("lead_handed_over.unit", values)


def _helper_dispatched(out: _Out, event: Any) -> None:
    d = event.dispatch
    values = {
        "helper_name": d.name,
        "reason": HELPER_REASON_LABELS.get(d.reason, str(d.reason)),
        "dispatched_on": cn_date(d.dispatched_on),
        "visit_every_days": d.visit_every_days,
    }
    out.unit("helper_dispatched.unit", values)
    out.officer(d.helper, "helper_dispatched.helper", values)
    out.supervisor("helper_dispatched.supervisor", values)


def _material_deferred(out: _Out, event: Any) -> None:
    m = event.material
    out.unit(
        "material_deferred.unit",
        {
            "material": m.material,
            "department": m.department,
            "promised_by": cn_date(m.promised_by),
        },
    )


def _letter_issued(out: _Out, event: Any) -> None:
    values = _letter_values(event.letter)
    out.unit("letter_issued.unit", values, zheliban=True)
    out.supervisor("letter_issued.supervisor", values)


def _rectification_submitted(out: _Out, event: Any) -> None:
    letter, issue = _issue_of(out.project, event.letter_id, event.issue_id)
    r = event.rectification
    values = {
        **_letter_values(letter),
        "issue_id": issue.id,
        "description": issue.description,
        "summary": r.summary,
        "evidence": "、".join(r.evidence) if r.evidence else "无",
    }
    if not out.officers("rectification_submitted.staff", values):
        out.supervisor("rectification_submitted.staff", values)


def _rectification_reviewed(out: _Out, event: Any) -> None:
    letter, issue = _issue_of(out.project, event.letter_id, event.issue_id)
    review = event.review
    values = {
        **_letter_values(letter),
        "issue_id": issue.id,
        "description": issue.description,
        "reviewed_on": cn_date(review.reviewed_on),
    }
    if review.accepted:
        comment = f"审核意见：{review.comment}" if review.comment else ""
        out.unit("rectification_accepted.unit", {**values, "comment": comment})
    else:
        out.unit("rectification_returned.unit", {**values, "reason": review.comment}, zheliban=True)


def _letter_closed(out: _Out, event: Any) -> None:
    letter = out.project.reminder_letters[event.letter_id]
    values = {**_letter_values(letter), "closed_on": cn_date(event.closed_on)}
    out.unit("letter_closed.unit", values)
    out.supervisor("letter_closed.supervisor", values)


def _violation_referred(out: _Out, event: Any) -> None:
    r = event.referral
    letters = out.project.reminder_letters
    letter = ""
    if r.letter_id is not None and r.letter_id in letters:
        letter = f"\n关联温馨提醒函：{letters[r.letter_id].letter_no}"
        if r.issue_id is not None:
            letter += f"（{r.issue_id}）"
    out.supervisor(
        "violation_referred.supervisor",
        {
            "description": r.description,
            "legal_basis": r.legal_basis or "待认定",
            "referred_on": cn_date(r.referred_on),
            "letter": letter,
        },
        zhezhengding=True,
    )


def _project_closed(out: _Out, event: Any) -> None:
    values = {"summary": event.summary, "closed_on": cn_date(event.closed_on)}
    out.unit("project_closed.unit", values)
    out.supervisor("project_closed.staff", values)
    out.officers("project_closed.staff", values)


def _warning_raised(out: _Out, event: Any) -> None:
    w = event.warning
    kind = str(w.kind)
    values = {
        "warning": WARNING_LABELS.get(kind, "预警提醒"),
        "message": w.message,
        "subject": _warning_subject(out.project, w.subject_id),
        "due_on": cn_date(w.due_on),
    }
    if kind not in STAFF_ONLY_WARNINGS:
        out.unit("warning.unit", values, zheliban=True)
    if kind == WarningKind.HELPER_VISIT_OVERDUE and w.subject_id in out.project.helpers:
        out.officer(w.subject_id, "warning.staff", values)
    out.officers("warning.staff", values)
    out.supervisor("warning.staff", values)


Rule = Callable[[_Out, Any], None]

#: The rule of each event kind (by class name, as stored events name them).
_RULES: Final[Mapping[str, Rule]] = MappingProxyType(
    {
        "Registered": _registered,
        "EarlyInterventionStarted": _early_intervention,
        "OfficerAssigned": _officer_assigned,
        "OfficerReleased": _officer_released,
        "LeadHandedOver": _lead_handed_over,
        "HelperDispatched": _helper_dispatched,
        "MaterialDeferred": _material_deferred,
        "ReminderLetterIssued": _letter_issued,
        "RectificationSubmitted": _rectification_submitted,
        "RectificationReturned": _rectification_reviewed,
        "RectificationAccepted": _rectification_reviewed,
        "ReminderLetterClosed": _letter_closed,
        "ViolationReferred": _violation_referred,
        "ProjectClosed": _project_closed,
        "WarningRaised": _warning_raised,
    }
)
