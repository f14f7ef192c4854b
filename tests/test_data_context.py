# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""ERC context windows: ±2 turns, </s> markers, speaker names, truncation that keeps the target whole."""

from __future__ import annotations

import pytest
from fixtures_data import T5_VOCAB

from unimse_hf.data.context import build_context, t5_token_counter

TURNS = ["hi there", "how are you", "fine thanks", "and you", "great", "bye"]
NAMES = ["Ann", "Bob", "Ann", "Bob", "Ann", "Bob"]


def words(text: str) -> int:
    return len(text.split())


def test_window_holds_two_turns_before_and_after_the_target():
    assert build_context(TURNS, 2) == "hi there how are you </s> fine thanks </s> and you great"


def test_speaker_names_precede_every_turn():
    assert build_context(TURNS, 1, NAMES) == "Ann hi there </s> Bob how are you </s> Ann fine thanks Bob and you"


def test_target_at_the_dialogue_end_is_still_wrapped_once():
    context = build_context(TURNS, 5)
    assert context == "and you great </s> bye </s>"
    assert context.count("</s>") == 2


def test_truncation_drops_the_farthest_turns_first_future_before_past():
    # full window: 2 + 3 + (1 + 2 + 1) + 2 + 1 = 12 words; 11 drops "great", 9 also "hi there"
    assert build_context(TURNS, 2, count_tokens=words, max_tokens=11) == "hi there how are you </s> fine thanks </s> and you"
    assert build_context(TURNS, 2, count_tokens=words, max_tokens=9) == "how are you </s> fine thanks </s> and you"


def test_truncation_keeps_a_target_longer_than_the_budget_whole():
    long_turns = ["a b", "c " * 30, "d e"]
    context = build_context(long_turns, 1, count_tokens=words, max_tokens=5)
    assert context == "</s> " + " ".join(["c"] * 30) + " </s>"


def test_token_budget_needs_a_counter():
    with pytest.raises(ValueError, match="together"):
        build_context(TURNS, 0, max_tokens=3)


def test_t5_counter_counts_markers_as_single_eos_tokens():
    count = t5_token_counter(T5_VOCAB)
    assert count("Hello world") == 2
    assert count("</s> Hello world </s>") == 4


def test_t5_truncation_fits_the_budget_with_the_target_intact():
    count = t5_token_counter(T5_VOCAB)
    turns = ["so what did you do over the whole long weekend then"] * 5
    turns[2] = "I went hiking in the mountains"
    context = build_context(turns, 2, count_tokens=count, max_tokens=30)
    assert count(context) <= 30
    assert "</s> I went hiking in the mountains </s>" in context
