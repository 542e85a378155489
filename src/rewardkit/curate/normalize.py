"""Text keys for curation: one normalisation, fixed-size digests, word n-grams.

Everything here is pure. A record's texts are never kept: the steps keep only the 8-byte digests these
functions return (as Python ints), so memory grows by a fixed amount per record, not with its text.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterator, Sequence

from rewardkit.data.formats import Message


def normalize(text: str) -> str:
    """NFKC, casefold, every run of whitespace to one space, stripped: ``"  Hello\\n WORLD "`` ->
    ``"hello world"``."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())  # split(): any whitespace run


def messages_text(messages: Sequence[Message]) -> str:
    """The contents of ``messages`` (any roles) joined by newlines: the text of a prompt or a response."""
    return "\n".join(m["content"] for m in messages)


def digest(text: str) -> int:
    """An 8-byte blake2b digest of ``text`` as an unsigned int (what the steps store instead of texts)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def pair_key(prompt: str, chosen: str, rejected: str) -> str:
    """The text an exact-duplicate check of a whole pair compares: the three texts (already normalised)
    separated by a control character that normalisation never leaves inside a text."""
    return "\x1f".join((prompt, chosen, rejected))


def word_ngrams(words: Sequence[str], n: int) -> Iterator[str]:
    """Every run of ``n`` consecutive words, joined by one space (none when there are fewer words)."""
    for i in range(len(words) - n + 1):
        yield " ".join(words[i:i + n])

