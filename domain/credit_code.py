"""Unified social credit code (统一社会信用代码) validation per GB 32100-2015.

Layout of the 18 characters (1-based positions):

- 1: registration-authority code (登记管理部门代码)
- 2: organisation category (机构类别代码); any charset character is accepted
- 3-8: administrative division code (登记管理机关行政区划码), six digits
- 9-17: organisation code (主体标识码); its own GB 11714 check is not enforced
- 18: check character over positions 1-17
"""

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
AUTHORITY_CODES = frozenset("123456789ANY")
CODE_LENGTH = 18
_DIVISION_START, _DIVISION_END = 3, 8  # 1-based, inclusive


class InvalidCreditCode(ValueError):  # noqa: N818 -- public name fixed by the domain API
    """A credit code that breaks GB 32100-2015; `reason` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _check_charset(value: str) -> None:
    for position, char in enumerate(value, start=1):
        if char not in CHARSET:
            raise InvalidCreditCode(f"character {char!r} at position {position} is not allowed")


def credit_check_character(first17: str) -> str:
    """Return the check character (position 18) for the first 17 characters."""
    if len(first17) != CODE_LENGTH - 1:
        raise InvalidCreditCode(f"check needs 17 characters, got {len(first17)}")
    _check_charset(first17)
    total = sum(CHARSET.index(char) * weight for char, weight in zip(first17, WEIGHTS, strict=True))
    return CHARSET[(31 - total % 31) % 31]


def validate_credit_code(value: str) -> str:
    """Return the normalised (stripped, upper-cased) code or raise InvalidCreditCode."""
    code = value.strip().upper()
    if len(code) != CODE_LENGTH:
        raise InvalidCreditCode(f"must be {CODE_LENGTH} characters, got {len(code)}")
    _check_charset(code)
    if code[0] not in AUTHORITY_CODES:
        raise InvalidCreditCode(f"registration authority code {code[0]!r} is not defined")
    for position in range(_DIVISION_START, _DIVISION_END + 1):
        if not code[position - 1].isdigit():
            raise InvalidCreditCode(
                f"character {code[position - 1]!r} at position {position} must be a digit"
                " (administrative division code)"
            )
    expected = credit_check_character(code[:17])
    if code[17] != expected:
        raise InvalidCreditCode(f"check character should be {expected!r}, got {code[17]!r}")
    return code
