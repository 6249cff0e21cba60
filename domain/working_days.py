"""PRC working-day arithmetic for rectification deadlines.

Working days follow `chinese_calendar`: statutory holidays are off and the
调休 weekends are working days. chinese_calendar 1.11.0 covers the years
2004-2026 (the range is read from the library, so an upgrade widens it).

Fallback: for dates outside the covered years, Monday to Friday are working
days and Saturday and Sunday are not; holidays and 调休 are not known there.
Use `calendar_covers` to tell the two cases apart.
"""

from datetime import date, timedelta
from functools import lru_cache

import chinese_calendar

_FIRST_YEAR: int = min(chinese_calendar.holidays).year
_LAST_YEAR: int = max(chinese_calendar.holidays).year
_ONE_DAY = timedelta(days=1)
_SATURDAY = 5


def calendar_covers(day: date) -> bool:
    """Whether chinese_calendar has holiday data for the year of `day`."""
    return _FIRST_YEAR <= day.year <= _LAST_YEAR


@lru_cache(maxsize=4096)
def is_working_day(day: date) -> bool:
    """Whether `day` is a working day (see the module docstring for the fallback)."""
    if calendar_covers(day):
        return bool(chinese_calendar.is_workday(day))
    return day.weekday() < _SATURDAY


def add_working_days(start: date, n: int) -> date:
    """The date n working days after `start` (not counted itself).

    With n == 0: `start` if it is a working day, else the next working day.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    day = start
    if n == 0:
        while not is_working_day(day):
            day += _ONE_DAY
        return day
    while n > 0:
        day += _ONE_DAY
        if is_working_day(day):
            n -= 1
    return day


def working_days_between(start: date, end: date) -> int:
    """The number of working days in (start, end]; 0 if end <= start."""
    count = 0
    day = start + _ONE_DAY
    while day <= end:
        if is_working_day(day):
            count += 1
        day += _ONE_DAY
    return count
