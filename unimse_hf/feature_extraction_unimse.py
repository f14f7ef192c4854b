# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""UniMSEFeatureExtractor: validates, pads and (optionally) aligns acoustic and visual frame sequences."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch

from transformers.feature_extraction_utils import BatchFeature, FeatureExtractionMixin



def _as_frames(value: Any, name: str, dim: int) -> np.ndarray:
    """Convert one sample's frames to a float32 (frames, dim) array, or raise naming `name`.

    Finiteness is checked for the whole batch at once by `_check_finite`.
    """
    if isinstance(value, np.ndarray) and value.dtype == np.float32 and value.ndim == 2 and value.shape[1] == dim:
        return value
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`{name}` must be a 2-D numeric array of shape (frames, {dim}): {error}") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"`{name}` must be numeric, got dtype {array.dtype}")
    if array.ndim == 2 and array.shape[0] == 0:
        array = array.reshape(0, array.shape[1] if array.shape[1] else dim)
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValueError(f"`{name}` must have shape (frames, {dim}), got {array.shape}")
    return array.astype(np.float32, copy=False)


def _check_finite(samples: list[Optional[np.ndarray]], frames: np.ndarray, name: str) -> None:
    """Raise naming the first sample of `name` with NaN/inf, given the batch's concatenated `frames`."""
    if np.isfinite(frames).all():
        return
    for index, sample in enumerate(samples):
        if sample is not None and not np.isfinite(sample).all():
            label = name if len(samples) == 1 else f"{name}[{index}]"
            raise ValueError(f"`{label}` contains NaN or infinite values")


def frame_ranges_of_spans(spans: np.ndarray, frame_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame index ranges [low, high) whose centres (i + 0.5) lie in each [start, end) span (in frame units).

    `frame_counts` gives, per span, the number of frames of its clip (> 0). A span containing no frame
    centre takes the frame nearest its midpoint.
    """
    low = np.clip(np.ceil(spans[:, 0] - 0.5), 0, frame_counts).astype(np.int64)
    high = np.clip(np.ceil(spans[:, 1] - 0.5), 0, frame_counts).astype(np.int64)
    empty = high <= low
    nearest = np.clip(np.floor(spans.mean(axis=1)), 0, frame_counts - 1).astype(np.int64)
    return np.where(empty, nearest, low), np.where(empty, nearest + 1, high)


def segment_means(frames: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Means of `frames[low[i]:high[i]]` for every i (each range non-empty).

    One `index_add_` over the frames: without the slow column-wise accumulation of `np.cumsum` or
    `np.add.reduceat` along axis 0. Sorted, disjoint ranges (the usual word spans) map each frame to its
    range directly; overlapping ranges gather every (range, frame) pair first.
    """
    sizes = high - low
    if len(low) > 1 and (np.all(low[1:] >= high[:-1])):
        frame_range = np.searchsorted(low, np.arange(frames.shape[0]), side="right") - 1
        outside = (frame_range < 0) | (np.arange(frames.shape[0]) >= high[np.maximum(frame_range, 0)])
        index = torch.from_numpy(np.where(outside, len(low), frame_range))
        values = torch.from_numpy(frames)
    else:
        index = torch.from_numpy(np.repeat(np.arange(len(low)), sizes))
        frame_of = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes - low, sizes)
        values = torch.from_numpy(frames)[torch.from_numpy(frame_of)]
    sums = torch.zeros((len(low) + 1, frames.shape[1]), dtype=torch.float32)
    sums.index_add_(0, index, values)
    return sums[:-1].numpy() / sizes[:, None].astype(np.float32)


class UniMSEFeatureExtractor(FeatureExtractionMixin):
    r"""
    Prepares acoustic and visual frame sequences for [`UniMSEForConditionalGeneration`].

    Frame-level mode pads each modality to the longest sample with an attention mask (1 = valid
    frame). Token-aligned mode (`token_word_ids` given) averages, for every word, the frames inside its
    time span and gives that mean to each of the word's sub-word tokens; tokens of no word (task prefix,
    special tokens) are masked. Without word timestamps the words are spread over the clip in
    proportion to their character lengths.

    Args:
        acoustic_dim (`int`, defaults to 64): size of one acoustic frame.
        visual_dim (`int`, defaults to 64): size of one visual frame.
        acoustic_frame_rate (`float`, *optional*): acoustic frames per second (needed with word timestamps).
        visual_frame_rate (`float`, *optional*): visual frames per second (needed with word timestamps).
        acoustic_feature_kind (`str`, defaults to `"unspecified"`): name of the acoustic extractor the model
            was trained with; features announced as another kind are refused.
        visual_feature_kind (`str`, defaults to `"unspecified"`): the same for visual features.
        padding_value (`float`, defaults to 0.0): value of padded frames.
    """

    model_input_names = ["acoustic_features", "acoustic_attention_mask", "visual_features", "visual_attention_mask"]

    def __init__(
        self,
        acoustic_dim: int = 64,
        visual_dim: int = 64,
        acoustic_frame_rate: Optional[float] = None,
        visual_frame_rate: Optional[float] = None,
        acoustic_feature_kind: str = "unspecified",
        visual_feature_kind: str = "unspecified",
        padding_value: float = 0.0,
        **kwargs,
    ):
        for name, value in (("acoustic_dim", acoustic_dim), ("visual_dim", visual_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        for name, value in (("acoustic_frame_rate", acoustic_frame_rate), ("visual_frame_rate", visual_frame_rate)):
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"`{name}` must be None or a positive number, got {value!r}")
        self.acoustic_dim = acoustic_dim
        self.visual_dim = visual_dim
        self.acoustic_frame_rate = acoustic_frame_rate
        self.visual_frame_rate = visual_frame_rate
        self.acoustic_feature_kind = acoustic_feature_kind
        self.visual_feature_kind = visual_feature_kind
        self.padding_value = padding_value
        super().__init__(**kwargs)

    def check_feature_kind(self, modality: str, kind: Optional[str]) -> None:
        """Refuse features announced as `kind` when this extractor expects another kind."""
        expected = getattr(self, f"{modality}_feature_kind")
        if kind is not None and expected != "unspecified" and kind != expected:
            raise ValueError(f"`{modality}` features are of kind {kind!r}, but this checkpoint was trained on "
                             f"{expected!r} features; extract them with the matching extractor")

    def _batch(self, value: Any, name: str, dim: int) -> list[Optional[np.ndarray]]:
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray) and value.ndim == 3:
            return [_as_frames(sample, name, dim) for sample in value]
        if isinstance(value, np.ndarray) and value.ndim == 2:
            return [_as_frames(value, name, dim)]
        if isinstance(value, (list, tuple)):
            if len(value) == 0:
                raise ValueError(f"`{name}` is an empty batch")
            first = next((v for v in value if v is not None), None)
            if first is not None and np.ndim(first) == 1:  # a single sample given as a list of frames
                return [_as_frames(value, name, dim)]
            return [None if sample is None else _as_frames(sample, f"{name}[{i}]", dim) for i, sample in enumerate(value)]
        raise TypeError(f"`{name}` must be an array of shape (frames, {dim}), a (batch, frames, {dim}) array "
                        f"or a list of such arrays, got {type(value).__name__}")

    def __call__(
        self,
        acoustic: Any = None,
        visual: Any = None,
        token_word_ids: Optional[Sequence[Sequence[int]]] = None,
        word_timestamps: Optional[Sequence[Any]] = None,
        word_lengths: Optional[Sequence[Sequence[int]]] = None,
        acoustic_feature_kind: Optional[str] = None,
        visual_feature_kind: Optional[str] = None,
        return_tensors: Optional[str] = None,
        **kwargs,
    ) -> BatchFeature:
        """Pad (or token-align) a batch of acoustic and/or visual frame sequences.

        Args:
            acoustic, visual: per sample a (frames, dim) array; a list of them, or a (batch, frames, dim)
                array. `None` for the whole modality omits it; a `None` sample marks it missing there.
            token_word_ids: per sample, the word index of each token (-1 for tokens of no word). When
                given, features are aligned to tokens instead of padded frame by frame.
            word_timestamps: per sample, (start, end) seconds of each word; needs the frame rates.
            word_lengths: per sample, the character length of each word (for proportional spreading
                when a sample has no timestamps).
            acoustic_feature_kind, visual_feature_kind: the extractor that produced the features, if known.
            return_tensors: `"pt"`, `"np"` or None (lists).
        """
        self.check_feature_kind("acoustic", acoustic_feature_kind)
        self.check_feature_kind("visual", visual_feature_kind)
        data: dict[str, Any] = {}
        batch_size = None
        layout: Optional[WordLayout] = None
        for modality, value in (("acoustic", acoustic), ("visual", visual)):
            if value is None:
                continue
            dim = getattr(self, f"{modality}_dim")
            samples = self._batch(value, modality, dim)
            if batch_size is not None and len(samples) != batch_size:
                raise ValueError(f"`{modality}` has {len(samples)} samples but `acoustic` has {batch_size}")
            batch_size = len(samples)
            if token_word_ids is not None:
                if layout is None:
                    layout = WordLayout(token_word_ids, word_timestamps, word_lengths)
                features, mask = self._align(modality, samples, layout)
            else:
                features, mask = self._pad(samples, dim)
                _check_finite(samples, features, modality)
            data[f"{modality}_features"] = features
            data[f"{modality}_attention_mask"] = mask
        return BatchFeature(data=data, tensor_type=return_tensors)

    def _pad(self, samples: list[Optional[np.ndarray]], dim: int) -> tuple[np.ndarray, np.ndarray]:
        longest = max([1] + [s.shape[0] for s in samples if s is not None])
        features = np.full((len(samples), longest, dim), self.padding_value, dtype=np.float32)
        mask = np.zeros((len(samples), longest), dtype=np.int64)
        for i, sample in enumerate(samples):
            if sample is not None and sample.shape[0]:
                features[i, : sample.shape[0]] = sample
                mask[i, : sample.shape[0]] = 1
        return features, mask

    def _align(self, modality: str, samples: list[Optional[np.ndarray]], layout: "WordLayout") -> tuple[np.ndarray, np.ndarray]:
        """Token-aligned features for a batch, in one pass over all of its frames.

        Every word of every sample is one frame range in the concatenated frames: one `reduceat` gives all
        word means and one gather gives every token its word's mean.
        """
        if layout.batch_size != len(samples):
            raise ValueError(f"`token_word_ids` has {layout.batch_size} samples but `{modality}` has {len(samples)}")
        rate = getattr(self, f"{modality}_frame_rate")
        if layout.has_timestamps and rate is None:
            raise ValueError(f"`word_timestamps` need `{modality}_frame_rate`; set it on the feature extractor")
        dim = getattr(self, f"{modality}_dim")
        counts = np.array([0 if frames is None else frames.shape[0] for frames in samples], dtype=np.int64)
        present = [frames for frames in samples if frames is not None and frames.shape[0]]
        all_frames = np.concatenate(present) if present else np.zeros((0, dim), dtype=np.float32)
        _check_finite(samples, all_frames, modality)
        features = np.full((*layout.token_words.shape, dim), self.padding_value, dtype=np.float32)
        word_frames = counts[layout.word_sample]
        usable = word_frames > 0
        token_usable = layout.token_words >= 0
        token_usable[token_usable] = usable[layout.token_words[token_usable]]
        if usable.any():
            spans = np.where(layout.proportional[:, None], layout.spans * word_frames[:, None],
                             layout.spans * (rate or 1.0))[usable]
            low, high = frame_ranges_of_spans(spans, word_frames[usable])
            offsets = (np.cumsum(counts) - counts)[layout.word_sample[usable]]
            word_means = np.zeros((len(usable), dim), dtype=np.float32)
            word_means[usable] = segment_means(all_frames, low + offsets, high + offsets)
            features[token_usable] = word_means[layout.token_words[token_usable]]
        return features, token_usable.astype(np.int64)


class WordLayout:
    """The words of a batch, shared by both modalities: per token its global word index, per word its
    sample and its span (seconds from timestamps, or a fraction of the clip spread by character length)."""

    def __init__(self, token_word_ids: Sequence[Sequence[int]], word_timestamps: Optional[Sequence[Any]],
                 word_lengths: Optional[Sequence[Sequence[int]]]):
        batch = len(token_word_ids)
        if word_timestamps is not None and len(word_timestamps) != batch:
            raise ValueError(f"`word_timestamps` has {len(word_timestamps)} samples but `token_word_ids` has {batch}")
        length = max(len(ids) for ids in token_word_ids)
        token_words = np.full((batch, length), -1, dtype=np.int64)
        for i, ids in enumerate(token_word_ids):
            token_words[i, : len(ids)] = ids
        needed = token_words.max(axis=1) + 1
        stamps = [None if word_timestamps is None else word_timestamps[i] for i in range(batch)]
        words = np.array([len(stamps[i]) if stamps[i] is not None else
                          len(word_lengths[i]) if word_lengths is not None else needed[i] for i in range(batch)])
        short = np.flatnonzero(needed > words)
        if short.size:
            i = int(short[0])
            raise ValueError(f"`word_timestamps[{i}]` has {words[i]} words but the text has {needed[i]}")
        self.batch_size = batch
        self.word_sample = np.repeat(np.arange(batch), words)
        offsets = np.cumsum(words) - words
        self.token_words = np.where(token_words >= 0, token_words + offsets[:, None], -1)
        self.proportional = np.array([stamps[i] is None for i in range(batch)], dtype=bool)[self.word_sample]
        self.has_timestamps = not self.proportional.all()
        self.spans = np.zeros((len(self.word_sample), 2))
        if self.has_timestamps:
            timed = [np.asarray(stamps[i], dtype=np.float64).reshape(-1, 2) for i in range(batch) if stamps[i] is not None]
            self.spans[~self.proportional] = self._checked(np.concatenate(timed), self.word_sample[~self.proportional])
        if not self.has_timestamps or self.proportional.any():
            self.spans[self.proportional] = self._fractions(word_lengths, words)[self.proportional]

    @staticmethod
    def _checked(spans: np.ndarray, sample: np.ndarray) -> np.ndarray:
        """Validate all timestamps at once; the error names the first offending sample."""
        problems = [
            (~np.isfinite(spans).all(axis=1), "contains NaN or infinite values"),
            ((spans < 0).any(axis=1), "must be non-negative seconds"),
            (spans[:, 1] < spans[:, 0], "has a span whose end is before its start"),
            (np.concatenate([[False], (np.diff(spans[:, 0]) < 0) & (sample[1:] == sample[:-1])]),
             "must be sorted by start time (words in order)"),
        ]
        for bad, message in problems:
            if bad.any():
                raise ValueError(f"`word_timestamps[{sample[np.argmax(bad)]}]` {message}")
        return spans

    def _fractions(self, word_lengths: Optional[Sequence[Sequence[int]]], words: np.ndarray) -> np.ndarray:
        """(words, 2) start/end as fractions of the clip, proportional to character length."""
        if word_lengths is None:
            lengths = np.ones(int(words.sum()))
        else:
            lengths = np.concatenate([np.asarray(word_lengths[i], dtype=np.float64).reshape(-1) if words[i] else
                                      np.zeros(0) for i in range(self.batch_size)])
        ends = np.cumsum(lengths)
        sample_start = (np.cumsum(words) - words)
        before = np.concatenate([[0.0], ends])[sample_start][self.word_sample]
        totals = np.bincount(self.word_sample, weights=lengths, minlength=self.batch_size)[self.word_sample]
        totals = np.where(totals > 0, totals, 1.0)
        return np.stack([ends - lengths - before, ends - before], axis=1) / totals[:, None]


__all__ = ["UniMSEFeatureExtractor", "WordLayout", "frame_ranges_of_spans", "segment_means"]
