# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Recognise a source from its path and convert it with the right reader.

=====================  ===============================================  ==========================
kind                   recognised by                                    datasets
=====================  ===============================================  ==========================
``meld_csv_folder``    a folder holding ``train/dev/test_sent_emo.csv``  meld
``transcript_csv``     a CSV whose header has ``text`` and ``id`` or     mosi, mosei
                       ``video_id``/``clip_id``
``segment_csv``        a header-less 5-column CSV (official              mosi, mosei
                       ``OpinionLevelSentiment.csv``); needs ``folds``
``iemocap_csv``        a CSV whose header has ``vid_cid``                iemocap
``csd``                a ``.csd`` file (labels sequence); needs          mosi, mosei
                       ``folds``
``pickle``             ``.pkl``/``.pickle``: an MMSA pickle with         mosi, mosei
                       transcripts; needs ``trust_pickle``
=====================  ===============================================  ==========================

Features (``features``): for MOSI/MOSEI an MMSA or official UniMSE pickle, joined by id, or for a
``.csd`` source ``acoustic=<file.csd>`` / ``visual=<file.csd>``; for MELD and IEMOCAP the official
feature pickle. Transcripts (``transcripts``) complete label-only sources: a transcript CSV, or for a
``.csd`` source a words ``.csd``.
"""

from __future__ import annotations

import csv
import os
from typing import Any, Literal, Optional, Sequence

from .context import TokenCounter
from .csd import read_csd_segments
from .csv_source import CSV_ENCODING
from .errors import MalformedSourceError
from .features import join_frames
from .iemocap import read_iemocap
from .meld import MELD_FILES, read_meld
from .msa_csv import attach_transcripts, read_opinion_segment_csv, read_standard_folds, read_transcript_csv, read_transcripts
from .msa_pickle import read_mmsa_pickle, read_msa_feature_pickle
from .pickles import PICKLE_SUFFIXES
from .schema import DATASET_NAMES, MSA_DATASETS, rows_to_dataset_dict
from .validation import rows_without_text

SourceKind = Literal["meld_csv_folder", "transcript_csv", "segment_csv", "iemocap_csv", "csd", "pickle"]

CSD_SEGMENT_BASE: dict[str, int] = {"mosi": 1, "mosei": 0}
"""First segment number of a labels ``.csd`` (MOSI segments start at 1, s3prl's MOSEI indices at 0)."""


def detect_source_kind(path: str) -> SourceKind:
    """Return the kind of source at ``path`` (see the module docstring); raises if unrecognised."""
    if os.path.isdir(path):
        if all(os.path.isfile(os.path.join(path, name)) for name in MELD_FILES.values()):
            return "meld_csv_folder"
        raise FileNotFoundError(f"{path} is a folder but lacks the MELD CSVs {sorted(MELD_FILES.values())}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"source not found: {path}")
    lower = path.lower()
    if lower.endswith(".csd"):
        return "csd"
    if lower.endswith(PICKLE_SUFFIXES):
        return "pickle"
    if lower.endswith((".csv", ".tsv")):
        try:
            with open(path, newline="", encoding=CSV_ENCODING) as handle:
                header = next(csv.reader(handle), [])
        except (UnicodeDecodeError, csv.Error) as error:
            raise MalformedSourceError(path, f"not a readable UTF-8 CSV ({error})") from error
        columns = {c.strip() for c in header}
        if "vid_cid" in columns:
            return "iemocap_csv"
        if "text" in columns and ("id" in columns or {"video_id", "clip_id"} <= columns):
            return "transcript_csv"
        if len(header) == 5 and _is_number(header[0]) and _is_number(header[4]):
            return "segment_csv"
        raise MalformedSourceError(path, f"unrecognised CSV header {header}")
    raise ValueError(f"cannot tell the kind of source from {path}; expected a folder, .csv, .csd or pickle")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _split_features(features: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    plain, named = [], {}
    for item in features:
        name, sep, value = item.partition("=")
        if sep and name in ("acoustic", "visual"):
            named[name] = value
        else:
            plain.append(item)
    return plain, named


def load_corpus(
    dataset: str,
    source: str,
    folds: Optional[str] = None,
    features: Sequence[str] = (),
    transcripts: Optional[str] = None,
    trust_pickle: bool = False,
    window: int = 2,
    iemocap_context: Literal["speaker", "dialogue"] = "speaker",
    count_tokens: Optional[TokenCounter] = None,
    max_context_tokens: Optional[int] = None,
    require_text: bool = True,
    zero_infinite_features: bool = False,
) -> Any:
    """Convert one corpus from ``source`` into a ``datasets.DatasetDict`` in the row schema.

    The rows are checked before they are returned (:mod:`.validation`: valid values, unique ids,
    splits disjoint by clip); every error names the file and the row or line.

    Args:
        dataset: ``mosi``, ``mosei``, ``meld`` or ``iemocap``.
        source: the source path; its kind is recognised by :func:`detect_source_kind`.
        folds: standard-folds JSON; required by ``segment_csv`` and ``csd`` sources, and, when
            given with a transcript CSV, it decides the splits instead of the ``mode`` column.
        features: feature files (see the module docstring).
        transcripts: transcripts for label-only sources.
        trust_pickle: allow unpickling (which executes code from the file).
        window: ERC context turns before and after the target.
        iemocap_context: ``speaker`` (official) or ``dialogue``.
        count_tokens, max_context_tokens: optional token budget for ERC context windows.
        require_text: refuse rows without a transcript (the model reads text, so a training set
            needs it); ``False`` keeps them with null ``text``, e.g. to inspect a label-only source.
        zero_infinite_features: replace +-inf in MMSA/official MSA feature pickles by 0, as MMSA's
            loader does (otherwise non-finite features are an error).
    """
    if dataset not in DATASET_NAMES:
        raise ValueError(f"`dataset` must be one of {DATASET_NAMES}, got {dataset!r}")
    if isinstance(window, bool) or not isinstance(window, int) or window < 0:
        raise ValueError(f"`window` must be an integer >= 0, got {window!r}")
    if iemocap_context not in ("speaker", "dialogue"):
        raise ValueError(f"`iemocap_context` must be 'speaker' or 'dialogue', got {iemocap_context!r}")
    kind = detect_source_kind(source)
    plain, named = _split_features(features)
    if named and kind != "csd":
        raise ValueError("acoustic=/visual= feature files are .csd sequences and go with a .csd source")
    allowed = {
        "meld_csv_folder": ("meld",),
        "iemocap_csv": ("iemocap",),
        "transcript_csv": MSA_DATASETS,
        "segment_csv": MSA_DATASETS,
        "csd": MSA_DATASETS,
        "pickle": MSA_DATASETS,
    }[kind]
    if dataset not in allowed:
        hint = " (MELD/IEMOCAP pickles are feature files: pass them as features)" if kind == "pickle" else ""
        raise ValueError(f"a {kind} source holds {'/'.join(allowed)}, not {dataset}{hint}")
    if len(plain) > 1:
        raise ValueError(f"expected at most one feature pickle, got {plain}")
    if transcripts and kind not in ("segment_csv", "csd"):
        raise ValueError(f"`transcripts` completes label-only sources (segment CSV, .csd); a {kind} source has its own transcripts")
    if folds and kind in ("meld_csv_folder", "iemocap_csv", "pickle"):
        raise ValueError(f"`folds` apply to MOSI/MOSEI CSV and .csd sources; a {kind} source has its own splits")
    feature_pickle = plain[0] if plain else None
    context_options = dict(window=window, count_tokens=count_tokens, max_context_tokens=max_context_tokens)

    if kind == "meld_csv_folder":
        rows = read_meld(source, feature_pickle, trust_pickle, **context_options)
    elif kind == "iemocap_csv":
        rows = read_iemocap(source, feature_pickle, trust_pickle, context=iemocap_context, **context_options)
    else:
        fold_map = read_standard_folds(folds) if folds else None
        if kind in ("segment_csv", "csd") and fold_map is None:
            raise ValueError(f"a {kind} source has no split column: pass the standard folds (--folds)")
        words = transcripts if kind == "csd" and transcripts and transcripts.lower().endswith(".csd") else None
        if kind == "transcript_csv":
            rows = read_transcript_csv(source, dataset, fold_map)
        elif kind == "segment_csv":
            rows = read_opinion_segment_csv(source, fold_map, dataset)
        elif kind == "csd":
            rows = read_csd_segments(
                source,
                dataset,
                fold_map,
                CSD_SEGMENT_BASE[dataset],
                words_path=words,
                acoustic_path=named.get("acoustic"),
                visual_path=named.get("visual"),
            )
        else:
            rows = read_mmsa_pickle(source, dataset, trust_pickle, zero_infinite_features)
        if transcripts and words is None:
            attach_transcripts(rows, read_transcripts(transcripts))
        if feature_pickle:
            join_frames(rows, read_msa_feature_pickle(feature_pickle, trust_pickle, zero_infinite_features), feature_pickle)
    missing = rows_without_text(rows)
    if require_text and missing:
        hint = "pass transcripts (--transcripts)" if not transcripts else f"{transcripts} has no transcript for them"
        raise MalformedSourceError(
            source,
            f"{len(missing)} of {len(rows)} rows have no transcript (first: {missing[:5]}); {hint}. A training set needs "
            "text: drop these rows explicitly (--drop_rows_without_text) or keep them with require_text=False",
            "text",
        )
    return rows_to_dataset_dict(rows, source)
