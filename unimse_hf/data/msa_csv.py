# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""MOSI/MOSEI from CSV files: transcript label CSVs, the official segment-label CSV, standard folds.

Three CSV layouts are read:

* a transcript CSV with an ``id`` column (``<video>_<segment>``), ``text``, ``label`` and ``mode``
  (the MOSI copy in ``data/mosi/label.csv``);
* an MMSA ``label.csv`` with ``video_id``, ``clip_id``, ``text``, ``label`` and ``mode`` (more
  columns such as ``annotation`` are ignored), as in ``data/mosei/label.csv``;
* the official CMU-MOSI ``OpinionLevelSentiment.csv`` (no header: start, end, video, segment,
  sentiment), which has no transcripts; splits then come from the CMU-MultimodalSDK standard folds.

``mode`` values ``train``/``dev``/``valid``/``test`` become ``train``/``validation``/``test``. When
``folds`` are given they decide the split instead (by video id), and rows of videos in no fold are
left out. Transcripts are kept as the source writes them (the official pipeline lower-cases MSA
text; ``text.lower()`` reproduces that). The polarity is the sign of the gold score.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping, Optional

import pandas as pd

from ..labels import polarity_of_score
from .errors import MalformedSourceError, PathLike, require_file
from .schema import SPLITS, key_of_id, make_row, normalize_split

logger = logging.getLogger(__name__)

Folds = Mapping[str, str]
"""Video id -> split name (``train``/``validation``/``test``)."""


def read_standard_folds(path: PathLike) -> dict[str, str]:
    """Read a standard-folds JSON (``{"train": [...], "valid": [...], "test": [...]}``) into video -> split."""
    path = require_file(path, "folds file")
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except json.JSONDecodeError as error:
        raise MalformedSourceError(path, f"not valid JSON ({error})") from error
    if not isinstance(raw, dict):
        raise MalformedSourceError(path, "expected an object mapping split names to lists of video ids")
    folds: dict[str, str] = {}
    for name, videos in raw.items():
        try:
            split = normalize_split(name)
        except ValueError as error:
            raise MalformedSourceError(path, str(error), name) from error
        if not isinstance(videos, list):
            raise MalformedSourceError(path, "expected a list of video ids", name)
        for video in videos:
            video = str(video)
            if folds.get(video, split) != split:
                raise MalformedSourceError(path, f"video {video!r} is in two folds", name)
            folds[video] = split
    missing = set(SPLITS) - set(folds.values())
    if missing:
        raise MalformedSourceError(path, f"no videos for split(s) {sorted(missing)}")
    return folds


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], path: str) -> None:
    for column in columns:
        if column not in frame.columns:
            raise MalformedSourceError(path, f"missing column; the file has {list(frame.columns)}", column)


def _check_complete(frame: pd.DataFrame, column: str, path: str) -> None:
    missing = frame.index[frame[column].isna()]
    if len(missing):
        raise MalformedSourceError(path, f"empty values in rows {[int(i) + 2 for i in missing[:5]]} (file lines)", column)


def _split_of(video: str, mode: Optional[str], folds: Optional[Folds], path: str) -> Optional[str]:
    if folds is not None:
        return folds.get(video)
    try:
        return normalize_split(mode)
    except ValueError as error:
        raise MalformedSourceError(path, str(error), "mode") from error


def read_transcript_csv(path: PathLike, dataset: str, folds: Optional[Folds] = None) -> list[dict[str, Any]]:
    """Read a MOSI/MOSEI transcript CSV (``id`` or ``video_id``+``clip_id``, ``text``, ``label``, ``mode``) into rows."""
    path = require_file(path, "transcript CSV")
    frame = pd.read_csv(path, dtype={"id": str, "video_id": str, "clip_id": str}, keep_default_na=False, na_values=[""])
    if "id" in frame.columns:
        keys = frame["id"]
        videos = keys.str.rsplit("_", n=1).str[0]
    else:
        _require_columns(frame, ("video_id", "clip_id"), path)
        _check_complete(frame, "video_id", path)
        _check_complete(frame, "clip_id", path)
        keys = frame["video_id"] + "_" + frame["clip_id"]
        videos = frame["video_id"]
    _require_columns(frame, ("text", "label") + (() if folds is not None else ("mode",)), path)
    for column in ("text", "label") + (() if folds is not None else ("mode",)):
        _check_complete(frame, column, path)
    try:
        scores = pd.to_numeric(frame["label"], errors="raise")
    except (TypeError, ValueError) as error:
        raise MalformedSourceError(path, f"non-numeric score ({error})", "label") from error
    modes = frame["mode"] if "mode" in frame.columns else [None] * len(frame)
    rows, outside = [], 0
    for key, video, text, score, mode in zip(keys, videos, frame["text"], scores, modes):
        split = _split_of(video, mode, folds, path)
        if split is None:
            outside += 1
            continue
        score = float(score)
        rows.append(
            make_row(dataset=dataset, split=split, key=key, text=str(text), score=score, polarity=polarity_of_score(score))
        )
    if outside:
        logger.warning("%s: %d rows belong to videos in no standard fold and were left out", path, outside)
    return rows


def read_opinion_segment_csv(path: PathLike, folds: Folds, dataset: str = "mosi") -> list[dict[str, Any]]:
    """Read the official CMU-MOSI ``OpinionLevelSentiment.csv`` (start, end, video, segment, sentiment).

    The file has no transcripts, so ``text`` is null; attach them with :func:`attach_transcripts`.
    Keys are ``<video>_<segment>`` like the transcript CSVs.
    """
    path = require_file(path, "segment-label CSV")
    frame = pd.read_csv(path, header=None, dtype={2: str})
    if frame.shape[1] != 5:
        raise MalformedSourceError(path, f"expected 5 columns (start, end, video, segment, sentiment), got {frame.shape[1]}")
    frame.columns = ["start", "end", "video", "segment", "sentiment"]
    for column in frame.columns:
        _check_complete(frame, column, path)
    rows, outside = [], 0
    for video, segment, score in zip(frame["video"], frame["segment"], frame["sentiment"]):
        split = folds.get(video)
        if split is None:
            outside += 1
            continue
        score = float(score)
        rows.append(make_row(dataset=dataset, split=split, key=f"{video}_{int(segment)}", score=score, polarity=polarity_of_score(score)))
    if outside:
        logger.warning("%s: %d segments belong to videos in no standard fold and were left out", path, outside)
    return rows


def read_transcripts(path: PathLike) -> dict[str, str]:
    """Read key -> transcript from any transcript CSV :func:`read_transcript_csv` accepts (splits ignored)."""
    path = require_file(path, "transcript CSV")
    frame = pd.read_csv(path, dtype={"id": str, "video_id": str, "clip_id": str}, keep_default_na=False, na_values=[""])
    if "id" in frame.columns:
        keys = frame["id"]
    else:
        _require_columns(frame, ("video_id", "clip_id"), path)
        keys = frame["video_id"] + "_" + frame["clip_id"]
    _require_columns(frame, ("text",), path)
    _check_complete(frame, "text", path)
    return dict(zip(keys, frame["text"].astype(str)))


def attach_transcripts(rows: list[dict[str, Any]], transcripts: Mapping[str, str]) -> int:
    """Fill ``text`` of rows whose key has a transcript, joining by key; return how many were filled."""
    filled = 0
    for row in rows:
        text = transcripts.get(key_of_id(row["id"]))
        if text is not None:
            row["text"] = text
            filled += 1
    return filled
