# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Checking and cutting acoustic/visual frame matrices, and joining them to rows by id."""

from __future__ import annotations

from typing import Any, Mapping, MutableMapping, Optional, Sequence

import numpy as np

from .errors import MalformedSourceError, PathLike
from .schema import key_of_id


def frame_matrix(
    value: Any, path: PathLike, key: str, require_finite: bool = True, zero_infinite: bool = False
) -> np.ndarray:
    """Return ``value`` as a ``(T, D)`` float32 matrix, or raise naming ``path`` and ``key``.

    A 1-D vector (an utterance-level feature) becomes one frame. NaN and +-inf are errors (they mean
    the extractor failed, and zeros would hide it), unless ``zero_infinite`` is set: then +-inf
    become 0, as MMSA's own loader does for COVAREP's log-energies of silent frames (NaN stays an
    error). ``require_finite=False`` leaves the values unchecked, for a caller that checks them
    itself with better names (the scores of a labels ``.csd``).
    """
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise MalformedSourceError(path, f"features are not numeric ({error})", key) from error
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise MalformedSourceError(path, f"expected a 2-D (frames x features) array, got shape {array.shape}", key)
    if not require_finite:
        return array
    nan_rows = np.flatnonzero(np.isnan(array).any(axis=1))
    if nan_rows.size:
        raise MalformedSourceError(path, f"NaN values in frame rows {nan_rows[:5].tolist()}", key)
    infinite = np.isinf(array)
    if infinite.any():
        if not zero_infinite:
            rows = np.flatnonzero(infinite.any(axis=1))[:5].tolist()
            raise MalformedSourceError(
                path, f"infinite values in frame rows {rows} (zero_infinite_features=True replaces them by 0, as MMSA does)", key
            )
        array = np.where(infinite, np.float32(0.0), array)
    return array


def cut_to_length(frames: np.ndarray, length: Any, path: PathLike, key: str) -> np.ndarray:
    """Keep the first ``length`` frames (MMSA pads at the end), checking that the length fits.

    A zero length keeps one zero frame so that every present modality has at least one frame (B21).
    """
    try:
        length = int(np.asarray(length).reshape(-1)[0])
    except (TypeError, ValueError, IndexError) as error:
        raise MalformedSourceError(path, f"length is not an integer ({length!r})", key) from error
    if length < 0 or length > frames.shape[0]:
        raise MalformedSourceError(path, f"length {length} outside 0..{frames.shape[0]} frames", key)
    if length == 0:
        return np.zeros((1, frames.shape[1]), dtype=np.float32)
    return frames[:length]


def strip_zero_padding(frames: np.ndarray) -> np.ndarray:
    """Remove all-zero frames at both ends; used where a source stores no lengths.

    Unlike the official ``get_length`` (count of non-zero rows, then the *last* rows, B20), this does
    not assume a padding side, and zero frames inside the sequence are kept. A sequence that is all
    zeros keeps a single zero frame (B21).
    """
    nonzero = np.flatnonzero(np.any(frames != 0, axis=1))
    if nonzero.size == 0:
        return np.zeros((1, frames.shape[1]), dtype=np.float32)
    return frames[nonzero[0] : nonzero[-1] + 1]


FrameTable = Mapping[str, Mapping[str, Optional[np.ndarray]]]
"""Features keyed by source key: ``{key: {"acoustic": (T, D) array or None, "visual": ...}}``."""


def join_frames(
    rows: Sequence[MutableMapping[str, Any]],
    frames: FrameTable,
    path: PathLike,
    require_all: bool = False,
) -> int:
    """Attach features to rows by source key (never by position, B19); return how many rows matched.

    Rows whose key is missing from ``frames`` keep null features, unless ``require_all`` is set.
    Raises if no row matches at all, which almost always means the ids use different conventions,
    and if the joined frames of one modality do not all have the same width (naming both ids).
    """
    matched = 0
    widths: dict[str, tuple[int, str]] = {}
    for row in rows:
        key = key_of_id(row["id"])
        entry = frames.get(key)
        if entry is None:
            if require_all:
                raise MalformedSourceError(path, f"no features for utterance {key!r}")
            continue
        matched += 1
        for modality in ("acoustic", "visual"):
            value = entry.get(modality)
            if value is None:
                continue
            width, first = widths.setdefault(modality, (value.shape[1], key))
            if value.shape[1] != width:
                raise MalformedSourceError(
                    path, f"utterance {key!r}: {modality} frames have {value.shape[1]} features, but {first!r} has {width}", modality
                )
            row[modality] = value
    if rows and matched == 0:
        example = next(iter(frames), None)
        raise MalformedSourceError(
            path,
            f"none of the {len(rows)} utterances has features here (source key {key_of_id(rows[0]['id'])!r}, "
            f"feature key {example!r}); the ids do not match",
        )
    return matched
