# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Checks on converted corpus rows, run before anything is written or mixed.

Every converter's rows, and every prepared folder that is read back, must satisfy:

* ids are unique;
* ``split`` is ``train``/``validation``/``test`` and ``dataset`` one corpus name;
* the splits are **disjoint by clip** (the video or dialogue an utterance was cut from), so no
  clip's utterances are both trained on and tested on;
* ``text`` is null or holds a visible character; ``score`` is null or finite and inside
  :data:`~unimse_hf.labels.SCORE_RANGE`; ``polarity``, ``meld_emotion`` and ``iemocap_emotion`` are
  in their label sets (IEMOCAP rows kept with ``keep_other_emotions`` carry an IEMOCAP release
  abbreviation instead);
* ``acoustic``/``visual`` frames are finite and have one width per modality across the corpus.

A failed check raises :class:`~unimse_hf.data.errors.MalformedSourceError` (a ``ValueError``)
naming the source and the row id; nothing is dropped or repaired here.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

from ..labels import IEMOCAP_EMOTIONS, MELD_EMOTIONS, POLARITIES, SCORE_RANGE
from .errors import MalformedSourceError
from .schema import DATASET_NAMES, SPLITS

IEMOCAP_OTHER_LABELS: frozenset[str] = frozenset({"sur", "fea", "dis", "oth", "xxx"})
"""IEMOCAP release labels outside the six classes (kept only with ``keep_other_emotions``)."""

_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"


def is_blank(text: Optional[str]) -> bool:
    """Whether ``text`` is missing or holds only whitespace and zero-width characters."""
    return text is None or not str(text).strip().strip(_INVISIBLE).strip()


def check_score(value: Any, where: str) -> None:
    """Raise ``ValueError`` (naming ``where``) unless ``value`` is a finite score inside ``SCORE_RANGE``."""
    low, high = SCORE_RANGE
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{where}: score must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{where}: score must be finite, got {float(value)}")
    if not low <= float(value) <= high:
        raise ValueError(f"{where}: score {float(value)} outside [{low}, {high}]")


def _examples(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(item) for item in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_row_values(row: Mapping[str, Any], source: str) -> None:
    """Check one row's ids, text and label slots (see the module docstring)."""
    row_id = row.get("id")
    where = f"row {row_id!r}"
    if not isinstance(row_id, str) or row_id.count("/") < 2:
        raise MalformedSourceError(source, f"row id must be '<dataset>/<split>/<key>', got {row_id!r}", "id")
    if row.get("dataset") not in DATASET_NAMES:
        raise MalformedSourceError(source, f"{where}: dataset {row.get('dataset')!r} is not one of {DATASET_NAMES}", "dataset")
    if row.get("split") not in SPLITS:
        raise MalformedSourceError(source, f"{where}: split {row.get('split')!r} is not one of {SPLITS}", "split")
    if not row_id.startswith(f"{row['dataset']}/{row['split']}/"):
        raise MalformedSourceError(
            source, f"{where}: the id does not start with its dataset and split ({row['dataset']}/{row['split']}/)", "id"
        )
    if not isinstance(row.get("clip"), str) or not row["clip"]:
        raise MalformedSourceError(source, f"{where}: clip must be a non-empty string, got {row.get('clip')!r}", "clip")
    for column in ("text", "context"):
        value = row.get(column)
        if value is not None and (not isinstance(value, str) or is_blank(value)):
            raise MalformedSourceError(source, f"{where}: {column} is empty or not a string ({value!r})", column)
    if row.get("score") is not None:
        try:
            check_score(row["score"], where)
        except ValueError as error:
            raise MalformedSourceError(source, str(error), "score") from None
    if row.get("polarity") not in POLARITIES:
        raise MalformedSourceError(source, f"{where}: polarity {row.get('polarity')!r} is not one of {POLARITIES}", "polarity")
    allowed = {"meld_emotion": MELD_EMOTIONS, "iemocap_emotion": IEMOCAP_EMOTIONS}
    for column, labels in allowed.items():
        value = row.get(column)
        extra = IEMOCAP_OTHER_LABELS if column == "iemocap_emotion" else frozenset()
        if value is not None and value not in labels and value not in extra:
            raise MalformedSourceError(source, f"{where}: {column} {value!r} is not one of {labels}", column)


def check_unique_ids(ids: Sequence[str], source: str) -> None:
    """Raise naming the repeated ids if any id occurs twice."""
    repeated = [row_id for row_id, count in Counter(ids).items() if count > 1]
    if repeated:
        raise MalformedSourceError(source, f"duplicate row ids {_examples(repeated)}", "id")


def check_clips_disjoint(ids: Sequence[str], splits: Sequence[str], clips: Sequence[str], source: str) -> None:
    """Raise if one clip has utterances in two splits, naming the clip, its splits and row ids."""
    seen: dict[str, dict[str, str]] = {}
    for row_id, split, clip in zip(ids, splits, clips):
        seen.setdefault(clip, {}).setdefault(split, row_id)
    shared = {clip: by_split for clip, by_split in seen.items() if len(by_split) > 1}
    if shared:
        details = [
            f"clip {clip!r} in {' and '.join(by_split)} ({', '.join(by_split.values())})"
            for clip, by_split in list(shared.items())[:3]
        ]
        more = f" and {len(shared) - 3} more clips" if len(shared) > 3 else ""
        raise MalformedSourceError(
            source, f"splits are not disjoint by clip: {'; '.join(details)}{more}", "clip"
        )


def _check_frames(row_id: str, modality: str, frames: Any, widths: dict[str, tuple[int, str]], source: str) -> None:
    array = np.asarray(frames, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] == 0:
        raise MalformedSourceError(source, f"row {row_id!r}: {modality} must be a non-empty (frames, features) matrix, got shape {array.shape}", modality)
    if not np.isfinite(array).all():
        bad = np.flatnonzero(~np.isfinite(array).all(axis=1))[:5].tolist()
        raise MalformedSourceError(source, f"row {row_id!r}: non-finite {modality} values in frames {bad}", modality)
    first = widths.setdefault(modality, (array.shape[1], row_id))
    if first[0] != array.shape[1]:
        raise MalformedSourceError(
            source,
            f"row {row_id!r}: {modality} frames have {array.shape[1]} features, but row {first[1]!r} has {first[0]}",
            modality,
        )


def check_rows(rows: Sequence[Mapping[str, Any]], source: Optional[str] = None) -> None:
    """Run every check of the module docstring on schema rows (dicts); ``source`` names the origin in errors."""
    source = source or "converted rows"
    ids = [row.get("id") for row in rows]
    widths: dict[str, tuple[int, str]] = {}
    for row in rows:
        check_row_values(row, source)
        for modality in ("acoustic", "visual"):
            if row.get(modality) is not None:
                _check_frames(row["id"], modality, row[modality], widths, source)
    check_unique_ids(ids, source)
    check_clips_disjoint(ids, [row["split"] for row in rows], [row["clip"] for row in rows], source)


def check_split_datasets(splits: Mapping[str, Any], source: str, dataset: Optional[str] = None) -> None:
    """Check a ``{split: datasets.Dataset}`` mapping read from disk (or about to be written).

    Besides :func:`check_rows`' checks (on the Arrow columns, frames included) every row's ``split``
    must equal the split it is stored under and, when ``dataset`` is given, its ``dataset`` column.
    """
    import pyarrow.compute as pc

    ids, split_column, clips = [], [], []
    widths: dict[str, tuple[int, str]] = {}
    for name, data in splits.items():
        if name not in SPLITS:
            raise MalformedSourceError(source, f"unknown split {name!r}; expected one of {SPLITS}", name)
        table = data.with_format("arrow")[:]
        columns = {column: table.column(column).to_pylist() for column in table.column_names if column not in ("acoustic", "visual", "word_timestamps")}
        for index in range(table.num_rows):
            row = {column: values[index] for column, values in columns.items()}
            check_row_values(row, source)
            if row["split"] != name:
                raise MalformedSourceError(source, f"row {row['id']!r} says split {row['split']!r} but is stored in {name}", "split")
            if dataset is not None and row["dataset"] != dataset:
                raise MalformedSourceError(source, f"row {row['id']!r} belongs to {row['dataset']!r}, not {dataset!r}", "dataset")
        for modality in ("acoustic", "visual"):
            if modality not in table.column_names:
                continue
            column = table.column(modality).combine_chunks()
            frames = column.flatten()
            if len(frames) == 0:
                continue
            frame_rows = pc.list_parent_indices(column).to_numpy()
            frame_widths = pc.list_value_length(frames).to_numpy()
            value_frames = pc.list_parent_indices(frames).to_numpy()
            finite = pc.is_finite(frames.flatten()).to_numpy(zero_copy_only=False)
            if not finite.all():
                row = int(frame_rows[value_frames[np.flatnonzero(~finite)[0]]])
                raise MalformedSourceError(source, f"row {columns['id'][row]!r}: non-finite {modality} values", modality)
            first = widths.setdefault(modality, (int(frame_widths[0]), columns["id"][int(frame_rows[0])]))
            wrong = np.flatnonzero(frame_widths != first[0])
            if wrong.size:
                row = int(frame_rows[wrong[0]])
                raise MalformedSourceError(
                    source,
                    f"row {columns['id'][row]!r}: {modality} frames have {int(frame_widths[wrong[0]])} features, "
                    f"but row {first[1]!r} has {first[0]}",
                    modality,
                )
        ids += columns["id"]
        split_column += columns["split"]
        clips += columns["clip"]
    check_unique_ids(ids, source)
    check_clips_disjoint(ids, split_column, clips, source)


def rows_without_text(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Return the ids of rows whose ``text`` is missing."""
    return [row["id"] for row in rows if row.get("text") is None]
