"""Finding and cutting phrases in a prompt: a NEVER word takes its phrase with it, never the whole request.

A prompt term is a tag ("glowing neon signs") or prose ("the mascot fox in a city at night with glowing neon
signs"). Prose is cut at sentence ends, commas and the little words that start a phrase ("with", "in",
"at"...). A matching phrase is removed whole, except in the subject phrase (the first phrase of the first
term the artist wrote), where only the matching words go: "neon fox mascot" keeps "fox mascot".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Removal", "cut_phrases", "mentions", "stems", "words"]

_STOPWORDS = {"a", "an", "the", "and", "or", "of", "with", "in", "on", "for", "to", "very", "is", "at"}
_CONNECTIVES = (
    "with|and|in|on|at|under|over|near|beside|behind|against|from|into|through|while|wearing|holding|"
    "featuring|among|amid|inside|outside|across|along|around|between|beneath|above|below|by|under"
)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_PHRASE_START = re.compile(rf",|\b(?:{_CONNECTIVES})\b", re.IGNORECASE)
_LEADING = re.compile(rf"^(?:[\s,;]|\b(?:{_CONNECTIVES})\b)+", re.IGNORECASE)
_TRAILING = re.compile(rf"(?:[\s,;]|\b(?:{_CONNECTIVES}|of|the|a|an|lit)\b)+$", re.IGNORECASE)
_TOKEN = re.compile(r"[\w'-]+")
_SPELLINGS = {"colour": "color", "grey": "gray", "centre": "center"}


def words(text: str) -> set[str]:
    """The meaningful lower-case words of a phrase."""
    return {w for w in re.findall(r"[a-z0-9]+", text.casefold()) if w not in _STOPWORDS and len(w) > 1}


def _stem(word: str) -> str:
    word = word.casefold()
    if len(word) > 4 and word.endswith("es") and not word.endswith("ses"):
        word = word[:-2] if word[-3] in "hsxz" else word[:-1]
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return _SPELLINGS.get(word, word)


def stems(text: str) -> set[str]:
    """Meaningful words reduced to a common form ("colours" and "color" match)."""
    return {_stem(w) for w in words(text)}


# Words that qualify rather than name a thing: "warm color palette" does not ask for "neon colours".
_GENERIC = {
    "color", "tone", "light", "lighting", "style", "look", "aesthetic", "effect", "vibe", "art", "palette", "hue",
    "shade", "render", "rendering", "image", "picture", "detail", "quality",
}  # fmt: skip


def mentions(text: str, term: str) -> bool:
    """True when at least half of the term's meaningful words appear in ``text``, one of them a telling word."""
    needle = stems(term)
    shared = needle & stems(text)
    telling = needle - _GENERIC or needle
    return bool(needle) and len(shared) * 2 >= len(needle) and bool(shared & telling)


@dataclass(frozen=True)
class Removal:
    """What was cut out of the prompt, and the NEVER or AVOID term that asked for it."""

    phrase: str
    term: str


def _tidy(text: str) -> str:
    text = re.sub(r"\s+([,.;!?])", r"\1", text)
    text = re.sub(r"([,;])(?:\s*[,;])+", r"\1", text)
    text = _TRAILING.sub("", _LEADING.sub("", " ".join(text.split())))
    return text.strip(" ,;")


def _shown(phrase: str) -> str:
    return " ".join(phrase.split()).strip(" ,;.!?")


def _phrases(sentence: str) -> list[str]:
    cuts = [0, *(m.start() for m in _PHRASE_START.finditer(sentence) if m.start() > 0), len(sentence)]
    return [sentence[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if sentence[a:b].strip(" ,;")]


def _drop_words(phrase: str, targets: set[str]) -> str:
    """The phrase without the tokens whose stems are targets ("neon-lit" goes with "neon")."""

    def keep(match: re.Match[str]) -> str:
        parts = {_stem(p) for p in re.split(r"[-']", match.group(0)) if p}
        return "" if parts & targets else match.group(0)

    return _TOKEN.sub(keep, phrase)


def cut_phrases(text: str, term: str, *, is_subject: bool) -> tuple[str, list[str]]:
    """``text`` without the phrases that carry ``term``'s words, and the phrases removed (as written).

    In the subject phrase only the matching words go; other phrases go whole; later sentences go whole.
    """
    targets = stems(term)
    removed: list[str] = []
    kept_sentences: list[str] = []
    for index, sentence in enumerate(_SENTENCE_END.split(text.strip())):
        if not stems(sentence) & targets:
            kept_sentences.append(sentence)
            continue
        if index > 0:
            removed.append(_shown(sentence))
            continue
        kept: list[str] = []
        for position, phrase in enumerate(_phrases(sentence)):
            if not stems(phrase) & targets:
                kept.append(phrase)
            elif position == 0 and is_subject:
                rest = _drop_words(phrase, targets)
                if words(rest):
                    removed.extend(_gone(phrase, rest))
                    kept.append(rest)
                else:
                    removed.append(_shown(phrase))
            else:
                removed.append(_shown(phrase))
        rebuilt = _tidy("".join(kept))
        if rebuilt:
            ending = sentence.rstrip()[-1] if sentence.rstrip()[-1:] in ".!?" else ""
            kept_sentences.append(rebuilt + ending if not rebuilt.endswith(ending) else rebuilt)
    return _tidy(" ".join(kept_sentences)) if kept_sentences else "", [r for r in removed if r]


def _gone(before: str, after: str) -> Iterable[str]:
    remaining = _TOKEN.findall(after)
    for token in _TOKEN.findall(before):
        if token in remaining:
            remaining.remove(token)
        else:
            yield token
