# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Structured decoding of universal labels.

:class:`UniversalLabelGrammar` is a character-level automaton for the label language

    polarity "," score "," MELD-emotion "," IEMOCAP-emotion

where the score is ``-?D(.d{1,N})?`` with ``|score| <= 3``, at most ``N`` decimals and the sign its
polarity requires, and every word comes from the label sets of :mod:`.labels`. :class:`UniversalLabelLogitsProcessor` lifts the automaton
to a tokenizer's vocabulary: every SentencePiece piece is a character string (a leading ``▁`` is a word
start, allowed only before the first character of the label), so a grammar state after any token prefix
is the automaton state after the concatenated pieces. Per state, the processor precomputes the set of
tokens that keep the label viable (a walk over a trie of the vocabulary) and the state each token leads
to; at generation time it only gathers rows of these tables.

This module is uploaded with checkpoints: it imports only torch, transformers, numpy and ``.labels``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import numpy as np
import torch
from transformers import LogitsProcessor, PreTrainedTokenizerBase

from .labels import IEMOCAP_EMOTIONS, MELD_EMOTIONS, POLARITIES, SCORE_RANGE

WORD_START = "\u2581"
"""The SentencePiece marker for a word start (``▁``); the label may start with it, nowhere else."""

_DIGITS = "0123456789"


class UniversalLabelGrammar:
    """A deterministic character automaton accepting exactly the canonical universal labels.

    Accepted: lower-case words from :data:`~.labels.POLARITIES`, :data:`~.labels.MELD_EMOTIONS` and
    :data:`~.labels.IEMOCAP_EMOTIONS` (full words, no abbreviations), and a score with one integer digit
    and at most ``score_decimals`` decimals, bounded by ``SCORE_RANGE`` and agreeing with the polarity
    (as :func:`~.labels.parse_universal_label` requires): ``positive`` takes a score above 0 without a
    sign, ``negative`` a score below 0 with ``-``, ``neutral`` a zero (``0``, ``0.00``, ``-0``). So
    ``positive,3``, ``negative,-3.00`` and ``positive,2.9999`` are accepted; ``positive,3.01``,
    ``positive,-1``, ``negative,0.0``, ``neutral,0.5``, ``positive,+1``, ``.5`` and ``1.`` are not. An
    optional leading ``▁`` (the word-start marker of the first SentencePiece piece) is accepted.

    States are integers; ``initial_state`` is the start and ``None`` stands for a dead prefix.
    """

    def __init__(self, score_decimals: int = 4) -> None:
        if not isinstance(score_decimals, int) or isinstance(score_decimals, bool) or score_decimals < 0:
            raise ValueError(f"`score_decimals` must be an int >= 0, got {score_decimals!r}")
        low, high = SCORE_RANGE
        if low != -high or high != int(high) or not 1 <= high <= 9:
            raise ValueError(f"the grammar needs a symmetric single-digit integer SCORE_RANGE, got {SCORE_RANGE}")
        self.score_decimals = score_decimals
        self.transitions: list[dict[str, int]] = []
        self.accepting: set[int] = set()

        polarity_start = self._new_state()
        meld_start = self._new_state()
        iemocap_start = self._new_state()
        score_starts = self._add_scores(int(high), meld_start)
        self._add_words(polarity_start, POLARITIES, score_starts)
        self._add_words(meld_start, MELD_EMOTIONS, dict.fromkeys(MELD_EMOTIONS, iemocap_start))
        self._add_words(iemocap_start, IEMOCAP_EMOTIONS, dict.fromkeys(IEMOCAP_EMOTIONS))
        # The initial state behaves like the polarity start and may also consume one leading "▁".
        self.initial_state = self._new_state()
        self.transitions[self.initial_state] = {**self.transitions[polarity_start], WORD_START: polarity_start}

    @property
    def num_states(self) -> int:
        """The number of automaton states."""
        return len(self.transitions)

    def _new_state(self) -> int:
        self.transitions.append({})
        return len(self.transitions) - 1

    def _add_words(self, start: int, words: Sequence[str], next_slots: dict[str, Optional[int]]) -> None:
        """Add a trie of `words` from `start`; a complete word continues with "," to its next slot or accepts."""
        for word in words:
            state = start
            for char in word:
                if char not in self.transitions[state]:
                    self.transitions[state][char] = self._new_state()
                state = self.transitions[state][char]
            if next_slots[word] is None:
                self.accepting.add(state)
            else:
                self.transitions[state][","] = next_slots[word]

    def _fraction(self, next_slot: int, digits: str) -> list[int]:
        """States after ``.`` and 0..N decimals drawn from `digits`; each with a decimal may close with ","."""
        states = [self._new_state() for _ in range(self.score_decimals + 1)]
        for count, state in enumerate(states):
            if count > 0:
                self.transitions[state][","] = next_slot
            if count < self.score_decimals:
                for digit in digits:
                    self.transitions[state][digit] = states[count + 1]
        return states

    def _integer(self, next_slot: int, fraction: Optional[int], closes: bool = True) -> int:
        """A state after the integer digit: "," closes the score (if `closes`), "." starts `fraction`."""
        state = self._new_state()
        if closes:
            self.transitions[state][","] = next_slot
        if fraction is not None and self.score_decimals > 0:
            self.transitions[state]["."] = fraction
        return state

    def _add_scores(self, max_integer: int, next_slot: int) -> dict[str, int]:
        """Add the score sub-automata and return the start state per polarity.

        A non-zero magnitude ``D(.d{1,N})?`` <= `max_integer` (after ``0`` a non-zero decimal must follow)
        serves ``positive`` directly and ``negative`` after ``-``; ``neutral`` reads ``-?0(.0{1,N})?``.
        """
        free = self._fraction(next_slot, _DIGITS)
        zeros = self._fraction(next_slot, "0")
        # After "0." a non-zero decimal must come before the score may close.
        leading_zeros = [self._new_state() for _ in range(self.score_decimals)]
        for count, state in enumerate(leading_zeros):
            if count + 1 < self.score_decimals:
                self.transitions[state]["0"] = leading_zeros[count + 1]
            for digit in _DIGITS[1:]:
                self.transitions[state][digit] = free[count + 1]
        magnitude = self._new_state()
        for digit in range(1, max_integer):
            self.transitions[magnitude][str(digit)] = self._integer(next_slot, free[0])
        self.transitions[magnitude][str(max_integer)] = self._integer(next_slot, zeros[0])
        if self.score_decimals > 0:
            self.transitions[magnitude]["0"] = self._integer(next_slot, leading_zeros[0], closes=False)
        negative = self._new_state()
        self.transitions[negative]["-"] = magnitude
        neutral, neutral_sign = self._new_state(), self._new_state()
        zero = self._integer(next_slot, zeros[0])
        self.transitions[neutral]["0"] = zero
        self.transitions[neutral]["-"] = neutral_sign
        self.transitions[neutral_sign]["0"] = zero
        return {"positive": magnitude, "negative": negative, "neutral": neutral}

    def walk(self, state: Optional[int], text: str) -> Optional[int]:
        """Return the state reached from `state` after reading `text`, or ``None`` if the text leaves the grammar."""
        for char in text:
            if state is None:
                return None
            state = self.transitions[state].get(char)
        return state

    def is_viable_prefix(self, text: str) -> bool:
        """Whether `text` can be continued into an accepted label (accepted labels included)."""
        return self.walk(self.initial_state, text) is not None

    def accepts(self, text: str) -> bool:
        """Whether `text` is a complete label of the grammar."""
        return self.walk(self.initial_state, text) in self.accepting

    def max_label_length(self) -> int:
        """The length in characters of the longest accepted string (leading ``▁`` included)."""
        longest: dict[int, int] = {}

        def longest_from(state: int) -> int:
            if state not in longest:
                tails = [1 + longest_from(target) for target in self.transitions[state].values()]
                longest[state] = max(tails, default=0)
            return longest[state]

        return longest_from(self.initial_state)


class _VocabularyTrie:
    """A character trie over token pieces: ``children[char]`` is a sub-trie, ``token_ids`` end here."""

    __slots__ = ("children", "token_ids")

    def __init__(self) -> None:
        self.children: dict[str, _VocabularyTrie] = {}
        self.token_ids: list[int] = []

    def insert(self, piece: str, token_id: int) -> None:
        node = self
        for char in piece:
            node = node.children.setdefault(char, _VocabularyTrie())
        node.token_ids.append(token_id)


def _token_transitions(grammar: UniversalLabelGrammar, trie: _VocabularyTrie, state: int) -> dict[int, int]:
    """Map every token that keeps `state` viable to the grammar state after it (joint walk of automaton and trie)."""
    reached: dict[int, int] = {}
    stack = [(state, trie)]
    while stack:
        grammar_state, node = stack.pop()
        for char, next_state in grammar.transitions[grammar_state].items():
            child = node.children.get(char)
            if child is None:
                continue
            for token_id in child.token_ids:
                reached[token_id] = next_state
            stack.append((next_state, child))
    return reached


class UniversalLabelLogitsProcessor(LogitsProcessor):
    r"""[`LogitsProcessor`] that restricts generation to universal labels followed by EOS.

    At each step, every token that cannot continue a label of :class:`UniversalLabelGrammar` gets a score
    of ``-inf``; EOS is allowed only after a complete label, and after EOS only pad/EOS. With
    ``max_new_tokens >= max_label_tokens``, greedy and beam search on any model therefore return text that
    :func:`~.labels.parse_universal_label` accepts.

    The grammar state of a row is derived from its ids, so batches, beams and beam reordering need no
    bookkeeping; when every row extends the previous call's rows by one id (greedy decoding), only that id
    is read. ``input_ids[:, 0]`` must be the decoder start token (as in encoder-decoder generation);
    everything after it is read as the label so far.

    Args:
        tokenizer (`PreTrainedTokenizerBase`):
            A SentencePiece tokenizer (the T5 family) whose pieces mark word starts with ``▁``.
        score_decimals (`int`, *optional*, defaults to 4):
            The maximum number of decimals of the score slot.

    Attributes:
        max_label_tokens (`int`): the most new tokens (EOS included) any label takes: a ``max_new_tokens``
            that guarantees every row ends with EOS.
        allowed_ids_per_state (`tuple[tuple[int, ...], ...]`): the ids allowed in each state of :meth:`states`.
    """

    supports_continuous_batching = False

    def __init__(self, tokenizer: PreTrainedTokenizerBase, score_decimals: int = 4) -> None:
        if tokenizer.eos_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("`tokenizer` must define `eos_token_id` and `pad_token_id`")
        self.grammar = UniversalLabelGrammar(score_decimals)
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id
        self.tokenizer_size = len(tokenizer)
        self.max_label_tokens = self.grammar.max_label_length() + 1

        special_ids = set(tokenizer.all_special_ids)
        trie = _VocabularyTrie()
        for token_id, piece in enumerate(tokenizer.convert_ids_to_tokens(list(range(self.tokenizer_size)))):
            if token_id not in special_ids and piece:
                trie.insert(piece, token_id)

        num_grammar_states = self.grammar.num_states
        self.finished_state = num_grammar_states
        self.dead_state = num_grammar_states + 1
        self.initial_state = self.grammar.initial_state
        per_state = [_token_transitions(self.grammar, trie, state) for state in range(num_grammar_states)]
        for state, reached in enumerate(per_state):
            if not reached and state not in self.grammar.accepting:
                piece_chars = "".join(sorted(self.grammar.transitions[state]))
                raise ValueError(f"the tokenizer has no token for grammar state {state} (expects one of {piece_chars!r})")

        # Column 0 of the transition table stands for every token that no state accepts.
        relevant_ids = sorted({token_id for reached in per_state for token_id in reached} | {self.eos_token_id})
        column_of = {token_id: column for column, token_id in enumerate(relevant_ids, start=1)}
        transition = np.full((num_grammar_states + 2, len(relevant_ids) + 1), self.dead_state, dtype=np.int64)
        transition[self.finished_state, :] = self.finished_state
        allowed_ids: list[list[int]] = []
        for state, reached in enumerate(per_state):
            for token_id, next_state in reached.items():
                transition[state, column_of[token_id]] = next_state
            ids = sorted(reached)
            if state in self.grammar.accepting:
                transition[state, column_of[self.eos_token_id]] = self.finished_state
                ids.append(self.eos_token_id)
            allowed_ids.append(ids)
        allowed_ids.append(sorted({self.pad_token_id, self.eos_token_id}))  # finished rows
        allowed_ids.append([self.eos_token_id])  # dead rows (a prefix not produced under this processor)
        self.allowed_ids_per_state: tuple[tuple[int, ...], ...] = tuple(tuple(ids) for ids in allowed_ids)

        # Ids past the tokenizer (a model's padded vocabulary) are clamped onto one extra column-0 entry.
        token_column = np.zeros(self.tokenizer_size + 1, dtype=np.int64)
        token_column[relevant_ids] = np.arange(1, len(relevant_ids) + 1)
        # Allowed ids per state, padded to a common width by repeating the state's first id.
        width = max(len(ids) for ids in allowed_ids)
        allowed_index = np.array([ids + ids[:1] * (width - len(ids)) for ids in allowed_ids], dtype=np.int64)
        self._cpu_tables = tuple(torch.from_numpy(table) for table in (token_column, transition, allowed_index))
        self._tables: dict[torch.device, tuple[torch.Tensor, ...]] = {}
        self._previous_call: Optional[tuple[torch.LongTensor, torch.LongTensor]] = None

    def _tables_for(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Return (column per token id, transition table, padded allowed ids per state) on `device`."""
        if device not in self._tables:
            self._tables[device] = tuple(table.to(device) for table in self._cpu_tables)
        return self._tables[device]

    def states(self, input_ids: torch.LongTensor) -> torch.LongTensor:
        """Return the grammar state of every row of `input_ids` (decoder start token first), shape ``(rows,)``.

        Besides the automaton states, ``finished_state`` marks rows past EOS and ``dead_state`` rows whose
        ids left the grammar.
        """
        token_column, transition, _ = self._tables_for(input_ids.device)
        previous = self._previous_call
        if previous is not None and self._extends(input_ids, previous[0]):
            # Greedy decoding: the rows are the previous call's rows plus one id, so one step suffices.
            state = transition[previous[1], token_column[input_ids[:, -1].clamp(max=self.tokenizer_size)]]
        else:
            columns = token_column[input_ids[:, 1:].clamp(max=self.tokenizer_size)]
            state = torch.full((input_ids.shape[0],), self.initial_state, dtype=torch.long, device=input_ids.device)
            for position in range(columns.shape[1]):
                state = transition[state, columns[:, position]]
        self._previous_call = (input_ids.clone(), state)
        return state

    @staticmethod
    def _extends(input_ids: torch.LongTensor, previous_ids: torch.LongTensor) -> bool:
        """Whether each row of `input_ids` is the same row of `previous_ids` plus one id."""
        rows, length = input_ids.shape
        return (
            previous_ids.shape == (rows, length - 1)
            and previous_ids.device == input_ids.device
            and length > 1
            and torch.equal(previous_ids, input_ids[:, :-1])
        )

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Return `scores` with ``-inf`` for every token that cannot continue each row's label."""
        if input_ids.shape[0] != scores.shape[0]:
            raise ValueError(f"`input_ids` has {input_ids.shape[0]} rows but `scores` has {scores.shape[0]}")
        if scores.shape[-1] < self.tokenizer_size:
            raise ValueError(f"`scores` has {scores.shape[-1]} columns, fewer than the tokenizer's {self.tokenizer_size}")
        _, _, allowed_index = self._tables_for(scores.device)
        allowed = allowed_index[self.states(input_ids)]
        # Writing the few allowed scores into a -inf tensor is much cheaper than masking the whole vocabulary.
        constrained = torch.full_like(scores, -float("inf"))
        return constrained.scatter_(1, allowed, scores.gather(1, allowed))

    def allowed_token_ids(self, input_ids: Union[torch.Tensor, Sequence[int]]) -> list[int]:
        """Return the ids allowed after one sequence of ids (decoder start token first)."""
        row = torch.as_tensor(input_ids, dtype=torch.long).reshape(1, -1)
        return list(self.allowed_ids_per_state[int(self.states(row)[0])])

    def label_candidate_ids(self, labels: torch.LongTensor) -> torch.LongTensor:
        """Return, for every position of teacher-forced `labels` `(rows, length)` (-100 = ignored), the ids this
        processor allows there given the labels before it: `(rows, length, width)`, padded with -1.

        These are the choices structured decoding makes, so a cross-entropy over them is the likelihood of the
        constrained decoder (the model's `label_candidate_ids`). An ignored position gets the single candidate
        ``pad_token_id``. Raises `ValueError` naming the row and position of a label id the grammar does not
        allow there (a target that is not a universal label at this processor's `score_decimals`).
        """
        if labels.ndim != 2:
            raise ValueError(f"`labels` must have shape (rows, length), got {tuple(labels.shape)}")
        token_column, transition, _ = self._tables_for(labels.device)
        width = max(len(ids) for ids in self.allowed_ids_per_state)
        padded = [list(ids) + [-1] * (width - len(ids)) for ids in self.allowed_ids_per_state]
        allowed = torch.tensor(padded, dtype=torch.long, device=labels.device)
        ignored = torch.full((width,), -1, dtype=torch.long, device=labels.device)
        ignored[0] = self.pad_token_id
        rows, length = labels.shape
        candidates = ignored.repeat(rows, length, 1)
        state = torch.full((rows,), self.initial_state, dtype=torch.long, device=labels.device)
        for position in range(length):
            ids = labels[:, position]
            kept = ids != -100
            here = allowed[state]
            member = (here == ids.unsqueeze(1)).any(dim=1)
            bad = kept & ~member
            if bool(bad.any()):
                row = int(bad.nonzero()[0, 0])
                raise ValueError(
                    f"`labels` row {row}, position {position}: token id {int(ids[row])} is not allowed there by the "
                    f"universal-label grammar (score_decimals={self.grammar.score_decimals}); the targets must be "
                    "universal labels followed by EOS")
            candidates[kept, position] = here[kept]
            next_state = transition[state, token_column[ids.clamp(min=0, max=self.tokenizer_size)]]
            state = torch.where(kept, next_state, state)
        return candidates

    def prefix_allowed_tokens_fn(self, batch_id: int, input_ids: torch.Tensor) -> list[int]:
        """The same constraint as a ``generate(prefix_allowed_tokens_fn=...)`` callback (slower than the processor)."""
        return self.allowed_token_ids(input_ids)
