# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Converters from the MOSI, MOSEI, MELD and IEMOCAP sources into one ``datasets`` schema.

One module per source (:mod:`.msa_csv`, :mod:`.csd`, :mod:`.msa_pickle`, :mod:`.meld`,
:mod:`.iemocap`), the row schema (:mod:`.schema`), ERC context windows (:mod:`.context`), source
recognition (:mod:`.sources`), Parquet/card/Hub output (:mod:`.export`) and the joint training set
(:mod:`.joint`). Label completion lives in :mod:`unimse_hf.universal_labels`.
"""

from .context import build_context, t5_token_counter
from .csd import ComputationalSequence, read_computational_sequence, read_csd_segments
from .errors import MalformedSourceError
from .export import load_parquet_splits, push_prepared_to_hub, write_dataset_card, write_parquet_splits
from .iemocap import read_iemocap
from .joint import build_joint_dataset, load_joint_dataset, resize_frames
from .meld import read_meld
from .msa_csv import (
    attach_transcripts,
    read_opinion_segment_csv,
    read_standard_folds,
    read_transcript_csv,
    read_transcripts,
)
from .msa_pickle import read_mmsa_pickle, read_msa_feature_pickle
from .pickles import load_pickle
from .schema import COLUMNS, DATASET_NAMES, SPLITS, make_row, rows_to_dataset, rows_to_dataset_dict, unimse_features
from .sources import detect_source_kind, load_corpus

__all__ = [
    "COLUMNS",
    "DATASET_NAMES",
    "SPLITS",
    "ComputationalSequence",
    "MalformedSourceError",
    "attach_transcripts",
    "build_context",
    "build_joint_dataset",
    "detect_source_kind",
    "load_corpus",
    "load_joint_dataset",
    "load_parquet_splits",
    "load_pickle",
    "make_row",
    "push_prepared_to_hub",
    "read_computational_sequence",
    "read_csd_segments",
    "read_iemocap",
    "read_meld",
    "read_mmsa_pickle",
    "read_msa_feature_pickle",
    "read_opinion_segment_csv",
    "read_standard_folds",
    "read_transcript_csv",
    "read_transcripts",
    "resize_frames",
    "rows_to_dataset",
    "rows_to_dataset_dict",
    "t5_token_counter",
    "unimse_features",
    "write_dataset_card",
    "write_parquet_splits",
]
