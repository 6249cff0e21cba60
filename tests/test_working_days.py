"""Tests for PRC working-day arithmetic."""

from datetime import date, timedelta

import pytest

from domain.working_days import (
    add_working_days,
    calendar_covers,
    is_working_day,
    working_days_between,
)

NATIONAL_DAY_2024 = [date(2024, 10, d) for d in range(1, 8)]
SPRING_FESTIVAL_2025 = [date(2025, 1, 28) + timedelta(days=i) for i in range(8)]  # 01-28..02-04


@pytest.mark.parametrize("day", NATIONAL_DAY_2024)
def test_national_day_2024_holiday_is_not_working_day(day: date) -> None:
    assert not is_working_day(day)


@pytest.mark.parametrize("day", [date(2024, 9, 29), date(2024, 10, 12)])
def test_adjusted_working_weekend_counts_as_working_day(day: date) -> None:
    assert day.weekday() >= 5
    assert is_working_day(day)


def test_plain_sunday_after_adjusted_saturday_is_not_working_day() -> None:
    assert not is_working_day(date(2024, 10, 13))


def test_one_working_day_after_eve_of_national_day_skips_whole_holiday() -> None:
    assert add_working_days(date(2024, 9, 30), 1) == date(2024, 10, 8)


def test_adding_from_friday_lands_on_adjusted_working_sunday() -> None:
    assert add_working_days(date(2024, 9, 27), 1) == date(2024, 9, 29)


def test_adding_after_national_day_lands_on_adjusted_working_saturday() -> None:
    assert add_working_days(date(2024, 9, 30), 5) == date(2024, 10, 12)


def test_national_day_week_counts_only_adjusted_sunday_and_eve() -> None:
    # (09-28, 10-07]: working days are Sunday 09-29 and Monday 09-30.
    assert working_days_between(date(2024, 9, 28), date(2024, 10, 7)) == 2


@pytest.mark.parametrize("day", SPRING_FESTIVAL_2025)
def test_spring_festival_2025_holiday_is_not_working_day(day: date) -> None:
    assert not is_working_day(day)


@pytest.mark.parametrize("day", [date(2025, 1, 26), date(2025, 2, 8)])
def test_spring_festival_2025_adjusted_weekend_is_working_day(day: date) -> None:
    assert is_working_day(day)


def test_one_working_day_before_spring_festival_2025_lands_after_it() -> None:
    assert add_working_days(date(2025, 1, 27), 1) == date(2025, 2, 5)


def test_spring_festival_2025_span_counts_adjusted_weekends() -> None:
    # (01-24, 02-09]: 01-26, 01-27, 02-05, 02-06, 02-07 and 02-08.
    assert working_days_between(date(2025, 1, 24), date(2025, 2, 9)) == 6


def test_plain_week_has_five_working_days() -> None:
    assert working_days_between(date(2024, 11, 3), date(2024, 11, 10)) == 5


def test_plain_week_adding_skips_weekend() -> None:
    assert add_working_days(date(2024, 11, 4), 4) == date(2024, 11, 8)
    assert add_working_days(date(2024, 11, 8), 1) == date(2024, 11, 11)


def test_zero_working_days_on_holiday_gives_next_working_day() -> None:
    assert add_working_days(date(2024, 10, 1), 0) == date(2024, 10, 8)


def test_zero_working_days_on_plain_weekend_gives_monday() -> None:
    assert add_working_days(date(2024, 11, 9), 0) == date(2024, 11, 11)


@pytest.mark.parametrize("day", [date(2024, 11, 4), date(2024, 10, 12)])
def test_zero_working_days_on_working_day_gives_same_day(day: date) -> None:
    assert add_working_days(day, 0) == day


def test_negative_working_days_are_rejected() -> None:
    with pytest.raises(ValueError, match="n must be >= 0, got -1"):
        add_working_days(date(2024, 11, 4), -1)


def test_between_same_day_is_zero() -> None:
    assert working_days_between(date(2024, 11, 4), date(2024, 11, 4)) == 0


def test_between_end_before_start_is_zero() -> None:
    assert working_days_between(date(2024, 11, 8), date(2024, 11, 4)) == 0


def test_between_excludes_start_working_day() -> None:
    assert working_days_between(date(2024, 11, 4), date(2024, 11, 5)) == 1


def test_between_includes_end_working_day() -> None:
    assert working_days_between(date(2024, 11, 3), date(2024, 11, 4)) == 1


def test_between_ending_on_holiday_does_not_count_it() -> None:
    assert working_days_between(date(2024, 9, 30), date(2024, 10, 1)) == 0


@pytest.mark.parametrize("start", [date(2024, 9, 27), date(2024, 10, 1), date(2025, 1, 25)])
@pytest.mark.parametrize("n", [1, 5, 20])
def test_between_start_and_deadline_equals_positive_working_days_added(start: date, n: int) -> None:
    deadline = add_working_days(start, n)
    assert is_working_day(deadline)
    assert working_days_between(start, deadline) == n


def test_calendar_covers_first_supported_year_but_not_the_one_before() -> None:
    assert calendar_covers(date(2004, 1, 1))
    assert not calendar_covers(date(2003, 12, 31))


def test_calendar_covers_last_supported_year_but_not_the_one_after() -> None:
    # chinese_calendar 1.11.0 (pinned in requirements/*.lock) has data up to 2026.
    assert calendar_covers(date(2026, 12, 31))
    assert not calendar_covers(date(2027, 1, 1))


def test_calendar_does_not_cover_2099() -> None:
    assert not calendar_covers(date(2099, 1, 1))


def test_fallback_year_treats_weekdays_as_working_even_on_new_year() -> None:
    assert is_working_day(date(2099, 1, 1))  # a Thursday; holidays are unknown in 2099


def test_fallback_year_treats_weekends_as_not_working() -> None:
    assert not is_working_day(date(2099, 1, 3))  # Saturday
    assert not is_working_day(date(2099, 1, 4))  # Sunday


def test_fallback_year_adding_skips_weekend() -> None:
    assert add_working_days(date(2099, 1, 2), 1) == date(2099, 1, 5)
    assert add_working_days(date(2099, 1, 3), 0) == date(2099, 1, 5)


def test_fallback_year_week_has_five_working_days() -> None:
    assert working_days_between(date(2099, 1, 4), date(2099, 1, 11)) == 5


def test_fallback_year_before_coverage_uses_weekdays() -> None:
    assert is_working_day(date(2003, 12, 31))  # Wednesday
    assert not is_working_day(date(2003, 12, 27))  # Saturday


def test_adding_crosses_from_covered_year_into_fallback_year() -> None:
    assert add_working_days(date(2026, 12, 31), 1) == date(2027, 1, 1)  # Friday under fallback
