"""Math final-answer checking: Hugging Face's ``math-verify`` first, our rules only where it is wrong.

:func:`math_reward` asks ``math-verify`` (``parse`` + ``verify``: LaTeX and expression extraction,
symbolic equivalence through sympy, so ``2\\sqrt{2}`` equals ``\\sqrt{8}``). Our extraction and comparison
below are kept for the answers the test table (``tests/unit/verify/test_math_answers.py``) shows
``math-verify`` gets wrong: responses it extracts nothing from (a multiple-choice letter such as
``(B)``) and scientific notation (it reads ``1.5e3`` as 1.5). Timeouts are off (``math-verify`` implements them with ``signal``, which only works in
the main thread, and the verifier scores in worker threads).

Our rules, used only in those cases:

Extraction (:func:`extract_answer`), first rule that matches wins:

1. the last ``\\boxed{...}`` (or ``\\fbox{...}``), braces balanced;
2. the last "answer is X" / "Answer: X" / "final answer: X" / "#### X" (GSM8K style);
3. the last number in the text (integer, decimal, fraction, ``\\frac{a}{b}``).

Comparison (:func:`answers_match`): both sides are normalised (``$`` and ``\\(\\)`` delimiters, ``\\left``/
``\\right``, ``\\text{..}``/``\\mathrm{..}`` wrappers, ``\\dfrac``/``\\tfrac``, thousands separators, a
trailing period, ``\\%``, spaces) and, when both parse as numbers — integers, decimals, ``a/b``,
``\\frac{a}{b}``, ``-\\frac{a}{b}``, scientific notation — compared exactly as fractions (``0.5`` equals
``\\frac{1}{2}`` and ``1/2``) or, for long decimals, to a relative tolerance of ``1e-6``. Anything
else is compared as normalised strings (``x=3`` and ``3`` differ: a left-hand side is not stripped
unless it is a single variable name).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_NUMBER = r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+"
_FRAC = r"-?\\[dt]?frac\{[^{}]+\}\{[^{}]+\}"
_LAST_NUMBER = re.compile(rf"{_FRAC}|-?\d+\s*/\s*\d+|{_NUMBER}")
_ANSWER_IS = re.compile(
    r"(?:final answer|answer)\s*(?:is|:|=)\s*:?\s*(.+?)(?:\n|$)|####\s*(.+?)(?:\n|$)", re.IGNORECASE
)
_WRAPPERS = re.compile(r"\\(?:text|mathrm|textbf|mathbf|operatorname)\{([^{}]*)\}")
REL_TOL = 1e-6


def _balanced(text: str, start: int) -> str | None:
    """The contents of the brace group opening at ``text[start] == '{'``, or None if unbalanced."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    return None


def last_boxed(text: str) -> str | None:
    """The contents of the last ``\\boxed{...}`` / ``\\fbox{...}`` in ``text``."""
    positions = [m.end() - 1 for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    for pos in reversed(positions):
        inner = _balanced(text, pos)
        if inner is not None:
            return inner
    return None


def extract_answer(response: str) -> str | None:
    """The final answer of ``response`` by the rules in the module docstring, or None."""
    boxed = last_boxed(response)
    if boxed is not None:
        return boxed.strip()
    stated = list(_ANSWER_IS.finditer(response))
    if stated:
        m = stated[-1]
        answer = (m.group(1) or m.group(2) or "").strip()
        number = _LAST_NUMBER.search(answer) if not answer.startswith("\\") else None
        if number is not None and not re.search(r"[a-zA-Z]{2,}", _strip_latex(answer)[: number.start()]):
            return number.group(0)
        return answer.rstrip(".") or None
    numbers = _LAST_NUMBER.findall(response)
    return numbers[-1] if numbers else None


def _strip_latex(text: str) -> str:
    s = text.strip()
    for a, b in (("\\(", ""), ("\\)", ""), ("\\[", ""), ("\\]", ""), ("$", ""), ("\\left", ""), ("\\right", ""),
                 ("\\!", ""), ("\\,", ""), ("\\;", ""), ("\\%", ""), ("%", ""), ("^\\circ", ""), ("^{\\circ}", ""),
                 ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac")):
        s = s.replace(a, b)
    prev = None
    while prev != s:
        prev, s = s, _WRAPPERS.sub(r"\1", s)
    return s.strip()


def normalize(answer: str) -> str:
    """The canonical string form of an answer (see the module docstring)."""
    s = _strip_latex(answer).rstrip(".").strip()
    s = re.sub(r"^[a-zA-Z]\s*=\s*", "", s)  # "x = 3" -> "3" (a single variable on the left)
    s = re.sub(r"(?<=\d),(?=\d{3}(?:\D|$))", "", s)  # 1,000 -> 1000
    return re.sub(r"\s+", "", s)


def to_number(answer: str) -> Fraction | None:
    """The exact value of a normalised numeric answer (int, decimal, sci, ``a/b``, ``\\frac{a}{b}``), or None."""
    s = normalize(answer)
    frac = re.fullmatch(r"(-?)\\frac\{?(-?[\d.]+)\}?\{?(-?[\d.]+)\}?", s)
    if frac:
        sign, num, den = frac.groups()
        value = _fraction(num, den)
        return -value if (value is not None and sign) else value
    plain = re.fullmatch(r"(-?[\d.]+(?:[eE][-+]?\d+)?)(?:/(-?[\d.]+))?", s)
    if plain:
        return _fraction(plain.group(1), plain.group(2) or "1")
    return None


def _fraction(num: str, den: str) -> Fraction | None:
    try:
        d = Fraction(den)
        return Fraction(num) / d if d != 0 else None
    except (ValueError, ZeroDivisionError):
        return None


def answers_match(predicted: str | None, reference: str) -> bool:
    """Whether ``predicted`` equals ``reference`` as numbers (exact, or within ``REL_TOL`` when either
    side is a decimal) or else as normalised strings."""
    if predicted is None:
        return False
    a, b = to_number(predicted), to_number(reference)
    if a is not None and b is not None:
        if a == b:
            return True
        decimal = "." in normalize(predicted) or "." in normalize(reference)
        return decimal and math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=0.0)
    return normalize(predicted) == normalize(reference)


_SCIENTIFIC = re.compile(r"\d[eE][-+]?\d")


def math_reward(response: str, answer: str) -> float:
    """1.0 when the final answer of ``response`` equals ``answer`` (``math-verify``; our rules where it
    extracts nothing or the answer is in scientific notation), else 0.0."""
    from math_verify import parse, verify

    reference = str(answer)
    gold = parse(reference if reference.lstrip().startswith("$") else f"${reference}$", parsing_timeout=None)
    predicted = parse(response, parsing_timeout=None)
    if gold and predicted and verify(gold, predicted, timeout_seconds=None):
        return 1.0
    extracted = extract_answer(response)
    ours_apply = not predicted or (extracted is not None and _SCIENTIFIC.search(extracted) is not None)
    return 1.0 if ours_apply and answers_match(extracted, reference) else 0.0
