"""Tests for the GB 32100-2015 unified social credit code check."""

import pytest

from domain.credit_code import InvalidCreditCode, credit_check_character, validate_credit_code

# Widely published codes that also pass the check character computation.
PUBLISHED_CODES = [
    "91330100716105852F",  # 阿里巴巴（中国）有限公司
    "9144030071526726XG",  # 深圳市腾讯计算机系统有限公司
    "914403001922038216",  # 华为技术有限公司
    "91110000710925462X",  # 中国移动通信集团有限公司
]

# Prefixes whose weighted sum gives the two ends of the check range (sum mod 31 == 0 and == 1).
PREFIX_CHECK_ZERO = "91330106MA2000015"
PREFIX_CHECK_Y = "91330106MA2000005"


def _build(prefix: str) -> str:
    return prefix + credit_check_character(prefix)


@pytest.mark.parametrize("code", PUBLISHED_CODES)
def test_published_code_is_accepted(code: str) -> None:
    assert validate_credit_code(code) == code


def test_hand_computed_check_character_for_huawei() -> None:
    # Weighted sum of 91440300192203821 is 831; 831 mod 31 = 25; 31 - 25 = 6.
    assert credit_check_character("91440300192203821") == "6"


def test_weighted_sum_divisible_by_31_gives_check_zero() -> None:
    assert credit_check_character(PREFIX_CHECK_ZERO) == "0"


def test_weighted_sum_one_mod_31_gives_check_y() -> None:
    assert credit_check_character(PREFIX_CHECK_Y) == "Y"


@pytest.mark.parametrize("prefix", [PREFIX_CHECK_ZERO, PREFIX_CHECK_Y])
def test_code_built_from_prefix_is_accepted(prefix: str) -> None:
    code = _build(prefix)
    assert validate_credit_code(code) == code


def test_surrounding_whitespace_is_stripped_and_code_upper_cased() -> None:
    assert validate_credit_code("  9144030071526726xg\n") == "9144030071526726XG"


@pytest.mark.parametrize("authority", sorted("123456789ANY"))
def test_every_defined_registration_authority_code_is_accepted(authority: str) -> None:
    code = _build(authority + "1330106MA2000015")
    assert validate_credit_code(code) == code


def test_inner_organisation_code_check_is_not_enforced() -> None:
    # Huawei's organisation code is 19220382-1; with inner check "0" it breaks GB 11714.
    code = _build("91440300192203820")
    assert validate_credit_code(code) == code


@pytest.mark.parametrize("length", [0, 17, 19])
def test_wrong_length_is_rejected_with_actual_length(length: int) -> None:
    value = (_build(PREFIX_CHECK_ZERO) + "0")[:length]
    with pytest.raises(InvalidCreditCode, match=rf"must be 18 characters, got {length}$"):
        validate_credit_code(value)


def test_length_is_counted_after_stripping_whitespace() -> None:
    with pytest.raises(InvalidCreditCode, match=r"got 17$"):
        validate_credit_code(" " + _build(PREFIX_CHECK_ZERO)[:17] + " ")


@pytest.mark.parametrize(
    ("position", "char"),
    [(1, "I"), (5, "O"), (10, "Z"), (17, "S"), (18, "V"), (9, "-")],
)
def test_character_outside_charset_is_rejected_with_its_position(position: int, char: str) -> None:
    code = list(_build(PREFIX_CHECK_ZERO))
    code[position - 1] = char
    with pytest.raises(
        InvalidCreditCode, match=f"character '{char}' at position {position} is not allowed"
    ):
        validate_credit_code("".join(code))


def test_lower_case_forbidden_letter_is_rejected_after_upper_casing() -> None:
    with pytest.raises(InvalidCreditCode, match="character 'I' at position 11"):
        validate_credit_code("91330106MAi000015X")


@pytest.mark.parametrize("authority", ["0", "B", "X"])
def test_undefined_registration_authority_code_is_rejected(authority: str) -> None:
    code = _build(authority + "1330106MA2000015")
    with pytest.raises(InvalidCreditCode, match=f"authority code '{authority}' is not defined"):
        validate_credit_code(code)


@pytest.mark.parametrize("position", [3, 8])
def test_letter_in_division_code_is_rejected_at_both_edges(position: int) -> None:
    prefix = list(PREFIX_CHECK_ZERO)
    prefix[position - 1] = "A"
    code = _build("".join(prefix))
    with pytest.raises(InvalidCreditCode, match=f"'A' at position {position} must be a digit"):
        validate_credit_code(code)


@pytest.mark.parametrize(
    ("prefix", "expected", "wrong"),
    [(PREFIX_CHECK_ZERO, "0", "1"), (PREFIX_CHECK_ZERO, "0", "Y"), (PREFIX_CHECK_Y, "Y", "0")],
)
def test_wrong_check_character_is_rejected_with_expected_one(
    prefix: str, expected: str, wrong: str
) -> None:
    with pytest.raises(
        InvalidCreditCode, match=f"check character should be '{expected}', got '{wrong}'"
    ):
        validate_credit_code(prefix + wrong)


def test_unpublished_example_with_wrong_check_character_is_rejected() -> None:
    # "91330000MA27U0EQ1C" circulates as an example, but its check character computes to "2".
    with pytest.raises(InvalidCreditCode, match="should be '2', got 'C'"):
        validate_credit_code("91330000MA27U0EQ1C")


def test_invalid_credit_code_is_a_value_error_carrying_the_reason() -> None:
    with pytest.raises(ValueError, match="got 3") as excinfo:
        validate_credit_code("913")
    assert isinstance(excinfo.value, InvalidCreditCode)
    assert excinfo.value.reason == "must be 18 characters, got 3"


@pytest.mark.parametrize("first17", ["9133010671610585", "91330100716105852F"])
def test_check_character_needs_exactly_17_characters(first17: str) -> None:
    with pytest.raises(InvalidCreditCode, match=rf"got {len(first17)}$"):
        credit_check_character(first17)


def test_check_character_rejects_forbidden_character() -> None:
    with pytest.raises(InvalidCreditCode, match="character 'O' at position 17"):
        credit_check_character("9133010071610585O")
