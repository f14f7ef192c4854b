# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""UniMSEFeatureExtractor: validates and pads acoustic and visual frame sequences, or token-aligns them
(through `alignment_unimse`)."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from transformers.feature_extraction_utils import BatchFeature, FeatureExtractionMixin

from .alignment_unimse import WordLayout, align_to_tokens, sample_error


def _as_frames(value: Any, name: str, dim: int, index: Optional[int] = None) -> np.ndarray:
    """Convert one sample's frames to a float32 (frames, dim) array, or raise naming `name` (sample `index`).

    Real numbers only: complex frames are refused rather than losing their imaginary part. Finiteness is
    checked for the whole batch at once by `_check_finite`.
    """
    if isinstance(value, np.ndarray) and value.dtype == np.float32 and value.ndim == 2 and value.shape[1] == dim:
        return value
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise sample_error(TypeError, index, f"`{name}` must be a 2-D numeric array of shape (frames, {dim}): {error}") from None
    if array.dtype.kind not in "biuf":
        raise sample_error(TypeError, index, f"`{name}` must hold real numbers, got dtype {array.dtype}")
    if array.ndim == 2 and array.shape[0] == 0:
        array = array.reshape(0, array.shape[1] if array.shape[1] else dim)
    if array.ndim != 2 or array.shape[1] != dim:
        raise sample_error(ValueError, index, f"`{name}` must have shape (frames, {dim}), got {array.shape}")
    return array.astype(np.float32, copy=False)


def _check_finite(samples: list[Optional[np.ndarray]], frames: np.ndarray, name: str) -> None:
    """Raise naming the first sample of `name` with NaN/inf, given the batch's concatenated `frames`."""
    if np.isfinite(frames).all():
        return
    for index, sample in enumerate(samples):
        if sample is not None and not np.isfinite(sample).all():
            label = name if len(samples) == 1 else f"{name}[{index}]"
            raise sample_error(ValueError, index, f"`{label}` contains NaN or infinite values")


class UniMSEFeatureExtractor(FeatureExtractionMixin):
    r"""
    Prepares acoustic and visual frame sequences for [`UniMSEForConditionalGeneration`].

    Frame-level mode pads each modality to the longest sample with an attention mask (1 = valid
    frame). Token-aligned mode (`token_word_ids` given) averages, for every word, the frames inside its
    time span and gives that mean to each of the word's sub-word tokens; tokens of no word (task prefix,
    special tokens) are masked. Without word timestamps the words are spread over the clip in
    proportion to their character lengths. The alignment itself, and the one check of the timestamps,
    live in `alignment_unimse`; this class validates the frames and pads.

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
            return [_as_frames(sample, f"{name}[{i}]", dim, i) for i, sample in enumerate(value)]
        if isinstance(value, np.ndarray) and value.ndim == 2:
            return [_as_frames(value, name, dim, 0)]
        if isinstance(value, (list, tuple)):
            if len(value) == 0:
                raise ValueError(f"`{name}` is an empty batch")
            first = next((v for v in value if v is not None), None)
            if first is not None and np.ndim(first) == 1:  # a single sample given as a list of frames
                return [_as_frames(value, name, dim, 0)]
            return [None if sample is None else _as_frames(sample, f"{name}[{i}]", dim, i) for i, sample in enumerate(value)]
        raise TypeError(f"`{name}` must be an array of shape (frames, {dim}), a (batch, frames, {dim}) array "
                        f"or a list of such arrays, got {type(value).__name__}")

    def __call__(
        self,
        acoustic: Any = None,
        visual: Any = None,
        token_word_ids: Optional[Sequence[Sequence[int]]] = None,
        word_timestamps: Optional[Sequence[Any]] = None,
        words: Optional[Sequence[Sequence[str]]] = None,
        acoustic_feature_kind: Optional[str] = None,
        visual_feature_kind: Optional[str] = None,
        return_tensors: Optional[str] = None,
        **kwargs,
    ) -> BatchFeature:
        """Pad (or token-align) a batch of acoustic and/or visual frame sequences.

        Args:
            acoustic, visual: per sample a (frames, dim) array; a list of them, or a (batch, frames, dim)
                array. `None` for the whole modality omits it; a `None` sample marks it missing there.
            token_word_ids: per sample, the word index of each token (-1 for tokens of no word), as lists
                or a `(batch, tokens)` array. When given, features are aligned to tokens instead of padded
                frame by frame (see `alignment_unimse`).
            word_timestamps: per sample, one (start, end) pair of seconds or {"start", "end"} mapping per
                word (see `alignment_unimse.WordLayout`); needs the frame rates.
            words: per sample, its whitespace-separated words: timestamps must number exactly these,
                errors name them, and samples without timestamps spread them by character length.
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
                    layout = WordLayout(token_word_ids, word_timestamps, words)
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

    def _align(self, modality: str, samples: list[Optional[np.ndarray]], layout: WordLayout) -> tuple[np.ndarray, np.ndarray]:
        """Token-aligned features and mask of one modality (`alignment_unimse.align_to_tokens`)."""
        rate = getattr(self, f"{modality}_frame_rate")
        dim = getattr(self, f"{modality}_dim")
        features, mask, finite = align_to_tokens(samples, layout, rate, dim, self.padding_value, modality)
        if not finite:
            _check_finite(samples, np.concatenate([s for s in samples if s is not None]), modality)
        return features, mask


__all__ = ["UniMSEFeatureExtractor"]
