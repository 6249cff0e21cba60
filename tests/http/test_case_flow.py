"""The whole case of a major project through HTTP, from registration to closure, then the
history that an auditor replays; on every kind of store."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import CREDIT_CODE
from tests.http.support import (
    AUDITOR,
    CITY_SUPERVISOR,
    GONGSHU_OFFICER,
    TODAY,
    XIHU_LEAD,
    XIHU_OFFICER,
    XIHU_SUPERVISOR,
    Api,
    Persona,
    Populated,
    assert_problem,
    every_write,
    letter_body,
    new_project_code,
    populate,
    project_body,
)
from tests.pg import STORE_KINDS, store_param

CO_ORGANIZER = "officer-city-07"


class Recorder:
    """Sends writes and remembers, per successful write, who sent it in which request."""

    def __init__(self, api: Api, project_id: str) -> None:
        self.api = api
        self.project_id = project_id
        self.sent: list[tuple[str, Persona, str]] = []  # (event type, persona, request id)

    def write(
        self,
        path: str,
        body: dict[str, Any],
        event_type: str,
        *,
        as_: Persona = XIHU_OFFICER,
        status: int = 200,
    ) -> dict[str, Any]:
        r = self.api.post(f"/projects/{self.project_id}/{path}", body, as_=as_)
        assert r.status_code == status, f"{path}: {r.status_code} {r.text}"
        view: dict[str, Any] = r.json()
        assert view["version"] == len(self.sent) + 1, "every write is exactly one event"
        assert r.headers["ETag"] == f'"{view["version"]}"'
        self.sent.append((event_type, as_, r.request.headers["X-Request-ID"]))
        return view


def _by(items: list[dict[str, Any]], key: str, value: str) -> dict[str, Any]:
    found = [i for i in items if i[key] == value]
    assert len(found) == 1, f"{key}={value} in {items}"
    return found[0]


@pytest.mark.parametrize("app_settings", [store_param(kind) for kind in STORE_KINDS], indirect=True)
def test_full_case_of_a_major_project_from_registration_to_closure(api: Api) -> None:
    # --- registration ------------------------------------------------------------------
    body = project_body(new_project_code())
    r = api.post("/projects", body, as_=XIHU_OFFICER)
    assert r.status_code == 201, r.text
    view = r.json()
    pid = view["id"]
    assert r.headers["Location"] == f"/projects/{pid}"
    assert r.headers["ETag"] == '"1"'
    assert view["version"] == 1
    assert view["project_code"] == body["project_code"]
    assert view["builder"]["credit_code"] == CREDIT_CODE
    assert view["builder"]["contact"]["email"] == "lisi@example.cn"
    assert view["window"] == "xihu"
    assert view["tiers"] == ["city_key", "qianxiang_wanyi"]
    assert view["is_key"] is True
    assert view["is_major"] is True
    assert view["status"] == "open"
    got = api.get(r.headers["Location"])
    assert got.status_code == 200
    assert got.headers["ETag"] == '"1"'
    assert got.json() == view

    case = Recorder(api, pid)
    case.sent.append(("Registered", XIHU_OFFICER, r.request.headers["X-Request-ID"]))

    # --- early intervention and progress checks -----------------------------------------
    view = case.write(
        "early-intervention",
        {"stage": "feasibility", "guidance": "指导编制环评报告书，落实区域削减方案"},
        "EarlyInterventionStarted",
    )
    assert view["early_intervention"]["stage"] == "feasibility"
    assert view["early_intervention"]["started_on"] == TODAY.isoformat()

    view = case.write(
        "progress-checks", {"due_on": "2026-12-18"}, "ProgressCheckScheduled", status=201
    )
    (check,) = view["progress_checks"]
    assert check["due_on"] == "2026-12-18"
    assert check["status"] == "scheduled"
    check_id = check["id"]

    view = case.write(
        f"progress-checks/{check_id}/outcome",
        {"summary": "可研报告已完成，环评同步编制", "next_due_on": "2027-01-15"},
        "ProgressCheckOutcomeRecorded",
        as_=XIHU_SUPERVISOR,
    )
    done = _by(view["progress_checks"], "id", check_id)
    assert done["status"] == "done"
    assert done["summary"] == "可研报告已完成，环评同步编制"
    assert done["checked_on"] == TODAY.isoformat()
    (following,) = [c for c in view["progress_checks"] if c["id"] != check_id]
    assert following["due_on"] == "2027-01-15"
    assert following["status"] == "scheduled"

    # --- officer network ----------------------------------------------------------------
    view = case.write(
        "officers",
        {"officer": XIHU_LEAD.sub, "name": XIHU_LEAD.name, "role": "lead"},
        "OfficerAssigned",
        status=201,
    )
    view = case.write(
        "officers",
        {"officer": CO_ORGANIZER, "name": "何静", "role": "co_organizer"},
        "OfficerAssigned",
        status=201,
    )
    assert {o["officer"]: o["role"] for o in view["officers"]} == {
        XIHU_LEAD.sub: "lead",
        CO_ORGANIZER: "co_organizer",
    }
    view = case.write(
        f"officers/{CO_ORGANIZER}/release", {"reason": "专委会调整"}, "OfficerReleased"
    )
    released = _by(view["officers"], "officer", CO_ORGANIZER)
    assert released["active"] is False
    assert released["released_on"] == TODAY.isoformat()
    assert released["release_reason"] == "专委会调整"
    assert _by(view["officers"], "officer", XIHU_LEAD.sub)["active"] is True

    # --- helper-enterprise service ------------------------------------------------------
    view = case.write(
        "helpers",
        {"helper": "helper-01", "name": "吴强", "reason": "complex_situation"},
        "HelperDispatched",
        status=201,
        as_=XIHU_LEAD,
    )
    assert view["helpers"][0]["helper"] == "helper-01"
    view = case.write(
        "helper-visits",
        {
            "helper": "helper-01",
            "visited_on": TODAY.isoformat(),
            "kind": "on_site_help",
            "findings": "废气收集效率偏低",
        },
        "HelperVisitRecorded",
        status=201,
        as_=XIHU_LEAD,
    )
    (visit,) = view["helper_visits"]
    assert visit["kind"] == "on_site_help"
    assert visit["findings"] == "废气收集效率偏低"

    # --- deficiency-tolerant acceptance -------------------------------------------------
    view = case.write(
        "deferred-materials",
        {
            "material": "取水许可批复",
            "department": "市林水局",
            "reason": "other_department_permit",
            "promised_by": "2026-12-20",
        },
        "MaterialDeferred",
        status=201,
    )
    (material,) = view["deferred_materials"]
    assert material["status"] == "deferred"
    view = case.write(
        f"deferred-materials/{material['id']}/supplied",
        {"note": "已补交"},
        "MaterialSupplied",
    )
    assert view["deferred_materials"][0]["status"] == "supplied"
    assert view["deferred_materials"][0]["supplied_on"] == TODAY.isoformat()

    # --- reminder letter and the rectification loop -------------------------------------
    view = case.write(
        "reminder-letters", letter_body("杭环温提〔2026〕7号"), "ReminderLetterIssued", status=201
    )
    (letter,) = view["reminder_letters"]
    assert letter["letter_no"] == "杭环温提〔2026〕7号"
    assert letter["deadline"] == "2026-12-31"
    assert letter["status"] == "open"
    assert [(i["severity"], i["found_in"], i["status"]) for i in letter["issues"]] == [
        ("key", "expert_review", "open"),
        ("general", "site_inspection", "open"),
    ]
    lid = letter["id"]
    first, second = (i["id"] for i in letter["issues"])
    issues = f"reminder-letters/{lid}/issues"

    def issue_status(v: dict[str, Any], issue_id: str) -> str:
        status: str = _by(v["reminder_letters"][0]["issues"], "id", issue_id)["status"]
        return status

    for issue_id in (first, second):
        view = case.write(
            f"{issues}/{issue_id}/rectification",
            {"summary": "已补充预测数据", "evidence": ["补充报告.pdf"]},
            "RectificationSubmitted",
        )
        assert issue_status(view, issue_id) == "submitted"
    view = case.write(f"{issues}/{second}/return", {"reason": "证据不足"}, "RectificationReturned")
    assert issue_status(view, second) == "returned"
    view = case.write(
        f"{issues}/{second}/rectification",
        {"summary": "补充现场监测报告", "evidence": ["监测报告.pdf", "照片.jpg"]},
        "RectificationSubmitted",
    )
    assert issue_status(view, second) == "submitted"
    for issue_id in (first, second):
        view = case.write(
            f"{issues}/{issue_id}/accept",
            {"comment": "同意"},
            "RectificationAccepted",
            as_=XIHU_SUPERVISOR,
        )
        assert issue_status(view, issue_id) == "accepted"
    view = case.write(f"reminder-letters/{lid}/close", {}, "ReminderLetterClosed")
    assert view["reminder_letters"][0]["status"] == "closed"
    assert view["reminder_letters"][0]["closed_on"] == TODAY.isoformat()

    # --- violation and closure ----------------------------------------------------------
    view = case.write(
        "violations",
        {"description": "未批先建", "legal_basis": "《环境影响评价法》第三十一条"},
        "ViolationReferred",
        status=201,
    )
    assert view["violations"][0]["description"] == "未批先建"
    view = case.write("close", {"summary": "服务完成，环评已批复"}, "ProjectClosed")
    assert view["status"] == "closed"
    assert view["closed_on"] == TODAY.isoformat()
    closed_version = view["version"]

    # --- a closed case refuses every write but an audit note ----------------------------
    p = Populated(
        id=pid,
        version=closed_version,
        check_id=check_id,
        officer=XIHU_LEAD.sub,
        helper="helper-01",
        material_id=material["id"],
        letter_id=lid,
        issue_ids=(first, second),
    )
    for path, write_body in every_write(p):
        if path.endswith("/audit-notes"):
            continue
        assert_problem(api.post(path, write_body), 409, "project_closed")
    assert api.view(pid)["version"] == closed_version
    view = case.write("audit-notes", {"note": "结案后审计抽查"}, "AuditNoteAdded", status=201)
    assert view["audit_notes"][0]["note"] == "结案后审计抽查"

    # --- the end state, and the history that an auditor replays -------------------------
    end = api.view(pid, as_=AUDITOR)
    assert end == api.view(pid, as_=CITY_SUPERVISOR)
    assert end["status"] == "closed"
    assert end["version"] == len(case.sent)
    assert [o["active"] for o in end["officers"]] == [True, False]
    assert end["reminder_letters"][0]["status"] == "closed"
    assert len(end["violations"]) == 1
    assert len(end["audit_notes"]) == 1

    r = api.get(f"/projects/{pid}/history", as_=AUDITOR)
    assert r.status_code == 200
    assert r.headers["ETag"] == f'"{end["version"]}"'
    history = r.json()
    assert history["id"] == pid
    assert history["version"] == end["version"]
    events = history["events"]
    assert [e["version"] for e in events] == list(range(1, len(case.sent) + 1))
    assert [e["type"] for e in events] == [t for t, _, _ in case.sent]
    for event, (_, persona, request_id) in zip(events, case.sent, strict=True):
        assert event["actor"] == persona.as_actor_json()
        assert event["request_id"] == request_id
        assert event["recorded_at"]
    assert events[0]["data"]["project_code"] == body["project_code"]
    times = [e["recorded_at"] for e in events]
    assert times == sorted(times)


def test_officer_of_another_window_writes_only_while_assigned_to_the_case(api: Api) -> None:
    p = populate(api)
    note = {"note": "跨窗口协办"}
    assert_problem(
        api.post(f"/projects/{p.id}/audit-notes", note, as_=GONGSHU_OFFICER), 403, "not_allowed"
    )
    api.write(
        p.id,
        "officers",
        {"officer": GONGSHU_OFFICER.sub, "name": GONGSHU_OFFICER.name, "role": "joint"},
    )
    assert api.view(p.id, as_=GONGSHU_OFFICER)["id"] == p.id
    api.write(p.id, "audit-notes", note, as_=GONGSHU_OFFICER)
    api.write(p.id, f"officers/{GONGSHU_OFFICER.sub}/release", {"reason": "协办结束"})
    assert_problem(
        api.post(f"/projects/{p.id}/audit-notes", note, as_=GONGSHU_OFFICER), 403, "not_allowed"
    )
    assert_problem(api.get(f"/projects/{p.id}", as_=GONGSHU_OFFICER), 403, "not_allowed")
