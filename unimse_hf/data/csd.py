# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""CMU-MultimodalSDK computational sequences (``.csd``): labels, frame features and word timestamps.

A ``.csd`` file is HDF5 with one root group (its "root name", e.g. ``Opinion Segment Labels``)
holding ``data/<video_id>/features`` (N x D) and ``data/<video_id>/intervals`` (N x 2, seconds in
the full video), plus ``metadata/*``. In a labels sequence row ``k`` of a video is its segment
``k + segment_base`` (checked on CMU-MOSI: row order equals ``OpinionLevelSentiment.csv``'s segment
numbers, which start at 1; s3prl numbers CMU-MOSEI segments from 0). Words sequences hold one
byte string per row, with ``sp`` marking pauses.

Segments take the frames and words whose interval midpoint lies inside the segment interval. Word
timestamps are given in seconds from the segment start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

import numpy as np

from ..labels import polarity_of_score
from .errors import MalformedSourceError, PathLike, require_file
from .features import frame_matrix
from .msa_csv import Folds
from .schema import make_row
from .validation import check_score

PAUSE_TOKENS: frozenset[str] = frozenset({"sp", "sil", ""})
"""Word entries that mark silence rather than a spoken word."""


@dataclass
class ComputationalSequence:
    """The contents of one ``.csd`` file: ``{video_id: (features, intervals)}`` plus its metadata."""

    path: str
    root_name: str
    metadata: dict[str, str]
    data: dict[str, tuple[np.ndarray, np.ndarray]]


def _decode(value: Any, path: str, key: str) -> str:
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else b""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise MalformedSourceError(path, f"not UTF-8 text ({error})", key) from error
    return str(value).strip().strip('"')


def read_computational_sequence(
    path: PathLike, videos: Optional[Iterable[str]] = None, words: bool = False, require_finite: bool = True
) -> ComputationalSequence:
    """Read a ``.csd`` file (optionally only some videos), checking its layout.

    Set ``words=True`` for a words sequence, whose features are byte strings (UTF-8); otherwise the
    features must be numeric and, unless ``require_finite=False``, finite. Intervals must be finite
    with start <= end.
    """
    import h5py

    path = require_file(path, "computational sequence")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise MalformedSourceError(path, f"not an HDF5 computational sequence ({error})") from error
    with handle:
        roots = [name for name in handle.keys() if isinstance(handle[name], h5py.Group)]
        if len(roots) != 1:
            raise MalformedSourceError(path, f"expected one root group, found {roots}")
        root = handle[roots[0]]
        if "data" not in root:
            raise MalformedSourceError(path, "no data group", f"{roots[0]}/data")
        metadata = {}
        if "metadata" in root:
            for name, item in root["metadata"].items():
                if isinstance(item, h5py.Dataset):
                    metadata[name] = _decode(item[()], path, f"{roots[0]}/metadata/{name}")
        group = root["data"]
        names = list(group.keys()) if videos is None else [v for v in videos if v in group]
        data = {}
        for video in names:
            entry = group[video]
            where = f"{roots[0]}/data/{video}"
            for part in ("features", "intervals"):
                if part not in entry:
                    raise MalformedSourceError(path, f"missing {part}", f"{where}/{part}")
            intervals = np.asarray(entry["intervals"][()], dtype=np.float64)
            raw = entry["features"][()]
            if intervals.ndim != 2 or intervals.shape[1] != 2:
                raise MalformedSourceError(path, f"intervals must be N x 2, got {intervals.shape}", f"{where}/intervals")
            wrong = ~np.isfinite(intervals).all(axis=1) | (intervals[:, 0] > intervals[:, 1])
            if wrong.any():
                rows = np.flatnonzero(wrong)[:5].tolist()
                raise MalformedSourceError(path, f"intervals not finite or start > end in rows {rows}", f"{where}/intervals")
            if words:
                cells = np.asarray(raw).reshape(len(raw), -1)[:, 0]
                features = np.array([_decode(w, path, f"{where}/features") for w in cells], dtype=object)
            else:
                features = frame_matrix(raw, path, f"{where}/features", require_finite=require_finite)
            if len(features) != len(intervals):
                raise MalformedSourceError(
                    path, f"{len(features)} feature rows but {len(intervals)} intervals", f"{where}/features"
                )
            data[video] = (features, intervals)
    return ComputationalSequence(path=path, root_name=roots[0], metadata=metadata, data=data)


def _inside(intervals: np.ndarray, start: float, end: float) -> np.ndarray:
    middle = intervals.mean(axis=1)
    return (middle >= start) & (middle < end)


def read_csd_segments(
    labels_path: PathLike,
    dataset: str,
    folds: Folds,
    segment_base: int = 1,
    words_path: Optional[PathLike] = None,
    acoustic_path: Optional[PathLike] = None,
    visual_path: Optional[PathLike] = None,
) -> list[dict[str, Any]]:
    """Read MOSI/MOSEI segments from a labels ``.csd`` (first feature column = sentiment score).

    Optional words, acoustic and visual ``.csd`` files add ``text``/``word_timestamps``,
    ``acoustic`` and ``visual`` per segment; videos absent from a feature file keep null features.
    A video in no fold, or a score that is not finite or outside [-3, 3], is an error naming the file
    and the segment. Keys are ``<video>_<segment_base + row>``; the clip is the video.
    """
    labels = read_computational_sequence(labels_path, require_finite=False)
    outside = [video for video in labels.data if video not in folds]
    if outside:
        raise MalformedSourceError(
            labels.path, f"{len(outside)} videos are in no standard fold ({outside[:5]}); pass folds that cover every video"
        )
    videos = list(labels.data)
    for video in videos:
        scores = labels.data[video][0]
        where = f"{labels.root_name}/data/{video}/features"
        if scores.shape[1] < 1:
            raise MalformedSourceError(labels.path, "a labels sequence needs the score in its first column", where)
        for index, score in enumerate(scores[:, 0]):
            try:
                check_score(float(score), f"segment {video}_{index + segment_base}")
            except ValueError as error:
                raise MalformedSourceError(labels.path, str(error), where) from None
    words = read_computational_sequence(words_path, videos, words=True) if words_path else None
    acoustic = read_computational_sequence(acoustic_path, videos) if acoustic_path else None
    visual = read_computational_sequence(visual_path, videos) if visual_path else None
    rows = []
    for video in videos:
        scores, intervals = labels.data[video]
        for index, ((start, end), score) in enumerate(zip(intervals, scores[:, 0])):
            row = make_row(
                dataset=dataset,
                split=folds[video],
                key=f"{video}_{index + segment_base}",
                clip=video,
                score=float(score),
                polarity=polarity_of_score(float(score)),
            )
            if words is not None and video in words.data:
                tokens, spans = words.data[video]
                keep = _inside(spans, start, end) & ~np.isin(tokens, list(PAUSE_TOKENS))
                row["text"] = " ".join(tokens[keep]) or None  # a segment without words has no transcript
                row["word_timestamps"] = [
                    {"word": word, "start": float(s - start), "end": float(e - start)}
                    for word, (s, e) in zip(tokens[keep], spans[keep])
                ]
            for modality, sequence in (("acoustic", acoustic), ("visual", visual)):
                if sequence is not None and video in sequence.data:
                    frames, spans = sequence.data[video]
                    selected = frames[_inside(spans, start, end)]
                    row[modality] = selected if len(selected) else np.zeros((1, frames.shape[1]), np.float32)
            rows.append(row)
    return rows
