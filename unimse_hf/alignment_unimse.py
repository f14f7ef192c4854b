# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Word-to-token alignment of frame sequences: the one module that reads word timestamps.

The processor maps every token to the transcript word it starts in (:func:`token_word_ids`);
:class:`WordLayout` reads and checks the word timestamps of a batch once (count against the words,
format, finiteness, order) and lays the words of all samples out side by side; :func:`align_to_tokens`
gives each token the mean of its word's frames for one modality, for the whole batch at once (the
clips concatenated once and every word's frames summed by one `embedding_bag` call, see
:func:`range_sums`). This module is uploaded with checkpoints: it imports only torch, numpy and the
standard library.

Word timestamps, per sample, are one entry per whitespace-separated word, each either a
``(start, end)`` pair of seconds from the clip start or a mapping with ``"start"`` and ``"end"`` keys
(Whisper's ``{"word", "start", "end"}`` and the data rows' ``word_timestamps``; other keys are not
read). ``(word, start, end)`` triples and anything else are refused. A word may end at most
:data:`CLIP_END_TOLERANCE_SECONDS` past the end of a clip (frame-count rounding, modalities a few
frames apart); a word ending later (milliseconds given as seconds, timestamps of the whole video) is an
error naming the sample and the word.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import chain
from typing import Any, Optional, Sequence

import numpy as np
import torch

CLIP_END_TOLERANCE_SECONDS = 0.25
"""How far (seconds) a word may end past the end of its clip; later ends are refused."""

_WORD = re.compile(r"\S+")



def sample_error(error_type: type, index: int, message: str) -> Exception:
    """An exception of `error_type` about sample `index` of a batch; `sample_index` lets callers name the row."""
    error = error_type(message)
    error.sample_index = index
    return error


def token_word_ids(texts: Sequence[str], prefix_length: int, offsets: Sequence[Any],
                   special_tokens_mask: Sequence[Any]) -> tuple[np.ndarray, list[list[str]]]:
    """Per token, the index of the transcript word it starts in, and the words of every text.

    Args:
        texts: the transcripts, without the task prefix.
        prefix_length: characters of the task prefix put before every text when tokenizing.
        offsets, special_tokens_mask: the tokenizer's `offset_mapping` and `special_tokens_mask` rows.

    Returns:
        A `(batch, tokens)` int64 array (-1 for prefix, special and padding tokens) and, per text, its
        whitespace-separated words.
    """
    rows, words = [], []
    for i, text in enumerate(texts):
        matches = list(_WORD.finditer(text))
        starts = np.array([m.start() for m in matches], dtype=np.int64) + prefix_length
        spans = np.asarray(offsets[i], dtype=np.int64).reshape(-1, 2)
        special = np.asarray(special_tokens_mask[i], dtype=bool)
        ids = np.searchsorted(starts, spans[:, 0], side="right") - 1
        ids[(spans[:, 0] < prefix_length) | special | (spans[:, 1] <= spans[:, 0])] = -1
        rows.append(ids)
        words.append([m.group() for m in matches])
    table = np.full((len(rows), max(len(r) for r in rows)), -1, dtype=np.int64)
    for i, ids in enumerate(rows):
        table[i, : len(ids)] = ids
    return table, words


def _single_sample(word_timestamps: Sequence[Any]) -> bool:
    """Whether `word_timestamps` is one sample's entries (pairs of numbers or mappings) rather than a batch."""
    first = next((entry for entry in word_timestamps if entry is not None), None)
    if isinstance(first, Mapping):
        return True
    if isinstance(first, np.ndarray):
        return first.ndim == 1 and first.dtype != object
    return isinstance(first, (list, tuple)) and len(first) > 0 and isinstance(first[0], (int, float, np.number))


def _sample_spans(sample: Any, index: int) -> np.ndarray:
    """One sample's timestamps as a `(words, 2)` float64 array, or a clear error naming `word_timestamps[index]`."""
    name = f"`word_timestamps[{index}]`"
    if isinstance(sample, (str, bytes, Mapping)) or not hasattr(sample, "__len__"):
        raise sample_error(TypeError, index, f"{name} must be a list with one (start, end) pair or "
                                             f"{{'start', 'end'}} mapping per word, got {type(sample).__name__}")
    entries = list(sample)
    mappings = [isinstance(entry, Mapping) for entry in entries]
    if any(mappings):
        if not all(mappings):
            raise sample_error(TypeError, index, f"{name} mixes mappings and pairs; use one form per sample")
        for j, entry in enumerate(entries):
            if "start" not in entry or "end" not in entry:
                raise sample_error(ValueError, index, f"`word_timestamps[{index}][{j}]` is a mapping without 'start' and 'end' keys: "
                                                      f"{sorted(map(str, entry))}")
        entries = [(entry["start"], entry["end"]) for entry in entries]
    try:
        spans = np.array(entries)
    except ValueError:
        raise sample_error(ValueError, index, f"{name} must hold one (start, end) pair per word; its entries have "
                                              "different lengths") from None
    if spans.size == 0:
        return np.zeros((0, 2))
    if spans.ndim != 2 or spans.shape[1] != 2:
        raise sample_error(ValueError, index, f"{name} must hold one (start, end) pair per word, got shape "
                                              f"{spans.shape}; (word, start, end) triples are not read, pass "
                                              "{'word', 'start', 'end'} mappings or (start, end) pairs")
    if spans.dtype.kind not in "iuf":
        raise sample_error(TypeError, index, f"{name} must hold real numbers of seconds, got dtype {spans.dtype}")
    return spans.astype(np.float64)


def _plain_spans(samples: Sequence[Any]) -> Optional[np.ndarray]:
    """All spans as one `(words, 2)` float64 array when every sample is a list (or tuple) of `(start, end)`
    tuples (or lists) of real numbers, the usual form; None for anything else (mappings, numpy arrays,
    malformed entries, other types), which :func:`_sample_spans` reads and checks sample by sample.

    The structure is checked over the Python objects at C speed (`set(map(type, ...))`), so that numpy
    converts one flat list of numbers instead of discovering the shape of a list of tuples.
    """
    present = [sample for sample in samples if sample is not None]
    if not set(map(type, present)) <= {list, tuple}:
        return None
    entries = list(chain.from_iterable(present))
    if not (set(map(type, entries)) <= {list, tuple} and set(map(len, entries)) <= {2}):
        return None
    try:
        values = np.array(list(chain.from_iterable(entries)))
    except (TypeError, ValueError):
        return None
    if values.ndim != 1 or values.dtype.kind not in "iuf":
        return None
    return values.astype(np.float64, copy=False).reshape(-1, 2)


def _read_timestamps(word_timestamps: Any, batch: int) -> tuple[list[bool], np.ndarray, np.ndarray]:
    """Whether each sample has timestamps, the count per sample and all spans concatenated (seconds)."""
    if isinstance(word_timestamps, (str, bytes, Mapping)) or not hasattr(word_timestamps, "__len__"):
        raise TypeError(f"`word_timestamps` must be a list with one entry per sample, got {type(word_timestamps).__name__}")
    samples = list(word_timestamps)
    if batch == 1 and _single_sample(samples):
        samples = [samples]
    if len(samples) != batch:
        raise ValueError(f"`word_timestamps` has {len(samples)} samples but the batch has {batch}")
    timed = [sample is not None for sample in samples]
    spans = _plain_spans(samples)
    if spans is not None:
        counts = np.array([len(sample) if sample is not None else 0 for sample in samples], dtype=np.int64)
        return timed, counts, spans
    per_sample = [_sample_spans(sample, i) if sample is not None else np.zeros((0, 2)) for i, sample in enumerate(samples)]
    counts = np.array([len(spans) for spans in per_sample], dtype=np.int64)
    return timed, counts, np.concatenate(per_sample)


class WordLayout:
    """The words of a batch, shared by both modalities, with their timestamps read and checked once.

    Per token its global word index (`token_words`, -1 for none), per word its sample (`word_sample`) and
    its span (`spans`: seconds from the timestamps, or for a sample without timestamps a fraction of the
    clip, the words spread in proportion to their character lengths; `proportional` says which).

    Args:
        token_word_ids: per sample, the word index of each token (-1 for tokens of no word), as lists or a
            `(batch, tokens)` array.
        word_timestamps: per sample, one `(start, end)` pair or `{"start", "end"}` mapping per word, or None
            (see the module docstring); a single sample's list is accepted for a batch of one.
        words: per sample, its whitespace-separated words. With them, a sample's timestamps must number
            exactly its words and errors name the word; without, they must cover every word a token has.
    """

    def __init__(self, token_word_ids: Any, word_timestamps: Optional[Sequence[Any]] = None,
                 words: Optional[Sequence[Sequence[str]]] = None):
        token_words = _token_table(token_word_ids)
        batch = token_words.shape[0]
        if words is not None and len(words) != batch:
            raise ValueError(f"`words` has {len(words)} samples but `token_word_ids` has {batch}")
        needed = token_words.max(axis=1, initial=-1) + 1
        if word_timestamps is None:
            timed, counts, timed_spans = [False] * batch, np.zeros(batch, dtype=np.int64), np.zeros((0, 2))
        else:
            timed, counts, timed_spans = _read_timestamps(word_timestamps, batch)
        known = np.array([len(w) for w in words], dtype=np.int64) if words is not None else None
        expected = known if known is not None else needed
        word_counts = np.where(timed, counts, expected)
        miscounted = np.asarray(timed, dtype=bool) & ((counts != expected) if known is not None else (counts < expected))
        for i in np.flatnonzero(miscounted | (needed > word_counts))[:1]:  # the first bad sample, if any
            if miscounted[i]:
                text = f"`text[{i}]` has {expected[i]} words" if known is not None else f"the tokens need {expected[i]} words"
                raise sample_error(ValueError, int(i), f"`word_timestamps[{i}]` has {counts[i]} spans but {text}")
            raise sample_error(ValueError, int(i), f"`token_word_ids[{i}]` refers to word {needed[i] - 1} but the "
                                                   f"sample has {word_counts[i]} words")
        self.batch_size = batch
        self.words = words
        self.word_sample = np.repeat(np.arange(batch), word_counts)
        self.word_offsets = np.cumsum(word_counts) - word_counts
        self.token_words = np.where(token_words >= 0, token_words + self.word_offsets[:, None], -1)
        self.has_timestamps = any(timed)
        if all(timed):  # the usual case: the timestamps are the spans
            self.proportional = np.zeros(len(self.word_sample), dtype=bool)
            self.spans = self._checked(timed_spans, self.word_sample)
        else:
            self.proportional = ~np.asarray(timed, dtype=bool)[self.word_sample]
            self.spans = self._fractions(word_counts)
            if self.has_timestamps:
                self.spans[~self.proportional] = self._checked(timed_spans, self.word_sample[~self.proportional])

    def describe_word(self, word: int) -> str:
        """`word_timestamps[i]` and the word (global index `word`) as an error names them."""
        sample = int(self.word_sample[word])
        position = int(word - self.word_offsets[sample])
        text = f" ({self.words[sample][position]!r})" if self.words is not None else ""
        return f"`word_timestamps[{sample}]` word {position}{text}"

    def _checked(self, spans: np.ndarray, sample: np.ndarray) -> np.ndarray:
        """Validate all timestamps at once; the error names the first offending sample and word."""
        starts, ends = spans[:, 0], spans[:, 1]
        backwards = (starts[1:] < starts[:-1]) & (sample[1:] == sample[:-1])
        # NaN fails every comparison, so these few comparisons accept exactly the finite, ordered spans.
        if ((starts >= 0) & (ends >= starts) & (ends < np.inf)).all() and not backwards.any():
            return spans
        problems = [
            (~np.isfinite(spans).all(axis=1), "is NaN or infinite"),
            ((spans < 0).any(axis=1), "must be non-negative seconds"),
            (ends < starts, "ends before it starts"),
            (np.concatenate([[False], backwards]), "starts before the previous word (words must be in order)"),
        ]
        timed_words = np.flatnonzero(~self.proportional)
        for bad, message in problems:
            if bad.any():
                first = int(np.argmax(bad))
                raise sample_error(ValueError, int(sample[first]),
                                   f"{self.describe_word(timed_words[first])} {message}: {tuple(spans[first])}")
        raise AssertionError("unreachable: a span failed the combined check but no single one")

    def _fractions(self, word_counts: np.ndarray) -> np.ndarray:
        """(words, 2) start/end as fractions of the clip, proportional to character length."""
        if self.words is None:
            lengths = np.ones(int(word_counts.sum()))
        else:
            lengths = np.array([len(word) for sample in self.words for word in sample], dtype=np.float64)
        ends = np.cumsum(lengths)
        before = np.concatenate([[0.0], ends])[self.word_offsets][self.word_sample]
        totals = np.bincount(self.word_sample, weights=lengths, minlength=self.batch_size)[self.word_sample]
        totals = np.where(totals > 0, totals, 1.0)
        return np.stack([ends - lengths - before, ends - before], axis=1) / totals[:, None]


def _token_table(token_word_ids: Any) -> np.ndarray:
    """`token_word_ids` as a `(batch, tokens)` int64 array padded with -1."""
    if isinstance(token_word_ids, np.ndarray):
        if token_word_ids.ndim != 2 or token_word_ids.dtype.kind not in "iu":
            raise ValueError(f"`token_word_ids` must be a 2-D integer array, got {token_word_ids.dtype} {token_word_ids.shape}")
        return token_word_ids.astype(np.int64, copy=False)
    rows = [np.asarray(ids, dtype=np.int64).reshape(-1) for ids in token_word_ids]
    if not rows:
        raise ValueError("`token_word_ids` is an empty batch")
    table = np.full((len(rows), max(len(r) for r in rows)), -1, dtype=np.int64)
    for i, ids in enumerate(rows):
        table[i, : len(ids)] = ids
    return table


def frame_ranges_of_spans(spans: np.ndarray, frame_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame index ranges [low, high) whose centres (i + 0.5) lie in each [start, end) span (in frame units).

    `frame_counts` gives, per span, the number of frames of its clip (> 0). A span containing no frame
    centre takes the frame nearest its midpoint.
    """
    bounds = np.ceil(spans - 0.5)  # per span, the first frame whose centre is at or after start / end
    np.maximum(bounds, 0, out=bounds)
    np.minimum(bounds, frame_counts[:, None], out=bounds)
    low, high = bounds.T.astype(np.int64)
    empty = np.flatnonzero(high <= low)
    if len(empty):
        nearest = np.floor(spans[empty].sum(axis=1) / 2).clip(0, frame_counts[empty] - 1).astype(np.int64)
        low[empty], high[empty] = nearest, nearest + 1
    return low, high


def range_sums(clips: Sequence[np.ndarray], low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, bool]:
    """Sums of `frames[low[i]:high[i]]` for every i, and whether every frame (inside a range or not) is finite.

    `frames` is the float32 concatenation of `clips` (one or more `(frames, dim)` arrays), copied once. The sums are
    one `embedding_bag(mode="sum")` call, torch's segmented row sum: each bag is a list of frame indices,
    summed in order in float32 (as a loop adding the frames one by one would). For the usual sorted,
    disjoint ranges (word spans) the bags are the alternating gaps and ranges of the frame axis, so the
    indices are just `0, 1, ..., frames - 1`; overlapping ranges list their frames and add one bag of
    the frames no range covers. Every frame lies in some bag, so the finiteness check reads the bag
    sums. A sum can only overflow to infinity when frames hold values near float32's limit, so a False
    flag asks the caller to check the frames themselves.
    """
    frames = torch.from_numpy(np.concatenate(clips, dtype=np.float32))
    count = frames.shape[0]
    if len(low) == 0 or np.all(low[1:] >= high[:-1]):
        starts = np.empty(2 * len(low) + 1, dtype=np.int64)
        starts[0], starts[1::2], starts[2::2] = 0, low, high
        sums = torch.nn.functional.embedding_bag(torch.from_numpy(np.arange(count)), frames, torch.from_numpy(starts),
                                                 mode="sum").numpy()
        return sums[1::2], bool(np.isfinite(sums.sum()))
    sizes = high - low
    starts = np.cumsum(sizes) - sizes
    inside = np.arange(int(sizes.sum()), dtype=np.int64) - np.repeat(starts - low, sizes)
    coverage = np.cumsum(np.bincount(low, minlength=count + 1) - np.bincount(high, minlength=count + 1))[:count]
    outside = np.flatnonzero(coverage == 0)
    sums = torch.nn.functional.embedding_bag(torch.from_numpy(np.concatenate([inside, outside])), frames,
                                             torch.from_numpy(np.append(starts, len(inside))), mode="sum").numpy()
    return sums[:-1], bool(np.isfinite(sums.sum()))


def segment_means(frames: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Means of `frames[low[i]:high[i]]` for every i (each range non-empty)."""
    sums, _ = range_sums([np.ascontiguousarray(frames, dtype=np.float32)], low, high)
    return sums / (high - low)[:, None].astype(np.float32)


def align_to_tokens(samples: Sequence[Optional[np.ndarray]], layout: WordLayout, rate: Optional[float], dim: int,
                    padding_value: float, modality: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """Token-aligned features of one modality for a batch: each token gets the mean of its word's frames.

    Args:
        samples: per sample a float32 `(frames, dim)` array, or None where the modality is missing.
        layout: the batch's words (:class:`WordLayout`).
        rate: frames per second of the modality (needed when the layout has timestamps).
        dim, padding_value: frame size, and the value of tokens without frames.
        modality: `"acoustic"` or `"visual"`, for error messages.

    Returns:
        `(batch, tokens, dim)` features, the `(batch, tokens)` int64 mask (1 where a token got frames) and
        whether all frames were finite (False asks the caller to check them, see :func:`range_sums`).
    """
    if layout.batch_size != len(samples):
        raise ValueError(f"`token_word_ids` has {layout.batch_size} samples but `{modality}` has {len(samples)}")
    if layout.has_timestamps and rate is None:
        raise ValueError(f"`word_timestamps` need `{modality}_frame_rate`; set it on the feature extractor")
    counts = np.array([0 if frames is None else frames.shape[0] for frames in samples], dtype=np.int64)
    word_frames = counts[layout.word_sample]
    spans = layout.spans * np.where(layout.proportional, word_frames, rate or 1.0)[:, None]
    late = (word_frames > 0) & ~layout.proportional & (layout.spans[:, 1] > word_frames / (rate or 1.0) + CLIP_END_TOLERANCE_SECONDS)
    if late.any():
        word = int(np.argmax(late))
        sample = int(layout.word_sample[word])
        raise sample_error(ValueError, sample, (
            f"{layout.describe_word(word)} ends at {layout.spans[word, 1]:g} s, past the end of the {modality} clip "
            f"({counts[sample] / rate:g} s = {counts[sample]} frames at {rate:g} Hz); timestamps must be seconds "
            "from the clip start"))
    present = [frames for frames in samples if frames is not None and frames.shape[0]]
    usable = np.flatnonzero(word_frames)  # the words whose sample has frames of this modality
    low, high = frame_ranges_of_spans(spans[usable], word_frames[usable])
    clip_starts = (np.cumsum(counts) - counts)[layout.word_sample[usable]]
    sums, finite = range_sums(present, low + clip_starts, high + clip_starts) if present else (np.zeros((0, dim), np.float32), True)
    # One row per usable word (its mean) and a last row of padding, which the words without frames and the
    # tokens of no word (-1: the last entry of row_of_word) point to.
    table = np.empty((len(usable) + 1, dim), dtype=np.float32)
    np.divide(sums, (high - low).astype(np.float32)[:, None], out=table[:-1])
    table[-1] = padding_value
    row_of_word = np.full(len(word_frames) + 1, len(usable))
    row_of_word[usable] = np.arange(len(usable))
    token_rows = row_of_word[layout.token_words]
    return table[token_rows], (token_rows < len(usable)).astype(np.int64), finite


__all__ = ["CLIP_END_TOLERANCE_SECONDS", "WordLayout", "align_to_tokens", "frame_ranges_of_spans", "range_sums",
           "sample_error", "segment_means", "token_word_ids"]
