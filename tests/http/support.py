"""Helpers of the HTTP end-to-end tests: personas and their tokens, request bodies, a client
that acts as a persona, and the checks every problem response must pass."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import TestClient

from application.settings import Settings, load_settings
from domain.actor import Role
from domain.windows import Window
from interfaces.auth import issue_token
from tests import pg
from tests.conftest import CREDIT_CODE, START

#: Signs every token of the tests (at least 32 bytes for HS256).
SECRET = "ecocase-http-e2e-tests-secret-0123456789-abcdef"

#: The app's "today" (the ``clock`` fixture of tests/conftest.py): 2026-12-04, a Friday.
TODAY = START.date()

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Persona:
    """Who a request acts as: the claims of its token."""

    sub: str
    name: str
    role: Role
    unit: Window

    def as_actor_json(self) -> dict[str, str]:
        return {"sub": self.sub, "name": self.name, "role": str(self.role), "unit": str(self.unit)}


XIHU_OFFICER = Persona("officer-xihu-01", "王芳", Role.OFFICER, Window.XIHU)
XIHU_SUPERVISOR = Persona("supervisor-xihu-01", "刘洋", Role.SUPERVISOR, Window.XIHU)
XIHU_LEAD = Persona("officer-xihu-02", "张伟", Role.OFFICER, Window.XIHU)
GONGSHU_OFFICER = Persona("officer-gongshu-01", "陈刚", Role.OFFICER, Window.GONGSHU)
BINJIANG_SUPERVISOR = Persona("supervisor-binjiang-01", "周婷", Role.SUPERVISOR, Window.BINJIANG)
CITY_SUPERVISOR = Persona("supervisor-city-01", "孙丽", Role.SUPERVISOR, Window.CITY)
AUDITOR = Persona("auditor-city-01", "赵敏", Role.AUDITOR, Window.CITY)


@cache
def token_for(persona: Persona, hours: float = 12) -> str:
    return issue_token(
        SECRET,
        sub=persona.sub,
        name=persona.name,
        role=persona.role,
        unit=persona.unit,
        hours=hours,
    )


def settings_for(kind: str, data_dir: Path, schema: str | None = None) -> Settings:
    """Settings as the service loads them from its environment, for a store of ``kind``."""
    env = {
        "ECOCASE_STORE": kind,
        "ECOCASE_SECRET": SECRET,
        "ECOCASE_DATA_DIR": str(data_dir),
        "ECOCASE_LOG_FORMAT": "json",
    }
    if kind == "postgres":
        assert schema is not None, "a PostgreSQL store needs a fresh schema"
        env |= {
            "POSTGRES_DBNAME": pg.DBNAME,
            "POSTGRES_HOST": pg.HOST,
            "POSTGRES_PORT": pg.PORT,
            "POSTGRES_USER": pg.USER,
            "POSTGRES_PASSWORD": pg.PASSWORD,
            "POSTGRES_SCHEMA": schema,
        }
    return load_settings(env)


_serial = itertools.count(100001)


def new_project_code() -> str:
    """A fresh, well-formed 项目代码."""
    return f"2024-330100-44-01-{next(_serial):06d}"


def project_body(
    project_code: str | None = None,
    *,
    window: Window | str = Window.XIHU,
    tiers: tuple[str, ...] = ("city_key", "qianxiang_wanyi"),
    name: str = "杭州湾新材料产业园一期工程",
) -> dict[str, Any]:
    """The body of POST /projects for a valid key project (major by default)."""
    return {
        "name": name,
        "project_code": project_code or new_project_code(),
        "builder": {
            "name": "杭州某新材料有限公司",
            "credit_code": CREDIT_CODE,
            "contact": {"name": "李四", "phone": "0571-85085326", "email": "lisi@example.cn"},
        },
        "window": str(window),
        "tiers": list(tiers),
        "industry": "新材料制造",
        "location": "杭州市西湖区三墩镇",
        "two_high_one_low": False,
    }


def letter_body(letter_no: str = "杭环温提〔2026〕1号", issues: int = 2) -> dict[str, Any]:
    kinds = [("key", "expert_review"), ("general", "site_inspection")]
    return {
        "letter_no": letter_no,
        "deadline": "2026-12-31",
        "issues": [
            {
                "severity": kinds[n % 2][0],
                "found_in": kinds[n % 2][1],
                "description": f"问题{n + 1}：环评报告书大气预测章节数据不完整",
                "requirement": f"要求{n + 1}：补充大气环境影响预测数据",
            }
            for n in range(issues)
        ],
    }


class Api:
    """The service through a TestClient, acting as a persona (a bearer token) and sending a
    fresh X-Request-ID with every request (``response.request.headers['X-Request-ID']``)."""

    def __init__(self, client: TestClient[Litestar]) -> None:
        self.client = client

    def request(
        self,
        method: str,
        path: str,
        *,
        as_: Persona | None = XIHU_OFFICER,
        json: object = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        sent = {"X-Request-ID": f"req-{uuid.uuid4().hex[:16]}"}
        if as_ is not None:
            sent["Authorization"] = f"Bearer {token_for(as_)}"
        sent |= headers or {}
        return self.client.request(method, path, json=json, params=params, headers=sent)

    def get(
        self,
        path: str,
        *,
        as_: Persona | None = XIHU_OFFICER,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return self.request("GET", path, as_=as_, params=params, headers=headers)

    def post(
        self,
        path: str,
        json: object,
        *,
        as_: Persona | None = XIHU_OFFICER,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return self.request("POST", path, as_=as_, json=json, headers=headers)

    # --- shortcuts that expect success ---------------------------------------------------
    def register(
        self,
        project_code: str | None = None,
        *,
        as_: Persona = XIHU_OFFICER,
        window: Window | str = Window.XIHU,
        tiers: tuple[str, ...] = ("city_key", "qianxiang_wanyi"),
    ) -> dict[str, Any]:
        r = self.post("/projects", project_body(project_code, window=window, tiers=tiers), as_=as_)
        assert r.status_code == 201, r.text
        view: dict[str, Any] = r.json()
        return view

    def write(
        self, project_id: str, path: str, json: object, *, as_: Persona = XIHU_OFFICER
    ) -> dict[str, Any]:
        r = self.post(f"/projects/{project_id}/{path}", json, as_=as_)
        assert r.status_code in (200, 201), f"{path}: {r.status_code} {r.text}"
        view: dict[str, Any] = r.json()
        assert r.headers["ETag"] == f'"{view["version"]}"'
        return view

    def view(self, project_id: str, *, as_: Persona = XIHU_OFFICER) -> dict[str, Any]:
        r = self.get(f"/projects/{project_id}", as_=as_)
        assert r.status_code == 200, r.text
        view: dict[str, Any] = r.json()
        return view

    def history(self, project_id: str, *, as_: Persona = AUDITOR) -> list[dict[str, Any]]:
        r = self.get(f"/projects/{project_id}/history", as_=as_)
        assert r.status_code == 200, r.text
        events: list[dict[str, Any]] = r.json()["events"]
        return events


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None, *, field: str | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem of ``status`` (and ``code``; ``field`` named for a 400)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    for key in ("status", "title", "detail", "code"):
        assert body.get(key), f"problem without {key}: {body}"
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    if field is not None:
        assert body["field"] == field, body
        assert body["errors"][0]["field"] == field, body
    sent = response.request.headers.get("X-Request-ID")
    if sent is not None:
        assert body["request_id"] == sent == response.headers["X-Request-ID"]
    return body


@dataclass(frozen=True)
class Populated:
    """A major project of the Xihu window with one of everything (ids as the view gives them)."""

    id: str
    version: int
    check_id: str
    officer: str
    helper: str
    material_id: str
    letter_id: str
    issue_ids: tuple[str, str]


def populate(api: Api, project_code: str | None = None) -> Populated:
    """Registers a major Xihu project and records one of each act on it (as XIHU_OFFICER)."""
    pid = api.register(project_code)["id"]
    api.write(pid, "early-intervention", {"stage": "approval", "guidance": "指导环评编制"})
    view = api.write(pid, "progress-checks", {"due_on": "2026-12-18"})
    check_id = view["progress_checks"][0]["id"]
    api.write(pid, "officers", {"officer": XIHU_LEAD.sub, "name": XIHU_LEAD.name, "role": "lead"})
    api.write(
        pid, "helpers", {"helper": "helper-01", "name": "吴强", "reason": "complex_situation"}
    )
    view = api.write(
        pid,
        "deferred-materials",
        {
            "material": "取水许可批复",
            "department": "市林水局",
            "reason": "other_department_permit",
            "promised_by": "2026-12-20",
        },
    )
    material_id = view["deferred_materials"][0]["id"]
    view = api.write(pid, "reminder-letters", letter_body())
    letter = view["reminder_letters"][0]
    return Populated(
        id=pid,
        version=view["version"],
        check_id=check_id,
        officer=XIHU_LEAD.sub,
        helper="helper-01",
        material_id=material_id,
        letter_id=letter["id"],
        issue_ids=(letter["issues"][0]["id"], letter["issues"][1]["id"]),
    )


def every_write(p: Populated) -> list[tuple[str, dict[str, Any]]]:
    """Every write endpoint of a project (path, valid body) on the resources of ``p``."""
    base = f"/projects/{p.id}"
    issue = f"{base}/reminder-letters/{p.letter_id}/issues/{p.issue_ids[0]}"
    return [
        (f"{base}/early-intervention", {"stage": "feasibility", "guidance": "再次指导"}),
        (f"{base}/progress-checks", {"due_on": "2026-12-25"}),
        (f"{base}/progress-checks/{p.check_id}/outcome", {"summary": "按期推进"}),
        (f"{base}/officers", {"officer": "officer-new", "name": "新人", "role": "joint"}),
        (f"{base}/officers/{p.officer}/release", {"reason": "岗位调整"}),
        (
            f"{base}/officers/{p.officer}/hand-over",
            {"to_officer": "officer-next", "name": "接任", "reason": "调岗"},
        ),
        (f"{base}/helpers", {"helper": "helper-02", "name": "郑华", "reason": "legacy_issues"}),
        (
            f"{base}/helper-visits",
            {
                "helper": p.helper,
                "visited_on": TODAY.isoformat(),
                "kind": "guidance",
                "findings": "现场指导",
            },
        ),
        (
            f"{base}/deferred-materials",
            {
                "material": "排水许可",
                "department": "市城管局",
                "reason": "not_decisive",
                "promised_by": "2026-12-28",
            },
        ),
        (f"{base}/deferred-materials/{p.material_id}/supplied", {}),
        (f"{base}/reminder-letters", letter_body("杭环温提〔2026〕99号", issues=1)),
        (f"{issue}/rectification", {"summary": "已整改", "evidence": ["现场照片.jpg"]}),
        (f"{issue}/accept", {}),
        (f"{issue}/return", {"reason": "证据不足"}),
        (f"{base}/reminder-letters/{p.letter_id}/close", {}),
        (f"{base}/violations", {"description": "未批先建"}),
        (f"{base}/close", {"summary": "结案"}),
        (f"{base}/audit-notes", {"note": "审计抽查"}),
    ]
