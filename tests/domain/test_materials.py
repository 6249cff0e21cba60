"""Deficiency-tolerant acceptance (容缺办理): deferred materials and their supply."""

from __future__ import annotations

from datetime import date

import pytest

from domain import errors
from domain.materials import DeferralReason, DeferredMaterial, MaterialStatus
from tests.domain.factory import (
    IN_A_MONTH,
    TODAY,
    TOMORROW,
    YESTERDAY,
    assert_invalid,
    assert_refused,
    major_project,
    with_material,
)


@pytest.mark.parametrize("promised_by", [TODAY, TOMORROW], ids=["today", "tomorrow"])
def test_material_promised_today_or_later_is_deferred(promised_by: date) -> None:
    project = major_project()
    material_id = project.defer_material(
        material=" 规划许可证 ",
        department=" 市规划和自然资源局 ",
        reason=DeferralReason.OTHER_DEPARTMENT_PERMIT,
        promised_by=promised_by,
        today=TODAY,
    )
    assert material_id == "M1"
    assert project.deferred_materials == {
        "M1": DeferredMaterial(
            "M1",
            "规划许可证",
            "市规划和自然资源局",
            DeferralReason.OTHER_DEPARTMENT_PERMIT,
            promised_by,
            TODAY,
        )
    }
    assert project.deferred_materials["M1"].status is MaterialStatus.DEFERRED
    assert [type(e).__name__ for e in project.collect_events()] == ["MaterialDeferred"]


def test_material_promised_yesterday_is_refused() -> None:
    project = major_project()
    assert_invalid(
        project,
        "promised_by",
        lambda: project.defer_material(
            material="规划许可证",
            department="市规划和自然资源局",
            reason=DeferralReason.OTHER_DEPARTMENT_PERMIT,
            promised_by=YESTERDAY,
            today=TODAY,
        ),
    )


@pytest.mark.parametrize("reason", list(DeferralReason))
def test_material_is_deferred_for_each_reason(reason: DeferralReason) -> None:
    project = major_project()
    project.defer_material(
        material="材料", department="部门", reason=reason, promised_by=IN_A_MONTH, today=TODAY
    )
    assert project.deferred_materials["M1"].reason is reason


def test_deferred_materials_are_numbered_in_order() -> None:
    project = with_material()
    second = project.defer_material(
        material="水土保持方案批复",
        department="市林水局",
        reason=DeferralReason.NOT_DECISIVE,
        promised_by=IN_A_MONTH,
        today=TODAY,
    )
    assert second == "M2"
    assert list(project.deferred_materials) == ["M1", "M2"]


@pytest.mark.parametrize(
    ("material", "department", "field"), [(" ", "部门", "material"), ("材料", "", "department")]
)
def test_deferral_without_material_or_department_is_refused(
    material: str, department: str, field: str
) -> None:
    project = major_project()
    assert_invalid(
        project,
        field,
        lambda: project.defer_material(
            material=material,
            department=department,
            reason=DeferralReason.NOT_DECISIVE,
            promised_by=IN_A_MONTH,
            today=TODAY,
        ),
    )


def test_supplied_material_is_marked_with_date_and_note() -> None:
    project = with_material()
    project.supply_material(material_id="M1", note=" 原件已核 ", today=TOMORROW)
    material = project.deferred_materials["M1"]
    assert material.status is MaterialStatus.SUPPLIED
    assert material.supplied_on == TOMORROW
    assert material.note == "原件已核"
    assert material.promised_by == IN_A_MONTH
    assert [type(e).__name__ for e in project.collect_events()] == ["MaterialSupplied"]


@pytest.mark.parametrize("note", [None, "", "  "], ids=["none", "empty", "whitespace"])
def test_supply_without_note_records_none(note: str | None) -> None:
    project = with_material()
    project.supply_material(material_id="M1", note=note, today=TODAY)
    assert project.deferred_materials["M1"].note is None


def test_material_supplied_after_its_promised_date_is_still_recorded() -> None:
    project = with_material()
    late = date(2024, 12, 31)
    project.supply_material(material_id="M1", note=None, today=late)
    assert project.deferred_materials["M1"].supplied_on == late


def test_material_supplied_twice_is_refused() -> None:
    project = with_material()
    project.supply_material(material_id="M1", note=None, today=TODAY)
    project.collect_events()
    assert_refused(
        project,
        errors.MaterialAlreadySupplied,
        "material_already_supplied",
        lambda: project.supply_material(material_id="M1", note="再次", today=TOMORROW),
    )


def test_supply_of_an_unknown_material_is_refused() -> None:
    project = with_material()
    assert_refused(
        project,
        errors.MaterialNotFound,
        "material_not_found",
        lambda: project.supply_material(material_id="M9", note=None, today=TODAY),
    )
