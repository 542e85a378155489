"""Math final answers: extraction rules and comparison (integers, decimals, fractions, LaTeX, \\boxed)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from rewardkit.verify.math_answers import (
    answers_match,
    extract_answer,
    last_boxed,
    math_reward,
    normalize,
    to_number,
)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("so the result is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
        ("\\boxed{1} then \\boxed{\\frac{3}{\\sqrt{4}}}", "\\frac{3}{\\sqrt{4}}"),  # last box, nested braces
        ("The answer is 42.", "42"),
        ("Answer: $-\\dfrac{2}{3}$", "-\\dfrac{2}{3}"),
        ("work...\n#### 1,234", "1,234"),
        ("I have 7 apples and 8 pears", "8"),  # last number
        ("The final answer is \\boxed{12}. Answer: 13", "12"),  # a box beats a stated answer
        ("no numbers here", None),
        ("\\boxed{x = 5", "5"),  # an unbalanced box is ignored, the last number is used
    ],
)
def test_extract_answer(response: str, expected: str | None) -> None:
    assert extract_answer(response) == expected


def test_last_boxed_handles_fbox_and_missing() -> None:
    assert last_boxed("\\fbox{7}") == "7"
    assert last_boxed("nothing") is None


@pytest.mark.parametrize(
    ("answer", "value"),
    [("3", Fraction(3)), ("-0.75", Fraction(-3, 4)), ("\\frac{1}{2}", Fraction(1, 2)), ("-\\frac{6}{4}", Fraction(-3, 2)),
     ("\\dfrac{2}{3}", Fraction(2, 3)), ("1/3", Fraction(1, 3)), ("1,000", Fraction(1000)), ("$5$", Fraction(5)),
     ("1.5e3", Fraction(1500)), ("50\\%", Fraction(50)), ("x = 4", Fraction(4)), ("\\frac{1}{0}", None),
     ("(B)", None), ("\\sqrt{2}", None)],
)
def test_to_number(answer: str, value: Fraction | None) -> None:
    assert to_number(answer) == value


@pytest.mark.parametrize(
    ("predicted", "reference", "match"),
    [
        ("0.5", "\\frac{1}{2}", True),
        ("1/2", "0.5", True),
        ("\\boxed{2}", "2", False),  # answers_match compares extracted answers, not responses
        ("2.0", "2", True),
        ("0.3333333", "1/3", True),  # a long decimal within 1e-6 relative
        ("0.33", "1/3", False),
        ("3", "4", False),
        ("\\text{(B)}", "(B)", True),
        ("x+1", "x + 1", True),  # non-numeric: normalised strings
        (None, "1", False),
    ],
)
def test_answers_match(predicted: str | None, reference: str, match: bool) -> None:
    assert answers_match(predicted, reference) is match


def test_math_reward_end_to_end() -> None:
    assert math_reward("Half of it: \\boxed{\\frac{1}{2}}", "0.5") == 1.0
    assert math_reward("The answer is 41.", "42") == 0.0
    assert math_reward("It costs $1,250.", "1250") == 1.0
    assert normalize(" \\left( 3 \\right) ") == "(3)"


@pytest.mark.parametrize(
    ("response", "reference", "reward", "who"),
    [
        # math-verify right (symbolic equivalence; our string rules said 0)
        ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", 1.0, "math-verify"),
        ("\\boxed{\\frac{6}{8}}", "0.75", 1.0, "math-verify"),
        ("so x = \\boxed{\\frac{\\pi}{2}}", "\\pi/2", 1.0, "math-verify"),
        # math-verify extracts nothing or misreads: our rules (the reason each is kept)
        ("The answer is (B)", "(B)", 1.0, "ours: a choice letter"),
        # neither: math-verify reads nothing, our last-number rule reads 1
        ("The answer is x+1", "x + 1", 0.0, "neither"),
        ("The answer is 1.5e3", "1500", 1.0, "ours: scientific notation (math-verify reads 1.5)"),
        # both agree
        ("The answer is 41.", "42", 0.0, "both"),
        ("It is 0.33", "1/3", 0.0, "both"),
        ("no numbers here", "3", 0.0, "both"),
    ],
)
def test_math_reward_uses_math_verify_and_our_rules_only_where_it_is_wrong(
        response: str, reference: str, reward: float, who: str) -> None:
    assert math_reward(response, reference) == reward, who


def test_math_reward_works_off_the_main_thread() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(math_reward, ["\\boxed{\\frac{1}{2}}", "The answer is 3"], ["0.5", "4"])) == [1.0, 0.0]
