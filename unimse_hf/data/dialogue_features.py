# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""The official UniMSE feature pickles of the ERC corpora (``meld_data_0610.pkl``, ``iemocap_data_0610.pkl``).

Layout of the official feature pickle: ``{"audio": [train, dev, test], "video": [train, dev, test]}``
where each element is a dict from an utterance key to a ``(T, D)`` frame matrix (a 1-D vector is
read as one frame). MELD keys are ``<Dialogue_ID>_<Utterance_ID>`` and restart in every split, so
the features stay grouped by split; IEMOCAP keys are ``vid_cid`` (``Ses01F_impro01_F000``). Either
modality may be missing from the file; a modality missing for one utterance stays null. Frames must
be finite; an utterance key given twice (after ``normalize_key``) is an error.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .errors import MalformedSourceError, PathLike
from .features import frame_matrix
from .pickles import load_pickle
from .schema import SPLITS

_FILE_MODALITIES = (("acoustic", "audio"), ("visual", "video"))

SplitFrameTables = dict[str, dict[str, dict[str, Optional[np.ndarray]]]]
"""``{split: {key: {"acoustic": array or None, "visual": array or None}}}``."""


def read_dialogue_feature_pickle(
    path: PathLike, trust_pickle: bool = False, normalize_key: Callable[[str], str] = str
) -> SplitFrameTables:
    """Read an official MELD/IEMOCAP feature pickle into per-split frame tables.

    ``normalize_key`` maps the file's keys to the converter's keys (e.g. MELD ``0_3`` -> ``dia0_utt3``).
    """
    data = load_pickle(path, trust_pickle)
    path = str(path)
    if not isinstance(data, dict):
        raise MalformedSourceError(path, f"expected a dict with 'audio' and/or 'video', got {type(data).__name__}")
    present = [(modality, key) for modality, key in _FILE_MODALITIES if key in data]
    if not present:
        raise MalformedSourceError(path, f"neither 'audio' nor 'video' found; keys are {sorted(map(str, data))}", "audio")
    tables: SplitFrameTables = {split: {} for split in SPLITS}
    for modality, key in present:
        parts = data[key]
        if not isinstance(parts, (list, tuple)) or len(parts) != 3:
            raise MalformedSourceError(path, "expected a list [train, dev, test] of dicts", key)
        for split, part in zip(SPLITS, parts):
            if not isinstance(part, dict):
                raise MalformedSourceError(path, f"expected a dict of utterance -> frames, got {type(part).__name__}", f"{key}[{split}]")
            for raw_key, frames in part.items():
                utterance = normalize_key(str(raw_key))
                entry = tables[split].setdefault(utterance, {"acoustic": None, "visual": None})
                where = f"{key}[{split}][{raw_key!s}]"
                if entry[modality] is not None:
                    raise MalformedSourceError(path, f"utterance {utterance!r} appears twice", where)
                entry[modality] = frame_matrix(frames, path, where)
    return tables
