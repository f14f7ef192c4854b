# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""UniMSEFeatureExtractor: validates, pads and (optionally) aligns acoustic and visual frame sequences."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np

from transformers.feature_extraction_utils import BatchFeature, FeatureExtractionMixin

FrameInput = Union[np.ndarray, "torch.Tensor", Sequence[Sequence[float]], None]  # noqa: F821
MODALITIES = ("acoustic", "visual")


def _as_frames(value: Any, name: str, dim: int) -> np.ndarray:
    """Convert one sample's frames to a float32 (frames, dim) array, or raise naming `name`."""
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
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return array


def check_word_timestamps(word_timestamps: Any, name: str = "word_timestamps") -> np.ndarray:
    """Validate one sample's word spans: (words, 2) finite seconds, start >= 0, end >= start, starts sorted."""
    spans = np.asarray(word_timestamps, dtype=np.float64)
    if spans.size == 0:
        spans = spans.reshape(0, 2)
    if spans.ndim != 2 or spans.shape[1] != 2:
        raise ValueError(f"`{name}` must be a list of (start, end) pairs, got shape {spans.shape}")
    if not np.isfinite(spans).all():
        raise ValueError(f"`{name}` contains NaN or infinite values")
    if (spans < 0).any():
        raise ValueError(f"`{name}` must be non-negative seconds")
    if (spans[:, 1] < spans[:, 0]).any():
        raise ValueError(f"`{name}` has a span whose end is before its start")
    if (np.diff(spans[:, 0]) < 0).any():
        raise ValueError(f"`{name}` must be sorted by start time (words in order)")
    return spans


def proportional_word_spans(word_lengths: Sequence[int], total_frames: float) -> np.ndarray:
    """Spread words over `total_frames` in proportion to their character lengths; returns (words, 2) in frames."""
    lengths = np.asarray(word_lengths, dtype=np.float64)
    if lengths.size == 0:
        return np.zeros((0, 2))
    bounds = np.concatenate([[0.0], np.cumsum(lengths)]) / lengths.sum() * total_frames
    return np.stack([bounds[:-1], bounds[1:]], axis=1)


def average_frames_per_span(frames: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Mean of the frames whose centre (i + 0.5) lies in each [start, end) span (in frame units).

    A span containing no frame centre takes the frame nearest its midpoint. Vectorised with a
    cumulative sum: O(frames + spans). Returns (spans, dim); `frames` must be non-empty.
    """
    count = frames.shape[0]
    low = np.clip(np.ceil(spans[:, 0] - 0.5), 0, count).astype(np.int64)
    high = np.clip(np.ceil(spans[:, 1] - 0.5), 0, count).astype(np.int64)
    empty = high <= low
    nearest = np.clip(np.floor(spans[:, :].mean(axis=1)), 0, count - 1).astype(np.int64)
    low = np.where(empty, nearest, low)
    high = np.where(empty, nearest + 1, high)
    cumulative = np.concatenate([np.zeros((1, frames.shape[1])), np.cumsum(frames, axis=0, dtype=np.float64)])
    return ((cumulative[high] - cumulative[low]) / (high - low)[:, None]).astype(np.float32)


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
        for modality, value in (("acoustic", acoustic), ("visual", visual)):
            if value is None:
                continue
            dim = getattr(self, f"{modality}_dim")
            samples = self._batch(value, modality, dim)
            if batch_size is not None and len(samples) != batch_size:
                raise ValueError(f"`{modality}` has {len(samples)} samples but `acoustic` has {batch_size}")
            batch_size = len(samples)
            if token_word_ids is not None:
                features, mask = self._align(modality, samples, token_word_ids, word_timestamps, word_lengths)
            else:
                features, mask = self._pad(samples, dim)
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

    def _align(self, modality, samples, token_word_ids, word_timestamps, word_lengths) -> tuple[np.ndarray, np.ndarray]:
        if len(token_word_ids) != len(samples):
            raise ValueError(f"`token_word_ids` has {len(token_word_ids)} samples but `{modality}` has {len(samples)}")
        if word_timestamps is not None and len(word_timestamps) != len(samples):
            raise ValueError(f"`word_timestamps` has {len(word_timestamps)} samples but `{modality}` has {len(samples)}")
        rate = getattr(self, f"{modality}_frame_rate")
        dim = getattr(self, f"{modality}_dim")
        length = max(len(ids) for ids in token_word_ids)
        features = np.full((len(samples), length, dim), self.padding_value, dtype=np.float32)
        mask = np.zeros((len(samples), length), dtype=np.int64)
        for i, (frames, word_ids) in enumerate(zip(samples, token_word_ids)):
            word_ids = np.asarray(word_ids, dtype=np.int64)
            if frames is None or frames.shape[0] == 0 or not (word_ids >= 0).any():
                continue
            stamps = None if word_timestamps is None else word_timestamps[i]
            if stamps is not None:
                if rate is None:
                    raise ValueError(f"`word_timestamps` need `{modality}_frame_rate`; set it on the feature extractor")
                spans = check_word_timestamps(stamps, f"word_timestamps[{i}]") * rate
            else:
                lengths = word_lengths[i] if word_lengths is not None else np.ones(word_ids.max() + 1)
                spans = proportional_word_spans(lengths, frames.shape[0])
            if word_ids.max() >= spans.shape[0]:
                raise ValueError(f"`word_timestamps[{i}]` has {spans.shape[0]} words but the text has {word_ids.max() + 1}")
            word_means = average_frames_per_span(frames, spans)
            valid = word_ids >= 0
            features[i, : len(word_ids)][valid] = word_means[word_ids[valid]]
            mask[i, : len(word_ids)] = valid
        return features, mask


__all__ = ["UniMSEFeatureExtractor", "average_frames_per_span", "proportional_word_spans", "check_word_timestamps"]
