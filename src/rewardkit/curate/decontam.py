"""Decontamination against benchmark and eval files: prompt n-gram overlap and exact response matches.

A benchmark file is read with rewardkit's own benchmark readers (:mod:`rewardkit.eval.benchmarks`), so
any file ``rewardkit eval`` reads can be used; ``auto`` picks the reader from the first record's fields
(:func:`detect_benchmark`). The index keeps only 8-byte hashes and digests (of normalised texts):

- every word ``n``-gram of every benchmark prompt (normalised text of all its messages);
- every whole normalised benchmark prompt (a prompt shorter than ``n`` words has no n-gram, so it can
  only match whole);
- every normalised benchmark response.

A training pair is contaminated when its prompt shares one ``n``-gram with a benchmark prompt, or equals
one whole, or when its chosen or rejected response equals a benchmark response of at least
``response_min_words`` words (13 by default, like the n-gram: on HH-RLHF a short answer such as "What do you
mean?" recurs across unrelated dialogues and flagged 30 of 1,500 training pairs against the held-out 812).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rewardkit.curate.hashing import ngram_hashes, word_hashes
from rewardkit.curate.normalize import digest, messages_text, normalize
from rewardkit.data.formats import DataError, iter_records
from rewardkit.errors import InputError, OptionError

BENCHMARK_FORMATS = ("auto", "pairs", "rewardbench", "rewardbench2", "rmb", "rmbench")


@dataclass(frozen=True)
class Hit:
    """Where a contaminated pair matched: the benchmark file, the item's uid and the rule
    (``prompt_ngram``, ``prompt_exact`` or ``response_exact``)."""

    file: str
    uid: str
    rule: str


def detect_benchmark(path: str) -> str:
    """The benchmark reader for ``path`` from its first record's fields: ``conversation_input`` -> rmb;
    ``chosen`` a list of strings -> rewardbench2 (with ``num_correct`` or ``subset``) else rmbench; a
    string ``prompt`` with ``subset`` -> rewardbench; anything else -> pairs. A folder that is not a
    ``datasets`` folder is RMB's release layout."""
    p = Path(path)
    if p.is_dir() and not any((p / n).is_file() for n in ("state.json", "dataset_dict.json")):
        return "rmb"
    for _, record in iter_records(path):
        if isinstance(record, DataError):
            raise record
        chosen = record.get("chosen")
        if "conversation_input" in record:
            return "rmb"
        if isinstance(chosen, list) and chosen and all(isinstance(c, str) for c in chosen):
            return "rewardbench2" if ("num_correct" in record or "subset" in record) else "rmbench"
        if isinstance(record.get("prompt"), str) and isinstance(chosen, str) and "subset" in record:
            return "rewardbench"
        return "pairs"
    raise InputError(f"{path}: no records")


class BenchmarkIndex:
    """Hashes of benchmark prompts' word n-grams (64-bit, :mod:`rewardkit.curate.hashing`), and digests of
    whole prompts and of responses, each to the first ``(file, uid)`` that had it."""

    def __init__(self, n: int, response_min_words: int = 13) -> None:
        if n < 1:
            raise OptionError(f"--ngram must be at least 1, got {n}")
        if response_min_words < 0:
            raise OptionError(f"--response-min-words must be at least 0, got {response_min_words}")
        self.n = n
        self.response_min_words = response_min_words
        self.ngrams: dict[int, tuple[str, str]] = {}
        self.prompts: dict[int, tuple[str, str]] = {}
        self.responses: dict[int, tuple[str, str]] = {}
        self.items = 0

    def add(self, file: str, uid: str, prompt: str, responses: Sequence[str]) -> None:
        """Index one benchmark item (texts as read; normalised here)."""
        self.items += 1
        norm = normalize(prompt)
        self.prompts.setdefault(digest(norm), (file, uid))
        words, offsets = word_hashes([norm])
        grams, _ = ngram_hashes(words, offsets, self.n, short_as_one=False)
        for g in grams.tolist():
            self.ngrams.setdefault(g, (file, uid))
        for r in responses:
            text = normalize(r)
            if len(text.split()) >= self.response_min_words:  # short answers ("You're welcome.") are everywhere
                self.responses.setdefault(digest(text), (file, uid))

    def match(self, prompt: str, responses: Sequence[str]) -> Hit | None:
        """The first rule a training pair (texts as read) breaks, or None; see :meth:`match_many`."""
        return self.match_many([normalize(prompt)], [[normalize(r) for r in responses]])[0]

    def match_many(self, prompts: Sequence[str], responses: Sequence[Sequence[str]]) -> list[Hit | None]:
        """For each pair (normalised texts): the first rule it breaks -- a prompt n-gram in the index, the
        whole prompt, then a response -- as a :class:`Hit`, or None."""
        words, offsets = word_hashes(prompts)
        grams, g_offsets = ngram_hashes(words, offsets, self.n, short_as_one=False)
        grams_list = grams.tolist()
        out: list[Hit | None] = []
        for i, prompt in enumerate(prompts):
            out.append(self._first_hit(grams_list[g_offsets[i]:g_offsets[i + 1]], prompt, responses[i]))
        return out

    def _first_hit(self, grams: list[int], prompt: str, responses: Sequence[str]) -> Hit | None:
        for g in grams:
            hit = self.ngrams.get(g)
            if hit:
                return Hit(*hit, "prompt_ngram")
        hit = self.prompts.get(digest(prompt))
        if hit:
            return Hit(*hit, "prompt_exact")
        for r in responses:
            hit = self.responses.get(digest(r))
            if hit:
                return Hit(*hit, "response_exact")
        return None


def build_index(files: Sequence[str], *, fmt: str = "auto", n: int = 13, response_min_words: int = 13
                ) -> BenchmarkIndex:
    """Read every benchmark file (``fmt``: one of :data:`BENCHMARK_FORMATS`) into one index; benchmark
    responses shorter than ``response_min_words`` words are not matched (0: every response)."""
    from rewardkit.eval.benchmarks import get_benchmark

    if fmt not in BENCHMARK_FORMATS:
        raise OptionError(f"--decontaminate-format must be one of {', '.join(BENCHMARK_FORMATS)}, got {fmt!r}")
    index = BenchmarkIndex(n, response_min_words)
    for file in files:
        if not Path(file).exists():
            raise InputError(f"{file}: no such file or folder")
        name = detect_benchmark(file) if fmt == "auto" else fmt
        result = get_benchmark(name).read(file)
        for item in result.items:
            index.add(file, item.uid, messages_text(item.prompt), [messages_text(r) for r in item.responses])
    return index
