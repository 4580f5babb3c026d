"""One caller, one key: every way of writing a number normalizes to the same E.164."""

import pytest

from app.domain.identity import InvalidCallerId, masked, normalize_caller_id


@pytest.mark.parametrize(
    "raw", ["(212) 555-0199", "+1 212 555 0199", "2125550199", "212.555.0199", "+12125550199"]
)
def test_phone_formats_are_one_caller(raw: str) -> None:
    assert normalize_caller_id(raw) == "+12125550199"


def test_international_numbers_keep_their_country() -> None:
    assert normalize_caller_id("+44 20 7946 0958") == "+442079460958"


def test_emails_are_trimmed_and_lower_cased() -> None:
    assert normalize_caller_id("  Dana.Lee@Example.COM ") == "dana.lee@example.com"


def test_device_ids_are_kept() -> None:
    assert normalize_caller_id(" ipad-7F3A ") == "ipad-7F3A"


def test_empty_id_is_refused() -> None:
    with pytest.raises(InvalidCallerId):
        normalize_caller_id("   ")


@pytest.mark.parametrize(
    ("caller_id", "shown"),
    [
        ("+14155550101", "+1415•••0101"),
        ("dana@example.com", "d•••@example.com"),
        ("kiosk-lobby-3", "kio•••"),
        (None, "(none)"),
    ],
)
def test_logs_show_a_caller_id_masked(caller_id: str | None, shown: str) -> None:
    assert masked(caller_id) == shown


@pytest.mark.parametrize("raw", ["x" * 10_000, "+1415555\x000101", "dev\nice"])
def test_an_id_no_store_could_keep_is_refused_at_the_door(raw: str) -> None:
    with pytest.raises(InvalidCallerId):
        normalize_caller_id(raw)
