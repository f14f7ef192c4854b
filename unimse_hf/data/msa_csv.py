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
``folds`` are given they decide the split instead (by video id); a video in no fold is an error.
The ``clip`` of a row is its video, so the splits are checked to be disjoint by video. Transcripts are kept as the source writes them (the official pipeline lower-cases MSA
text; ``text.lower()`` reproduces that). The polarity is the sign of the gold score.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

import numpy as np
import pandas as pd

from ..labels import SCORE_RANGE, polarity_of_score
from .csv_source import check_complete, check_unique, file_lines, numeric_column, read_source_csv
from .errors import MalformedSourceError, PathLike, require_file
from .schema import SPLITS, key_of_id, make_row, normalize_split

Folds = Mapping[str, str]
"""Video id -> split name (``train``/``validation``/``test``)."""


def read_standard_folds(path: PathLike) -> dict[str, str]:
    """Read a standard-folds JSON (``{"train": [...], "valid": [...], "test": [...]}``) into video -> split."""
    path = require_file(path, "folds file")
    try:
        with open(path, encoding="utf-8-sig") as handle:
            raw = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
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
            if isinstance(video, bool) or not isinstance(video, (str, int)) or not str(video).strip():
                raise MalformedSourceError(path, f"video ids must be non-empty strings, got {video!r}", name)
            video = str(video).strip()
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


def check_score_column(frame: pd.DataFrame, scores: pd.Series, keys: pd.Series, path: str, column: str) -> None:
    """Raise naming the file lines and keys of scores that are not finite or lie outside ``SCORE_RANGE``."""
    low, high = SCORE_RANGE
    bad = ~np.isfinite(scores.to_numpy()) | (scores < low).to_numpy() | (scores > high).to_numpy()
    if bad.any():
        index = frame.index[bad]
        examples = [f"{keys[i]}={scores[i]}" for i in index[:3]]
        raise MalformedSourceError(
            path, f"scores must be finite and within [{low}, {high}]: file lines {file_lines(index)} ({', '.join(examples)})", column
        )


def _splits_of(
    videos: pd.Series, modes: Optional[pd.Series], folds: Optional[Folds], frame: pd.DataFrame, path: str
) -> list[str]:
    """Return each line's split: from ``folds`` by video, else from the ``mode`` column; both checked."""
    if folds is not None:
        outside = [video for video in dict.fromkeys(videos) if video not in folds]
        if outside:
            raise MalformedSourceError(
                path, f"{len(outside)} videos are in no standard fold ({outside[:5]}); pass folds that cover every video"
            )
        return [folds[video] for video in videos]
    splits = []
    for index, mode in zip(frame.index, modes):
        try:
            splits.append(normalize_split(mode))
        except ValueError as error:
            raise MalformedSourceError(path, f"file line {int(index) + 2}: {error}", "mode") from error
    return splits


def _transcript_keys(frame: pd.DataFrame, path: str) -> tuple[pd.Series, pd.Series]:
    """Return (key, video) per line: ``id`` (video = text before the last ``_``) or ``video_id`` + ``clip_id``."""
    if "id" in frame.columns:
        check_complete(frame, "id", path)
        keys = frame["id"].astype(str).str.strip()
        return keys, keys.str.rsplit("_", n=1).str[0]
    _require_columns(frame, ("video_id", "clip_id"), path)
    check_complete(frame, "video_id", path)
    check_complete(frame, "clip_id", path)
    videos = frame["video_id"].astype(str).str.strip()
    return videos + "_" + frame["clip_id"].astype(str).str.strip(), videos


def read_transcript_csv(path: PathLike, dataset: str, folds: Optional[Folds] = None) -> list[dict[str, Any]]:
    """Read a MOSI/MOSEI transcript CSV (``id`` or ``video_id``+``clip_id``, ``text``, ``label``, ``mode``) into rows.

    Every line is checked: keys unique, text present, score a finite number in [-3, 3], ``mode`` a
    known split (or, with ``folds``, the video in a fold); an error names the file, column and lines.
    """
    path = require_file(path, "transcript CSV")
    frame = read_source_csv(path, "transcript CSV", dtype=str, keep_default_na=False, na_values=[""])
    keys, videos = _transcript_keys(frame, path)
    required = ("text", "label") + (() if folds is not None else ("mode",))
    _require_columns(frame, required, path)
    for column in required:
        check_complete(frame, column, path)
    check_unique(frame, keys, path, "id" if "id" in frame.columns else "clip_id")
    scores = numeric_column(frame, "label", path)
    check_score_column(frame, scores, keys, path, "label")
    splits = _splits_of(videos, frame["mode"] if folds is None else None, folds, frame, path)
    return [
        make_row(
            dataset=dataset,
            split=split,
            key=key,
            clip=video,
            text=str(text),
            score=float(score),
            polarity=polarity_of_score(float(score)),
        )
        for key, video, text, score, split in zip(keys, videos, frame["text"], scores, splits)
    ]


def read_opinion_segment_csv(path: PathLike, folds: Folds, dataset: str = "mosi") -> list[dict[str, Any]]:
    """Read the official CMU-MOSI ``OpinionLevelSentiment.csv`` (start, end, video, segment, sentiment).

    The file has no transcripts, so ``text`` is null; attach them with :func:`attach_transcripts`.
    Keys are ``<video>_<segment>`` like the transcript CSVs. Every line is checked (numbers, integer
    segment numbers, unique segments, scores finite in [-3, 3], the video in a fold).
    """
    path = require_file(path, "segment-label CSV")
    frame = read_source_csv(path, "segment-label CSV", header=None, dtype=str, keep_default_na=False, na_values=[""])
    if frame.shape[1] != 5:
        raise MalformedSourceError(path, f"expected 5 columns (start, end, video, segment, sentiment), got {frame.shape[1]}")
    frame.columns = ["start", "end", "video", "segment", "sentiment"]
    frame.index = frame.index - 1  # no header line: index + 2 is still the file line in the error messages
    for column in frame.columns:
        check_complete(frame, column, path)
    numbers = {column: numeric_column(frame, column, path) for column in ("start", "end", "segment", "sentiment")}
    fractional = numbers["segment"] != numbers["segment"].round()
    if fractional.any():
        raise MalformedSourceError(path, f"segment numbers must be integers: file lines {file_lines(frame.index[fractional])}", "segment")
    backwards = ~(numbers["start"] <= numbers["end"])
    if backwards.any():
        raise MalformedSourceError(path, f"start after end (or not finite): file lines {file_lines(frame.index[backwards])}", "start")
    videos = frame["video"].str.strip()
    keys = videos + "_" + numbers["segment"].astype(int).astype(str)
    check_unique(frame, keys, path, "segment")
    check_score_column(frame, numbers["sentiment"], keys, path, "sentiment")
    splits = _splits_of(videos, None, folds, frame, path)
    return [
        make_row(dataset=dataset, split=split, key=key, clip=video, score=float(score), polarity=polarity_of_score(float(score)))
        for key, video, score, split in zip(keys, videos, numbers["sentiment"], splits)
    ]


def read_transcripts(path: PathLike) -> dict[str, str]:
    """Read key -> transcript from any transcript CSV :func:`read_transcript_csv` accepts (splits ignored).

    Keys must be unique and every transcript non-empty.
    """
    path = require_file(path, "transcript CSV")
    frame = read_source_csv(path, "transcript CSV", dtype=str, keep_default_na=False, na_values=[""])
    keys, _ = _transcript_keys(frame, path)
    _require_columns(frame, ("text",), path)
    check_complete(frame, "text", path)
    check_unique(frame, keys, path, "id" if "id" in frame.columns else "clip_id")
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
