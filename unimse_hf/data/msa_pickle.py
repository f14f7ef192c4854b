# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""MOSI/MOSEI from feature pickles: MMSA (aligned and unaligned) and the official UniMSE layout.

Both layouts are a dict ``{"train": {...}, "valid": {...}, "test": {...}}`` of per-split dicts of
arrays with one entry per utterance:

* **MMSA** (``aligned_50.pkl``, ``unaligned_50.pkl``): ``raw_text`` (N), ``id`` (N, written
  ``<video>$_$<clip>``), ``regression_labels`` (N), ``audio`` (N x T_a x D_a), ``vision``
  (N x T_v x D_v), and, in unaligned files only, ``audio_lengths``/``vision_lengths`` (N). MMSA pads
  at the end, so the first ``length`` frames are kept. Aligned files have no lengths; their
  all-zero padding frames are stripped instead.
* **official UniMSE** (``mosi_data_0610.pkl`` ...): ``audio``, ``vision``,
  ``labels`` and ``id`` (N, or N x k whose first column is ``<video>_<clip>``, possibly bytes); no
  transcripts and no lengths. Frames are cut by stripping all-zero padding at both ends rather than
  the official "last non-zero-count rows" rule (B20).

:func:`read_mmsa_pickle` turns an MMSA file into rows (it has transcripts and labels);
:func:`read_msa_feature_pickle` reads the features of either layout, keyed by ``<video>_<clip>``, to
join to the rows of a transcript CSV by id (B19).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from ..labels import polarity_of_score
from .errors import MalformedSourceError, PathLike
from .features import cut_to_length, frame_matrix, strip_zero_padding
from .pickles import load_pickle
from .schema import make_row, normalize_split
from .validation import check_score

MMSA_ID_SEPARATOR = "$_$"
"""Separator between video and clip in MMSA ids."""

_MODALITIES = (("acoustic", "audio", "audio_lengths"), ("visual", "vision", "vision_lengths"))


def _raw_id(raw: Any) -> str:
    if isinstance(raw, (np.ndarray, list, tuple)):
        raw = np.asarray(raw, dtype=object).reshape(-1)[0]
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    return str(raw)


def normalize_msa_key(raw: Any) -> str:
    """Return ``<video>_<clip>`` for an MMSA (``vid$_$clip``) or official (``vid_clip``, maybe bytes or a row) id."""
    return _raw_id(raw).replace(MMSA_ID_SEPARATOR, "_")


def msa_video_of(raw: Any) -> str:
    """Return the video of an MMSA (``vid$_$clip``) or official (``vid_clip``) utterance id."""
    raw = _raw_id(raw)
    if MMSA_ID_SEPARATOR in raw:
        return raw.split(MMSA_ID_SEPARATOR, 1)[0]
    return raw.rsplit("_", 1)[0]


def _splits(data: object, path: str) -> dict[str, Mapping[str, Any]]:
    """Return ``{"train"|"valid"|"test": per-split dict}``, checking the top-level layout."""
    if not isinstance(data, dict):
        raise MalformedSourceError(path, f"expected a dict of splits, got {type(data).__name__}")
    splits = {}
    for name in ("train", "valid", "test"):
        if name not in data:
            raise MalformedSourceError(path, f"missing split; the file has keys {sorted(map(str, data))}", name)
        if not isinstance(data[name], dict):
            raise MalformedSourceError(path, f"expected a dict of arrays, got {type(data[name]).__name__}", name)
        splits[name] = data[name]
    return splits


def _column(split: Mapping[str, Any], key: str, split_name: str, path: str, count: Optional[int]) -> Any:
    if key not in split:
        raise MalformedSourceError(path, f"missing key; the split has {sorted(map(str, split))}", f"{split_name}/{key}")
    value = split[key]
    if count is not None and len(value) != count:
        raise MalformedSourceError(path, f"{len(value)} entries, expected {count} (one per id)", f"{split_name}/{key}")
    return value


def _frames_of_split(
    split: Mapping[str, Any], split_name: str, path: str, keys: list[str], zero_infinite: bool
) -> dict[str, list]:
    count = len(keys)
    frames: dict[str, list] = {}
    for modality, key, length_key in _MODALITIES:
        stack = _column(split, key, split_name, path, count)
        if np.ndim(stack) != 3:
            raise MalformedSourceError(
                path, f"expected utterances x frames x features, got shape {np.shape(stack)}", f"{split_name}/{key}"
            )
        lengths = _column(split, length_key, split_name, path, count) if length_key in split else None
        column = []
        for index in range(count):
            where = f"{split_name}/{key}[{index}] ({keys[index]})"
            matrix = frame_matrix(stack[index], path, where, zero_infinite=zero_infinite)
            column.append(strip_zero_padding(matrix) if lengths is None else cut_to_length(matrix, lengths[index], path, where))
        frames[modality] = column
    return frames


def _check_ids(ids: Any, name: str, path: str, seen: dict[str, str]) -> list[str]:
    keys = []
    for raw in ids:
        try:
            key = normalize_msa_key(raw)
        except UnicodeDecodeError as error:
            raise MalformedSourceError(path, f"utterance id {raw!r} is not UTF-8", f"{name}/id") from error
        if not key.strip():
            raise MalformedSourceError(path, "empty utterance id", f"{name}/id")
        if key in seen:
            raise MalformedSourceError(path, f"utterance {key!r} appears twice (in {seen[key]} and {name})", f"{name}/id")
        seen[key] = name
        keys.append(key)
    return keys


def read_mmsa_pickle(
    path: PathLike, dataset: str, trust_pickle: bool = False, zero_infinite_features: bool = False
) -> list[dict[str, Any]]:
    """Read an MMSA ``aligned_50.pkl``/``unaligned_50.pkl`` into rows with transcripts, scores and features.

    Ids must be unique across the splits and scores finite in [-3, 3] (errors name the file, split
    and index). ``zero_infinite_features`` replaces +-inf frame values by 0, as MMSA's loader does.
    """
    data = load_pickle(path, trust_pickle)
    path = str(path)
    rows, seen = [], {}
    for name, content in _splits(data, path).items():
        split = normalize_split(name)
        if "raw_text" not in content:
            raise MalformedSourceError(
                path,
                "no transcripts; an official UniMSE feature pickle goes in `features` next to a transcript CSV",
                f"{name}/raw_text",
            )
        ids = _column(content, "id", name, path, None)
        count = len(ids)
        keys = _check_ids(ids, name, path, seen)
        texts = _column(content, "raw_text", name, path, count)
        try:
            scores = np.asarray(_column(content, "regression_labels", name, path, count), dtype=np.float64).reshape(count, -1)[:, 0]
        except (TypeError, ValueError) as error:
            raise MalformedSourceError(path, f"scores are not numeric ({error})", f"{name}/regression_labels") from error
        for index, score in enumerate(scores):
            try:
                check_score(float(score), f"utterance {keys[index]!r} (index {index})")
            except ValueError as error:
                raise MalformedSourceError(path, str(error), f"{name}/regression_labels") from None
        frames = _frames_of_split(content, name, path, keys, zero_infinite_features)
        for index in range(count):
            score = float(scores[index])
            if not isinstance(texts[index], str):
                raise MalformedSourceError(path, f"utterance {keys[index]!r}: transcript is not a string ({texts[index]!r})", f"{name}/raw_text")
            rows.append(
                make_row(
                    dataset=dataset,
                    split=split,
                    key=keys[index],
                    clip=msa_video_of(ids[index]),
                    text=texts[index],
                    score=score,
                    polarity=polarity_of_score(score),
                    acoustic=frames["acoustic"][index],
                    visual=frames["visual"][index],
                )
            )
    return rows


def read_msa_feature_pickle(
    path: PathLike, trust_pickle: bool = False, zero_infinite_features: bool = False
) -> dict[str, dict[str, np.ndarray]]:
    """Read the features of an MMSA or official UniMSE MSA pickle: ``{<video>_<clip>: {"acoustic", "visual"}}``.

    Ids must be unique across the splits; ``zero_infinite_features`` as in :func:`read_mmsa_pickle`.
    """
    data = load_pickle(path, trust_pickle)
    path = str(path)
    table: dict[str, dict[str, np.ndarray]] = {}
    seen: dict[str, str] = {}
    for name, content in _splits(data, path).items():
        ids = _column(content, "id", name, path, None)
        keys = _check_ids(ids, name, path, seen)
        frames = _frames_of_split(content, name, path, keys, zero_infinite_features)
        for index, key in enumerate(keys):
            table[key] = {"acoustic": frames["acoustic"][index], "visual": frames["visual"][index]}
    return table
