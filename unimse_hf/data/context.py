# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""ERC context windows: ±2 utterances around the target, which is wrapped in ``</s>`` markers.

The official text (``PR19:texts/MELD/doc_contexts_with_spearker.py``) is roughly
``spk-2 u-2 spk-1 u-1 </s> spk0 u0 </s> spk+1 u+1 spk+2 u+2``, with edge cases that drop or repeat
markers near dialogue ends (B18). This builder is the clean version of it: the target is always
wrapped exactly once, past and future turns are used, and a speaker name precedes each turn when
speakers are given (MELD). IEMOCAP's official default passes only the same speaker's turns and no
names; see :mod:`unimse_hf.data.iemocap`.

When a token budget is given, whole context turns are dropped, farthest first (the future one first
at equal distance), until the window fits: the target utterance is never cut (B22). A target that
alone exceeds the budget is kept whole and left to the tokenizer's own truncation.
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

TARGET_MARKER = "</s>"
"""The literal marker around the target utterance; T5's tokenizer reads it as EOS (id 1)."""

TokenCounter = Callable[[str], int]
"""A function returning the number of tokens of a string (without special tokens added)."""


def _turn(text: str, speaker: Optional[str]) -> str:
    text = " ".join(str(text).split())
    return f"{speaker} {text}" if speaker else text


def build_context(
    utterances: Sequence[str],
    index: int,
    speakers: Optional[Sequence[Optional[str]]] = None,
    window: int = 2,
    count_tokens: Optional[TokenCounter] = None,
    max_tokens: Optional[int] = None,
) -> str:
    """Return the context window of ``utterances[index]``.

    Args:
        utterances: the turns of one conversation (or one speaker's turns), in order.
        index: position of the target turn.
        speakers: optional speaker name per turn, written before the turn.
        window: how many turns before and after the target to include.
        count_tokens: with ``max_tokens``, counts tokens to decide which context turns to drop.
        max_tokens: token budget for the whole window.
    """
    if not 0 <= index < len(utterances):
        raise IndexError(f"`index` {index} outside 0..{len(utterances) - 1}")
    if window < 0:
        raise ValueError(f"`window` must be >= 0, got {window}")
    if (count_tokens is None) != (max_tokens is None):
        raise ValueError("`count_tokens` and `max_tokens` must be given together")
    speaker = (lambda i: speakers[i]) if speakers is not None else (lambda i: None)
    offsets = [o for o in range(-window, window + 1) if o != 0 and 0 <= index + o < len(utterances)]

    def render(kept: list[int]) -> str:
        before = [_turn(utterances[index + o], speaker(index + o)) for o in kept if o < 0]
        after = [_turn(utterances[index + o], speaker(index + o)) for o in kept if o > 0]
        target = f"{TARGET_MARKER} {_turn(utterances[index], speaker(index))} {TARGET_MARKER}"
        return " ".join(before + [target] + after)

    kept = list(offsets)
    text = render(kept)
    if max_tokens is None:
        return text
    # Drop farthest turns first; at equal distance the future turn goes first.
    drop_order = sorted(offsets, key=lambda o: (-abs(o), -o))
    while kept and count_tokens(text) > max_tokens:
        kept.remove(drop_order.pop(0))
        text = render(kept)
    return text


def t5_token_counter(tokenizer_path: str) -> TokenCounter:
    """Return a token counter for a T5 vocabulary: a tokenizer folder or the ``spiece.model`` file in one.

    ``</s>`` counts as one token, as in the model's tokenizer.
    """
    from transformers import T5Tokenizer

    folder = tokenizer_path if os.path.isdir(tokenizer_path) else os.path.dirname(os.path.abspath(tokenizer_path))
    tokenizer = T5Tokenizer.from_pretrained(folder)

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count
