"""The diff of two project views: paths, matching by id, inserted and removed items."""

from __future__ import annotations

from interfaces.diff import Change, diff


def test_equal_values_have_no_changes() -> None:
    assert diff({"a": [1, {"id": "x", "v": 1}]}, {"a": [1, {"id": "x", "v": 1}]}) == []


def test_changed_field_is_named_by_its_path() -> None:
    assert diff({"status": "open", "n": 1}, {"status": "closed", "n": 1}) == [
        Change("status", "open", "closed")
    ]


def test_items_with_ids_are_matched_by_id_not_position() -> None:
    before = {"letters": [{"id": "L1", "status": "open"}]}
    after = {"letters": [{"id": "L2", "status": "open"}, {"id": "L1", "status": "closed"}]}
    assert diff(before, after) == [
        Change("letters[L1].status", "open", "closed"),
        Change("letters[L2]", None, {"id": "L2", "status": "open"}),
    ]


def test_lists_of_plain_values_of_other_length_change_as_a_whole() -> None:
    assert diff({"tiers": ["city_key"]}, {"tiers": ["city_key", "provincial_key"]}) == [
        Change("tiers", ["city_key"], ["city_key", "provincial_key"])
    ]
