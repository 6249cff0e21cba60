"""Registering a key project: its fields, the 项目代码 format, credit code, tiers, and id."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from domain import errors
from domain.builder import Builder, Contact
from domain.project import PROJECT_ID_NAMESPACE, KeyProject, ProjectStatus, project_id_for
from domain.tiers import Tier
from domain.windows import Window
from tests.domain.factory import (
    CREDIT_CODE,
    OTHER_PROJECT_CODE,
    PROJECT_CODE,
    builder,
    register,
)


def _refused(field: str, **kwargs: Any) -> None:
    with pytest.raises(errors.InvalidInput) as refused:
        register(**kwargs)
    assert refused.value.code == "invalid_input"
    assert refused.value.field == field


def test_registration_records_every_field_and_opens_the_case() -> None:
    project = register(
        Tier.CITY_KEY,
        Tier.QIANXIANG_WANYI,
        window=Window.XIAOSHAN,
        two_high_one_low=True,
    )
    assert project.name == "年产10万吨再生新材料项目"
    assert project.project_code == PROJECT_CODE
    assert project.builder == builder()
    assert project.window is Window.XIAOSHAN
    assert project.tiers == (Tier.CITY_KEY, Tier.QIANXIANG_WANYI)
    assert project.industry == "C2929 塑料零件及其他塑料制品制造"
    assert project.location == "杭州市西湖区三墩镇"
    assert project.two_high_one_low is True
    assert project.status == ProjectStatus.OPEN
    assert project.closed_on is None
    assert project.closing_summary is None
    assert project.early_intervention is None
    assert project.progress_checks == {}
    assert project.officers == ()
    assert project.helpers == {}
    assert project.helper_visits == ()
    assert project.deferred_materials == {}
    assert project.reminder_letters == {}
    assert project.violations == ()
    assert project.audit_notes == ()


def test_registration_is_one_registered_event_at_version_one() -> None:
    project = register()
    events = project.collect_events()
    assert project.version == 1
    assert [type(e) for e in events] == [KeyProject.Registered]
    assert events[0].originator_version == 1


def test_registration_without_two_high_one_low_flag_records_false() -> None:
    assert register(two_high_one_low=False).two_high_one_low is False


@pytest.mark.parametrize("tier", list(Tier))
def test_any_single_tier_registers_a_key_project(tier: Tier) -> None:
    project = register(tier)
    assert project.tiers == (tier,)
    assert project.is_key


def test_duplicate_tier_marks_are_collapsed_keeping_first_order() -> None:
    project = register(Tier.CITY_KEY, Tier.DISTRICT_KEY, Tier.CITY_KEY, Tier.DISTRICT_KEY)
    assert project.tiers == (Tier.CITY_KEY, Tier.DISTRICT_KEY)


def test_registration_without_tiers_is_refused_naming_tiers() -> None:
    with pytest.raises(errors.InvalidInput) as refused:
        KeyProject.register(
            name="项目",
            project_code=PROJECT_CODE,
            builder=builder(),
            window=Window.XIHU,
            tiers=(),
            industry="制造",
            location="杭州",
            two_high_one_low=False,
        )
    assert refused.value.code == "invalid_input"
    assert refused.value.field == "tiers"


# --- names and texts ------------------------------------------------------------------------
def test_names_and_texts_are_stripped() -> None:
    project = register(
        name="  年产10万吨再生新材料项目 ",
        construction_unit=builder(name=" 杭州绿源新材料有限公司\t"),
        industry=" 制造 ",
        location="\n杭州 ",
    )
    assert project.name == "年产10万吨再生新材料项目"
    assert project.builder.name == "杭州绿源新材料有限公司"
    assert project.industry == "制造"
    assert project.location == "杭州"


@pytest.mark.parametrize("name", ["", " ", "\t\n　"], ids=["empty", "space", "whitespace"])
def test_empty_or_whitespace_name_is_refused(name: str) -> None:
    _refused("name", name=name)


@pytest.mark.parametrize("name", ["", "   "], ids=["empty", "whitespace"])
def test_empty_builder_name_is_refused(name: str) -> None:
    _refused("builder.name", construction_unit=builder(name=name))


@pytest.mark.parametrize("field", ["industry", "location"])
def test_empty_industry_or_location_is_refused(field: str) -> None:
    _refused(field, **{field: "  "})


def test_single_character_name_is_accepted() -> None:
    assert register(name="厂").name == "厂"


# --- 项目代码 --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code",
    [
        "2024-330100-44-01-123456",
        "0000-000000-00-00-000000",
        "9999-999999-99-99-999999",
        "2019-330110-77-02-000001",
    ],
)
def test_project_code_in_the_platform_format_is_accepted(code: str) -> None:
    assert register(project_code=code).project_code == code


def test_project_code_is_stripped_of_surrounding_whitespace() -> None:
    assert register(project_code=f"  {PROJECT_CODE}\n").project_code == PROJECT_CODE


@pytest.mark.parametrize(
    "code",
    [
        "",
        "   ",
        "2024-330100-44-01-12345",  # serial one digit short
        "2024-330100-44-01-1234567",  # serial one digit long
        "202-330100-44-01-123456",  # year one digit short
        "20245-330100-44-01-123456",  # year one digit long
        "2024-33010-44-01-123456",  # division one digit short
        "2024-3301000-44-01-123456",  # division one digit long
        "2024-330100-4-01-123456",  # industry one digit short
        "2024-330100-444-01-123456",  # industry one digit long
        "2024-330100-44-1-123456",  # type one digit short
        "2024-330100-44-011-123456",  # type one digit long
        "2024/330100/44/01/123456",  # wrong separators
        "2024330100440112345",  # no separators
        "2024-330100-44-01-12345A",  # letter in the serial
        "X2024-330100-44-01-123456",  # leading garbage
        "2024-330100-44-01-123456-1",  # trailing garbage
        "2024-330100-44-01-123456\n1",  # a second line
        "2024 330100 44 01 123456",  # spaces as separators
        "２０２４-３３０１００-４４-０１-１２３４５６",  # full-width digits
        "٢٠٢٤-٣٣٠١٠٠-٤٤-٠١-١٢٣٤٥٦",  # Arabic-Indic digits
    ],
)
def test_project_code_not_in_the_platform_format_is_refused(code: str) -> None:
    _refused("project_code", project_code=code)


# --- 统一社会信用代码 -------------------------------------------------------------------------
def test_credit_code_is_normalised_to_upper_case() -> None:
    project = register(construction_unit=builder(credit_code=" 9144030071526726xg "))
    assert project.builder.credit_code == "9144030071526726XG"


def test_builder_contact_is_kept() -> None:
    project = register(
        construction_unit=Builder("杭州某公司", CREDIT_CODE, Contact("李", "13800000000", "a@b.cn"))
    )
    assert project.builder.contact == Contact("李", "13800000000", "a@b.cn")


def test_builder_without_contact_is_accepted() -> None:
    project = register(construction_unit=Builder("杭州某公司", CREDIT_CODE))
    assert project.builder.contact is None


@pytest.mark.parametrize(
    "credit_code",
    [
        "91330100716105852A",  # wrong check character
        "91330100716105852",  # 17 characters
        "91330100716105852FF",  # 19 characters
        "",
        "91330100716105852I",  # I is not in the charset
        "01330100716105852F",  # 0 is not a registration authority code
        "913A0100716105852F",  # letter in the division code
    ],
)
def test_bad_credit_code_is_refused_naming_builder_credit_code(credit_code: str) -> None:
    _refused("builder.credit_code", construction_unit=builder(credit_code=credit_code))


# --- the project id -------------------------------------------------------------------------
def test_project_id_is_derived_from_the_project_code() -> None:
    project = register()
    assert project.id == project_id_for(PROJECT_CODE)
    assert project.id == uuid.uuid5(PROJECT_ID_NAMESPACE, PROJECT_CODE)
    assert KeyProject.create_id(PROJECT_CODE) == project.id


def test_two_registrations_of_one_code_get_the_same_id() -> None:
    first = register(Tier.CITY_KEY, name="项目甲")
    second = register(Tier.DISTRICT_KEY, name="项目乙", window=Window.YUHANG)
    assert first.id == second.id


def test_surrounding_whitespace_does_not_change_the_id() -> None:
    assert register(project_code=f" {PROJECT_CODE} ").id == register().id


def test_different_codes_get_different_ids() -> None:
    assert register(project_code=OTHER_PROJECT_CODE).id != register().id
