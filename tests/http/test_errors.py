"""Every error status of API.md as an RFC 9457 problem with a stable code: 400 (the field
named), 401, 404, 409 and 412. (403 is in test_access.py.)"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from tests.http.support import (
    SECRET,
    XIHU_LEAD,
    XIHU_OFFICER,
    Api,
    assert_problem,
    letter_body,
    new_project_code,
    populate,
    project_body,
    token_for,
)

# --- 400 ------------------------------------------------------------------------------------


def _with(body: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """``body`` with the dotted ``path`` set to ``value`` (a fresh copy)."""
    copy: dict[str, Any] = {**body, "builder": {**body["builder"]}}
    target = copy
    *parents, last = path.split(".")
    for key in parents:
        target = target[key]
    target[last] = value
    return copy


def _without(body: dict[str, Any], path: str) -> dict[str, Any]:
    copy: dict[str, Any] = {**body, "builder": {**body["builder"]}}
    target = copy
    *parents, last = path.split(".")
    for key in parents:
        target = target[key]
    del target[last]
    return copy


BODY = project_body("2024-330100-44-01-000001")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(
            _with(BODY, "builder.credit_code", "91330100716105852A"),
            "builder.credit_code",
            id="bad-credit-code-check-character",
        ),
        pytest.param(
            _with(BODY, "builder.credit_code", "9133010071610585"),
            "builder.credit_code",
            id="short-credit-code",
        ),
        pytest.param(_with(BODY, "tiers", ["city_key_x"]), "tiers[0]", id="bad-enum"),
        pytest.param(
            _with(BODY, "tiers", ["city_key", "county_key"]), "tiers[1]", id="bad-enum-second"
        ),
        pytest.param(_with(BODY, "window", "hangzhou"), "window", id="bad-window"),
        pytest.param(_with(BODY, "tiers", []), "tiers", id="no-tier"),
        pytest.param(_with(BODY, "project_code", "2024-33-1"), "project_code", id="bad-code"),
        pytest.param(_with(BODY, "name", "   "), "name", id="blank-name"),
        pytest.param(_with(BODY, "two_high_one_low", "yes"), "two_high_one_low", id="bad-bool"),
        pytest.param({**BODY, "priority": "high"}, "priority", id="unknown-field"),
        pytest.param(
            _with(BODY, "builder.nickname", "阿里"), "builder.nickname", id="unknown-nested-field"
        ),
        pytest.param(_without(BODY, "name"), "name", id="missing-field"),
        pytest.param(
            _without(BODY, "builder.credit_code"),
            "builder.credit_code",
            id="missing-nested-field",
        ),
        pytest.param(
            _with(BODY, "builder.contact", {"name": "李四", "phone": "x", "email": "a@b.cn"}),
            "builder.contact.phone",
            id="bad-phone",
        ),
    ],
)
def test_register_refuses_invalid_input_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(api.post("/projects", body), 400, "invalid_input", field=field)
    assert field in problem["detail"]
    assert api.get("/health", as_=None).json()["store"]["max_notification_id"] == 0


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        pytest.param("progress-checks", {"due_on": "2026-13-45"}, "due_on", id="malformed-date"),
        pytest.param("progress-checks", {"due_on": "04/12/2026"}, "due_on", id="foreign-date"),
        pytest.param("progress-checks", {"due_on": "2026-12-01"}, "due_on", id="past-date"),
        pytest.param(
            "deferred-materials",
            {"material": "m", "department": "d", "reason": "other", "promised_by": "2026-12-20"},
            "reason",
            id="bad-reason",
        ),
        pytest.param(
            "reminder-letters",
            {**letter_body(), "issues": [{**letter_body()["issues"][0], "severity": "minor"}]},
            "issues[0].severity",
            id="bad-nested-enum",
        ),
        pytest.param(
            "reminder-letters", {**letter_body(), "deadline": "2026-12-04"}, "deadline", id="due"
        ),
        pytest.param("early-intervention", {"stage": "approval"}, "guidance", id="missing"),
        pytest.param(
            "early-intervention",
            {"stage": "approval", "guidance": "g", "extra": 1},
            "extra",
            id="unknown",
        ),
        pytest.param("helpers", {"helper": "h", "name": "n", "reason": "x"}, "reason", id="enum"),
    ],
)
def test_write_refuses_invalid_input_naming_the_field(
    api: Api, path: str, body: dict[str, Any], field: str
) -> None:
    pid = api.register()["id"]
    if path == "progress-checks":
        api.write(pid, "early-intervention", {"stage": "approval", "guidance": "g"})
    before = api.view(pid)["version"]
    r = api.post(f"/projects/{pid}/{path}", body)
    assert_problem(r, 400, "invalid_input", field=field)
    assert api.view(pid)["version"] == before


@pytest.mark.parametrize("if_match", ["abc", '"seven"', "1,2", '"-1"'])
def test_bad_if_match_value_is_400_naming_if_match(api: Api, if_match: str) -> None:
    pid = api.register()["id"]
    r = api.post(f"/projects/{pid}/audit-notes", {"note": "n"}, headers={"If-Match": if_match})
    assert_problem(r, 400, "invalid_input", field="If-Match")
    assert api.view(pid)["version"] == 1


def test_malformed_json_is_a_400_problem(api: Api) -> None:
    r = api.request(
        "POST",
        "/projects",
        headers={"Content-Type": "application/json"},
        json=None,
    )
    assert_problem(r, 400)
    r = api.client.post(
        "/projects",
        content=b'{"name": ',
        headers={
            "Authorization": f"Bearer {token_for(XIHU_OFFICER)}",
            "Content-Type": "application/json",
        },
    )
    assert_problem(r, 400)


# --- 401 ------------------------------------------------------------------------------------


def _token(secret: str = SECRET, *, hours: float = 1, **claims: str) -> str:
    """A JWT signed with ``secret``; claims default to a valid Xihu officer ("" drops one)."""
    now = datetime.now(tz=UTC)
    payload: dict[str, Any] = {
        "sub": "officer-xihu-01",
        "name": "王芳",
        "role": "officer",
        "unit": "xihu",
        "iat": int((now - timedelta(hours=2)).timestamp()),
        "exp": int((now + timedelta(hours=hours)).timestamp()),
    } | claims
    return jwt.encode({k: v for k, v in payload.items() if v}, secret, algorithm="HS256")


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing-token"),
        pytest.param("Bearer", id="empty-bearer"),
        pytest.param("Bearer not.a.jwt", id="garbage"),
        pytest.param("Basic b2ZmaWNlcjpzZWNyZXQ=", id="basic-auth"),
        pytest.param(f"Bearer {_token('another-secret-of-at-least-32-bytes!!')}", id="bad-sig"),
        pytest.param(f"Bearer {_token(hours=-1)}", id="expired"),
        pytest.param(f"Bearer {_token(role='janitor')}", id="unknown-role"),
        pytest.param(f"Bearer {_token(unit='shanghai')}", id="unknown-unit"),
        pytest.param(f"Bearer {_token(sub='')}", id="no-sub"),
        pytest.param(f"Bearer {_token(name='')}", id="no-name"),
        pytest.param(f"Bearer {_token(role='')}", id="no-role"),
        pytest.param(f"Bearer {_token(unit='')}", id="no-unit"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/projects"), ("POST", "/projects"), ("GET", "/windows")],
)
def test_missing_or_invalid_token_is_401(
    api: Api, authorization: str | None, method: str, path: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    r = api.request(
        method, path, as_=None, headers=headers, json=project_body() if method == "POST" else None
    )
    assert_problem(r, 401, "not_authenticated")
    assert api.get("/health", as_=None).json()["store"]["max_notification_id"] == 0


def test_a_token_the_service_signed_is_accepted(api: Api) -> None:
    r = api.get("/projects", as_=None, headers={"Authorization": f"Bearer {_token()}"})
    assert r.status_code == 200, r.text


def test_a_write_of_an_unauthenticated_request_on_a_project_is_401_and_not_recorded(
    api: Api,
) -> None:
    pid = api.register()["id"]
    r = api.post(f"/projects/{pid}/audit-notes", {"note": "n"}, as_=None)
    assert_problem(r, 401, "not_authenticated")
    r = api.post(
        f"/projects/{pid}/audit-notes",
        {"note": "n"},
        as_=None,
        headers={"Authorization": f"Bearer {_token(hours=-1)}"},
    )
    assert_problem(r, 401, "not_authenticated")
    assert api.view(pid)["version"] == 1


# --- 404 ------------------------------------------------------------------------------------


def test_unknown_project_is_404_project_not_found(api: Api) -> None:
    unknown = uuid.uuid4()
    assert_problem(api.get(f"/projects/{unknown}"), 404, "project_not_found")
    assert_problem(api.get(f"/projects/{unknown}/history"), 404, "project_not_found")
    r = api.post(f"/projects/{unknown}/audit-notes", {"note": "n"})
    assert_problem(r, 404, "project_not_found")
    assert_problem(api.get("/projects/not-a-uuid"), 404, "not_found")


def test_unknown_letter_issue_material_check_and_officer_are_404_with_their_codes(
    api: Api,
) -> None:
    p = populate(api)
    base = f"/projects/{p.id}"
    issue = f"{base}/reminder-letters/{p.letter_id}/issues"
    cases: list[tuple[str, dict[str, Any], str]] = [
        (f"{base}/reminder-letters/L99/close", {}, "letter_not_found"),
        (
            f"{base}/reminder-letters/L99/issues/{p.issue_ids[0]}/rectification",
            {"summary": "s"},
            "letter_not_found",
        ),
        (f"{issue}/{p.letter_id}-I99/rectification", {"summary": "s"}, "issue_not_found"),
        (f"{issue}/{p.letter_id}-I99/accept", {}, "issue_not_found"),
        (f"{issue}/{p.letter_id}-I99/return", {"reason": "r"}, "issue_not_found"),
        (f"{base}/deferred-materials/M99/supplied", {}, "material_not_found"),
        (f"{base}/progress-checks/C99/outcome", {"summary": "s"}, "progress_check_not_found"),
        (f"{base}/officers/nobody/release", {"reason": "r"}, "officer_not_found"),
        (f"{base}/violations", {"description": "d", "letter_id": "L99"}, "letter_not_found"),
    ]
    for path, body, code in cases:
        assert_problem(api.post(path, body), 404, code)
    assert api.view(p.id)["version"] == p.version


# --- 409 ------------------------------------------------------------------------------------


def test_district_only_project_is_refused_the_major_measures(api: Api) -> None:
    pid = api.register(tiers=("district_key",))["id"]
    refused: list[tuple[str, dict[str, Any]]] = [
        ("early-intervention", {"stage": "feasibility", "guidance": "g"}),
        ("officers", {"officer": XIHU_LEAD.sub, "name": XIHU_LEAD.name, "role": "lead"}),
        ("helpers", {"helper": "helper-01", "name": "吴强", "reason": "legacy_issues"}),
        ("progress-checks", {"due_on": "2026-12-18"}),
    ]
    for path, body in refused:
        problem = assert_problem(
            api.post(f"/projects/{pid}/{path}", body), 409, "not_major_project"
        )
        assert "district_key" in problem["detail"]
    assert api.view(pid)["version"] == 1
    # a key project still gets deficiency-tolerant acceptance and reminder letters
    api.write(
        pid,
        "deferred-materials",
        {"material": "m", "department": "d", "reason": "not_decisive", "promised_by": "2026-12-09"},
    )
    api.write(pid, "reminder-letters", letter_body())


def test_second_active_lead_is_409_lead_already_assigned(api: Api) -> None:
    p = populate(api)  # XIHU_LEAD is the lead
    r = api.post(
        f"/projects/{p.id}/officers", {"officer": "officer-xihu-03", "name": "钱多", "role": "lead"}
    )
    assert_problem(r, 409, "lead_already_assigned")
    api.write(p.id, f"officers/{XIHU_LEAD.sub}/release", {"reason": "交接"})
    api.write(p.id, "officers", {"officer": "officer-xihu-03", "name": "钱多", "role": "lead"})


def test_closing_a_letter_with_open_issues_is_409_letter_has_open_issues(api: Api) -> None:
    p = populate(api)
    issue = f"reminder-letters/{p.letter_id}/issues/{p.issue_ids[0]}"
    api.write(p.id, f"{issue}/rectification", {"summary": "已整改"})
    api.write(p.id, f"{issue}/accept", {})
    problem = assert_problem(
        api.post(f"/projects/{p.id}/reminder-letters/{p.letter_id}/close", {}),
        409,
        "letter_has_open_issues",
    )
    assert p.issue_ids[1] in problem["detail"]
    assert_problem(
        api.post(f"/projects/{p.id}/close", {"summary": "结案"}), 409, "project_has_open_letters"
    )


def test_registering_a_project_code_twice_is_409_duplicate_project_code(api: Api) -> None:
    code = new_project_code()
    first = api.register(code)
    r = api.post("/projects", project_body(code, name="另一个名字"))
    assert_problem(r, 409, "duplicate_project_code")
    assert api.view(first["id"])["name"] == first["name"]
    assert len(api.history(first["id"])) == 1


def test_writing_to_a_closed_project_is_409_project_closed(api: Api) -> None:
    pid = api.register()["id"]
    api.write(pid, "close", {"summary": "结案"})
    assert_problem(
        api.post(f"/projects/{pid}/violations", {"description": "d"}), 409, "project_closed"
    )
    assert_problem(api.post(f"/projects/{pid}/close", {"summary": "again"}), 409, "project_closed")
    r = api.post(f"/projects/{pid}/audit-notes", {"note": "审计"})
    assert r.status_code == 201, r.text


# --- 412 ------------------------------------------------------------------------------------


def test_stale_if_match_is_412_and_nothing_is_recorded(api: Api) -> None:
    pid = api.register()["id"]
    api.write(pid, "audit-notes", {"note": "one"})
    r = api.post(f"/projects/{pid}/audit-notes", {"note": "two"}, headers={"If-Match": '"1"'})
    problem = assert_problem(r, 412, "version_mismatch")
    assert "2" in problem["detail"]
    view = api.view(pid)
    assert view["version"] == 2
    assert [n["note"] for n in view["audit_notes"]] == ["one"]


@pytest.mark.parametrize("if_match", ['"{v}"', "{v}", 'W/"{v}"', "*"])
def test_matching_if_match_applies_the_write(api: Api, if_match: str) -> None:
    pid = api.register()["id"]
    r = api.get(f"/projects/{pid}")
    etag = r.headers["ETag"]
    assert etag == '"1"'
    header = if_match.format(v=etag.strip('"'))
    r = api.post(f"/projects/{pid}/audit-notes", {"note": "n"}, headers={"If-Match": header})
    assert r.status_code == 201, r.text
    assert r.headers["ETag"] == '"2"'


def test_if_match_guards_every_kind_of_write(api: Api) -> None:
    p = populate(api)
    stale = {"If-Match": f'"{p.version - 1}"'}
    base = f"/projects/{p.id}"
    issue = f"{base}/reminder-letters/{p.letter_id}/issues/{p.issue_ids[0]}"
    for path, body in [
        (f"{base}/violations", {"description": "d"}),
        (f"{issue}/rectification", {"summary": "s"}),
        (f"{base}/officers/{XIHU_LEAD.sub}/release", {"reason": "r"}),
        (f"{base}/close", {"summary": "s"}),
    ]:
        assert_problem(api.post(path, body, headers=stale), 412, "version_mismatch")
    assert api.view(p.id)["version"] == p.version
    current = {"If-Match": f'"{p.version}"'}
    r = api.post(f"{issue}/rectification", {"summary": "s"}, headers=current)
    assert r.status_code == 200, r.text
