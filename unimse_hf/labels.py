# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""The UniMSE universal label: label sets, formatting and robust parsing.

A universal label is four comma-separated slots, ``polarity,score,MELD-emotion,IEMOCAP-emotion``
(for example ``positive,1.0,joy,excited``). MOSI/MOSEI are evaluated on the score slot, MELD on the
MELD slot and IEMOCAP on the IEMOCAP slot. This module is uploaded with checkpoints: it imports only
the standard library.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional

POLARITIES: tuple[str, ...] = ("positive", "negative", "neutral")
"""The three polarity values of slot 0."""

MELD_EMOTIONS: tuple[str, ...] = ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")
"""MELD's seven emotions (slot 2)."""

IEMOCAP_EMOTIONS: tuple[str, ...] = ("joy", "sadness", "neutral", "frustrated", "anger", "excited")
"""IEMOCAP's six emotions (slot 3), written as words as the official training targets are."""

IEMOCAP_ABBREVIATIONS: dict[str, str] = {
    "hap": "joy",
    "sad": "sadness",
    "neu": "neutral",
    "fru": "frustrated",
    "ang": "anger",
    "exc": "excited",
}
"""IEMOCAP's release abbreviations for the six classes, mapped to the words used in labels."""

SCORE_RANGE: tuple[float, float] = (-3.0, 3.0)
"""The range of MOSI/MOSEI sentiment scores."""

# Truncated or misspelt emotions the official evaluation repaired (utils/eval_metrics.py:38-42).
_EMOTION_REPAIRS: dict[str, str] = {"sad": "sadness", "sa": "sadness", "frust": "frustrated"}
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


def polarity_of_score(score: float) -> str:
    """Return the polarity of a sentiment score: ``positive`` above 0, ``negative`` below, else ``neutral``."""
    if score > 0:
        return "positive"
    if score < 0:
        return "negative"
    return "neutral"


def format_score(score: float, score_decimals: Optional[int] = None) -> str:
    """Format a score for the label string.

    ``score_decimals=None`` reproduces the official ``str(float)`` (e.g. ``0.6666666865348816``);
    an integer rounds to that many decimals (``score_decimals=2`` gives ``0.67``).
    """
    if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
        raise ValueError(f"`score` must be a finite number, got {score!r}")
    if score_decimals is None:
        return str(float(score))
    if not isinstance(score_decimals, int) or score_decimals < 0:
        raise ValueError(f"`score_decimals` must be None or an int >= 0, got {score_decimals!r}")
    text = f"{float(score):.{score_decimals}f}"
    if text.startswith("-") and float(text) == 0.0:
        text = text[1:]
    return text


@dataclass(frozen=True)
class UniversalLabel:
    """One universal label: polarity, sentiment score and the two emotion slots."""

    polarity: str
    score: float
    meld_emotion: str
    iemocap_emotion: str

    def __post_init__(self) -> None:
        if self.polarity not in POLARITIES:
            raise ValueError(f"`polarity` must be one of {POLARITIES}, got {self.polarity!r}")
        if not isinstance(self.score, (int, float)) or not math.isfinite(self.score):
            raise ValueError(f"`score` must be a finite number, got {self.score!r}")
        if self.meld_emotion not in MELD_EMOTIONS:
            raise ValueError(f"`meld_emotion` must be one of {MELD_EMOTIONS}, got {self.meld_emotion!r}")
        iemocap = IEMOCAP_ABBREVIATIONS.get(self.iemocap_emotion, self.iemocap_emotion)
        if iemocap not in IEMOCAP_EMOTIONS:
            raise ValueError(f"`iemocap_emotion` must be one of {IEMOCAP_EMOTIONS}, got {self.iemocap_emotion!r}")
        object.__setattr__(self, "iemocap_emotion", iemocap)

    def format(self, score_decimals: Optional[int] = None) -> str:
        """Return the label string ``polarity,score,meld,iemocap``."""
        return format_universal_label(self, score_decimals=score_decimals)


def format_universal_label(label: UniversalLabel, score_decimals: Optional[int] = None) -> str:
    """Format a :class:`UniversalLabel` as the comma-separated target string."""
    if not isinstance(label, UniversalLabel):
        raise TypeError(f"`label` must be a UniversalLabel, got {type(label).__name__}")
    score = format_score(label.score, score_decimals)
    return f"{label.polarity},{score},{label.meld_emotion},{label.iemocap_emotion}"


@dataclass(frozen=True)
class ParsedLabel:
    """The result of parsing generated text. Slots that could not be read are ``None``.

    ``valid`` is True only when all four slots parsed, the score lies in ``SCORE_RANGE`` and the polarity
    agrees with the score's sign; ``problem`` says why a label is not valid. ``score_or_default`` applies
    the official fallback (0.0) for an unreadable score, so MSA metrics can still be computed.
    """

    text: str
    polarity: Optional[str]
    score: Optional[float]
    meld_emotion: Optional[str]
    iemocap_emotion: Optional[str]
    problem: Optional[str] = None

    @property
    def valid(self) -> bool:
        """Whether the text is a universal label: every slot parsed and nothing contradicts."""
        return self.problem is None and None not in (self.polarity, self.score, self.meld_emotion, self.iemocap_emotion)

    @property
    def score_or_default(self) -> float:
        """The parsed score, or 0.0 where it could not be read (the official fallback)."""
        return 0.0 if self.score is None else self.score

    def to_label(self) -> UniversalLabel:
        """Return the :class:`UniversalLabel`; raises ``ValueError`` if the text was not a valid label."""
        if not self.valid:
            raise ValueError(f"`text` is not a valid universal label ({self.problem}): {self.text!r}")
        return UniversalLabel(self.polarity, self.score, self.meld_emotion, self.iemocap_emotion)


def score_problem(polarity: str, score: float) -> Optional[str]:
    """Why `score` cannot go with `polarity` in a universal label (outside ``SCORE_RANGE``, or a sign that
    contradicts the polarity: positive needs a score above 0, negative below 0, neutral exactly 0), or None."""
    low, high = SCORE_RANGE
    if not low <= score <= high:
        return f"score {score!r} is outside [{low:g}, {high:g}]"
    if polarity_of_score(score) != polarity:
        return f"polarity {polarity!r} contradicts score {score!r} (a score of that sign is {polarity_of_score(score)!r})"
    return None


def _parse_score(slot: str) -> Optional[float]:
    """A finite score written with ASCII digits (other Unicode digits, NaN and infinities are unreadable)."""
    if not _NUMBER.fullmatch(slot):
        return None
    value = float(slot)
    return value if math.isfinite(value) else None


def _parse_emotion(slot: str, allowed: tuple[str, ...]) -> Optional[str]:
    slot = _EMOTION_REPAIRS.get(slot, slot)
    slot = IEMOCAP_ABBREVIATIONS.get(slot, slot) if allowed is IEMOCAP_EMOTIONS else slot
    return slot if slot in allowed else None


def parse_universal_label(text: object) -> ParsedLabel:
    """Parse generated text into a :class:`ParsedLabel`. Never raises.

    Lenient in form: whitespace around slots and case are normalised, IEMOCAP abbreviations (``exc``) and
    the official repairs of truncated emotions (``sa``) are read as the full words. Strict in content: the
    score must be a finite number written with ASCII digits inside ``SCORE_RANGE`` and agree with the
    polarity, and there must be exactly four slots; otherwise ``valid`` is False (``problem`` says why),
    while every slot that can be read is still returned. The processor encodes a label string exactly when
    this parser reads it as valid.
    """
    raw = text if isinstance(text, str) else ("" if text is None else str(text))
    slots = [s.strip().lower() for s in raw.strip().split(",")]
    get = lambda i: slots[i] if i < len(slots) else ""  # noqa: E731
    polarity = get(0) if get(0) in POLARITIES else None
    score = _parse_score(get(1))
    meld = _parse_emotion(get(2), MELD_EMOTIONS)
    # A label with the wrong number of slots is invalid as a whole, even if its prefix reads.
    iemocap = _parse_emotion(get(3), IEMOCAP_EMOTIONS) if len(slots) == 4 else None
    problem = None
    if len(slots) != 4:
        problem = f"it has {len(slots)} comma-separated slots, expected 4 (polarity,score,meld,iemocap)"
    elif polarity is None:
        problem = f"polarity {get(0)!r} is not one of {POLARITIES}"
    elif score is None:
        problem = f"score {get(1)!r} is not a finite number written with ASCII digits"
    elif meld is None:
        problem = f"MELD emotion {get(2)!r} is not one of {MELD_EMOTIONS}"
    elif iemocap is None:
        problem = f"IEMOCAP emotion {get(3)!r} is not one of {IEMOCAP_EMOTIONS} (or their abbreviations)"
    else:
        problem = score_problem(polarity, score)
    return ParsedLabel(raw, polarity, score, meld, iemocap, problem)


def slot_for_dataset(dataset: str) -> str:
    """Return which slot evaluates a dataset: ``score`` (MOSI/MOSEI), ``meld_emotion`` or ``iemocap_emotion``."""
    key = dataset.lower() if isinstance(dataset, str) else dataset
    mapping = {"mosi": "score", "mosei": "score", "meld": "meld_emotion", "iemocap": "iemocap_emotion"}
    if key not in mapping:
        raise ValueError(f"`dataset` must be one of {sorted(mapping)}, got {dataset!r}")
    return mapping[key]
