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
            id); the trainer consumes them and never passes them to the model.
        use_word_timestamps (`bool`, defaults to `False`):
            Token-align the frames with the rows' `word_timestamps` (rows whose model text is `text`; rows that
            read `context`, or whose timestamps do not match the words, are spread proportionally). Needs the
            frame rates on the processor's feature extractor. `False` gives frame-level sequences, as the
            official LSTM encoders read them.
    """

    def __init__(
        self,
        processor: UniMSEProcessor,
        contrastive_label_column: Optional[str] = None,
        use_word_timestamps: bool = False,
    ) -> None:
        self.processor = processor
        self.contrastive_label_column = contrastive_label_column
        self.use_word_timestamps = use_word_timestamps

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        """Build `input_ids`, `attention_mask`, the modality inputs, `labels` and `contrastive_label_ids`."""
        if len(rows) == 0:
            raise ValueError("UniMSEDataCollator received an empty list of rows")
        texts = [model_input_text(row) for row in rows]
        modalities = {name: [_frames(row.get(name)) for row in rows] for name in ("acoustic", "visual")}
        modalities = {name: (None if all(f is None for f in frames) else frames) for name, frames in modalities.items()}
        targets = [row.get("target") for row in rows]
        if any(t is None for t in targets) and not all(t is None for t in targets):
            missing = [str(row.get("id", i)) for i, row in enumerate(rows) if row.get("target") is None]
            raise ValueError(f"rows {missing[:5]} have no `target` while others in the batch do")
        word_timestamps = None
        if self.use_word_timestamps and any(m is not None for m in modalities.values()):
            word_timestamps = [_timestamp_pairs(row, text) for row, text in zip(rows, texts)]
        batch = self.processor(
            texts,
            acoustic=modalities["acoustic"],
            visual=modalities["visual"],
            labels=None if targets[0] is None else targets,
            word_timestamps=word_timestamps,
            align_to_tokens=word_timestamps is not None,
            return_tensors="pt",
        )
        features = dict(batch)
        if self.contrastive_label_column is not None:
            features["contrastive_label_ids"] = contrastive_label_ids(rows, self.contrastive_label_column)
        return features


def model_input_text(row: Mapping[str, Any]) -> str:
    """The text UniMSE reads for a row: `context` when set (ERC), else `text`."""
    context = row.get("context")
    text = context if isinstance(context, str) and context.strip() else row.get("text")
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


def _frames(value: Any) -> Optional[np.ndarray]:
    """A row's frames as a (frames, dim) float32 array, or None when the row has none."""
    if value is None:
        return None
    frames = np.asarray(value if not isinstance(value, np.ndarray) or value.dtype != object else list(value),
                        dtype=np.float32)
    if frames.size == 0:
        return None
    if frames.ndim != 2:
        raise ValueError(f"a row's frames must form a (frames, dim) array, got shape {frames.shape}")
    return frames


def _timestamp_pairs(row: Mapping[str, Any], text: str) -> Optional[list[tuple[float, float]]]:
    """(start, end) per word of `text`, or None when the row's timestamps do not describe that text."""
    stamps = row.get("word_timestamps")
    if stamps is None or text != row.get("text"):
        return None
    pairs = [(float(s["start"]), float(s["end"])) if isinstance(s, Mapping) else (float(s[0]), float(s[1]))
             for s in stamps]
    return pairs if len(pairs) == len(text.split()) else None


__all__ = ["UniMSEDataCollator", "contrastive_label_ids", "model_input_text"]
