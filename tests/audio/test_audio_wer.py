"""The WER helper used by the speech tests and the benchmark."""

from __future__ import annotations

import pytest

from app.audio.wer import normalize_words, word_error_rate


@pytest.mark.parametrize(
    ("reference", "hypothesis"),
    [
        ("Saturday at 11 AM.", " saturday at 11am"),
        ("Saturday at 11 AM.", "Saturday at 11 a.m."),
        ("Saturday at 11 AM.", "Saturday at eleven AM"),
        ("Saturday at 11 AM.", "Saturday at 11:00 AM"),
        ("by the first of June", "by the 1st of June"),
        ("around 3000 dollars a month", "around $3,000 a month"),
        ("a two-bedroom apartment", "a 2 bedroom apartment"),
    ],
)
def test_formatting_differences_are_not_errors(reference: str, hypothesis: str) -> None:
    assert word_error_rate(reference, hypothesis) == 0.0


def test_word_error_rate_counts_edits() -> None:
    ref = "book a tour at Hudson on Saturday"  # 7 words
    assert word_error_rate(ref, "book a tour at housing on Saturday") == pytest.approx(1 / 7)
    assert word_error_rate(ref, "book tour at Hudson on Saturday") == pytest.approx(1 / 7)
    assert word_error_rate(ref, "please book a tour at Hudson on Saturday") == pytest.approx(1 / 7)
    assert word_error_rate(ref, "") == 1.0
    assert word_error_rate("", "") == 0.0
    assert normalize_words("Hello, World!") == ["hello", "world"]
