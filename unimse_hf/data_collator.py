# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""`UniMSEDataCollator`: turns UniMSE data rows (the `unimse_hf.data` row schema) into model batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np
import torch

from .processing_unimse import UniMSEProcessor


class UniMSEDataCollator:
    r"""
    Collates data rows (dicts with the columns of the UniMSE row schema) into a model batch.

    The model reads `context` where it is set (ERC rows) and `text` otherwise; `acoustic` and `visual` are
    per-row `(frames, dim)` float arrays or nested lists (a `None` row is a missing modality, a column that is
    `None` for the whole batch is left out); `target` is the universal label string. Rows without any `target`
    (inference) give a batch without `labels`. Use it with `remove_unused_columns=False`.

    Args:
        processor ([`UniMSEProcessor`]): tokenizes the text and labels and pads the frames.
        contrastive_label_column (`str`, *optional*):
            A column whose value is the label key of the label-aware contrastive term (for instance
            `"polarity"`). When set, the batch carries `contrastive_label_ids` (rows with the same key share an
            id), which the model's label-aware contrastive term (`cl_label_weight`) reads; generation ignores them.
        use_word_timestamps (`bool`, defaults to `False`):
            Token-align the frames with the rows' `word_timestamps` (`{"word", "start", "end"}` per word of
            `text`, read by `alignment_unimse`). Rows that read `context` (ERC: the timestamps describe the
            utterance, not the context) and rows without timestamps have their words spread over the clip in
            proportion to their length; timestamps of a row reading `text` that do not number its words are
            an error naming the row id, never a silent fallback. Needs the frame rates on the processor's
            feature extractor. `False` gives frame-level sequences, as the official LSTM encoders read them.
        grammar_constrained_loss (`bool`, defaults to `False`):
            Add `label_candidate_ids`, the ids the label grammar allows at each target position
            (`UniversalLabelLogitsProcessor.label_candidate_ids` at the processor's `score_decimals`): the model's
            LM term then normalises over those choices only, the likelihood of structured decoding.

    Errors about one row (wrong feature width, NaN frames, bad timestamps or target) name its `id`.
    """

    def __init__(
        self,
        processor: UniMSEProcessor,
        contrastive_label_column: Optional[str] = None,
        use_word_timestamps: bool = False,
        grammar_constrained_loss: bool = False,
    ) -> None:
        if not isinstance(grammar_constrained_loss, bool):
            raise TypeError(f"`grammar_constrained_loss` must be a bool, got {type(grammar_constrained_loss).__name__}")
        self.processor = processor
        self.contrastive_label_column = contrastive_label_column
        self.use_word_timestamps = use_word_timestamps
        self.grammar_constrained_loss = grammar_constrained_loss

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        """Build `input_ids`, `attention_mask`, the modality inputs, `labels`, `contrastive_label_ids` and
        `label_candidate_ids` (the last two when configured)."""
        if len(rows) == 0:
            raise ValueError("UniMSEDataCollator received an empty list of rows")
        texts = [model_input_text(row) for row in rows]
        modalities = {name: [_frames(row, name, i) for i, row in enumerate(rows)] for name in ("acoustic", "visual")}
        modalities = {name: (None if all(f is None for f in frames) else frames) for name, frames in modalities.items()}
        targets = [row.get("target") for row in rows]
        if any(t is None for t in targets) and not all(t is None for t in targets):
            missing = [str(row.get("id", i)) for i, row in enumerate(rows) if row.get("target") is None]
            raise ValueError(f"rows {missing[:5]} have no `target` while others in the batch do")
        word_timestamps = None
        if self.use_word_timestamps and any(m is not None for m in modalities.values()):
            word_timestamps = [None if reads_context(row) else row.get("word_timestamps") for row in rows]
        try:
            batch = self.processor(
                texts,
                acoustic=modalities["acoustic"],
                visual=modalities["visual"],
                labels=None if targets[0] is None else targets,
                word_timestamps=word_timestamps,
                align_to_tokens=word_timestamps is not None,
                return_tensors="pt",
            )
        except (TypeError, ValueError) as error:
            index = getattr(error, "sample_index", None)
            if index is None:
                raise
            raise type(error)(f"row {_row_id(rows[index], index)!r} (batch position {index}): {error}") from error
        features = dict(batch)
        if self.contrastive_label_column is not None:
            features["contrastive_label_ids"] = contrastive_label_ids(rows, self.contrastive_label_column)
        if self.grammar_constrained_loss and "labels" in features:
            features["label_candidate_ids"] = self.processor.label_constraint().label_candidate_ids(features["labels"])
        return features


def reads_context(row: Mapping[str, Any]) -> bool:
    """Whether UniMSE reads the row's `context` (set and non-blank: ERC rows) rather than its `text`."""
    context = row.get("context")
    return isinstance(context, str) and bool(context.strip())


def model_input_text(row: Mapping[str, Any]) -> str:
    """The text UniMSE reads for a row: `context` when set (ERC), else `text`."""
    text = row.get("context") if reads_context(row) else row.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"row {row.get('id', '?')!r} has neither a `context` nor a `text`")
    return text


def contrastive_label_ids(rows: Sequence[Mapping[str, Any]], column: str) -> torch.Tensor:
    """Per-row integer ids, equal exactly when the rows' `column` values are equal (first-seen order)."""
    ids: dict[Any, int] = {}
    values = []
    for row in rows:
        key = row.get(column)
        if key is None:
            raise ValueError(f"row {row.get('id', '?')!r} has no `{column}` for the label-aware contrastive term")
        values.append(ids.setdefault(key, len(ids)))
    return torch.tensor(values, dtype=torch.long)


def _row_id(row: Mapping[str, Any], index: int) -> str:
    """A row's `id`, or its batch position where it has none."""
    return str(row.get("id", f"#{index}"))


def _frames(row: Mapping[str, Any], name: str, index: int) -> Optional[np.ndarray]:
    """A row's `name` frames as a (frames, dim) array (dtype checked by the feature extractor), or None when it has none."""
    value = row.get(name)
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.dtype == object:  # Arrow/Parquet: an array of per-frame arrays
        value = list(value)
    frames = np.asarray(value)
    if frames.size == 0:
        return None
    if frames.ndim != 2:
        raise ValueError(f"row {_row_id(row, index)!r}: `{name}` must form a (frames, dim) array, got shape {frames.shape}")
    return frames


__all__ = ["UniMSEDataCollator", "contrastive_label_ids", "model_input_text", "reads_context"]
