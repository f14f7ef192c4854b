# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Small files that reproduce the exact layouts of the pickle and ``.csd`` sources, for the data tests."""

from __future__ import annotations

import os
import pickle
from typing import Any, Optional

import numpy as np
import pandas as pd

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "data")
MELD_DIR = os.path.join(DATA, "meld")
MOSI_LABELS = os.path.join(DATA, "mosi", "label.csv")
MOSI_SEGMENTS = os.path.join(DATA, "mosi", "OpinionLevelSentiment.csv")
MOSI_FOLDS = os.path.join(DATA, "mosi", "cmu_mosi_std_folds.json")
MOSI_LABELS_CSD = os.path.join(DATA, "mosi", "CMU_MOSI_Opinion_Labels.csd")
MOSEI_LABELS = os.path.join(DATA, "mosei", "label.csv")
MOSEI_FOLDS = os.path.join(DATA, "mosei", "cmu_mosei_std_folds.json")
T5_VOCAB = os.path.join(DATA, "t5", "spiece.model")

MSA_UTTERANCES = {
    "train": [("vidA", 1, "it was great", 2.0), ("vidA", 2, "i hated the ending", -1.5), ("vid_B", 1, "it is a movie", 0.0)],
    "valid": [("vidC", 1, "quite good acting", 1.2)],
    "test": [("vidD", 3, "boring and slow", -2.4)],
}
"""Utterances (video, clip, transcript, score) per split used by the MSA pickle fixtures."""


def dump_pickle(obj: Any, path: str) -> str:
    """Pickle ``obj`` to ``path`` and return the path."""
    with open(path, "wb") as handle:
        pickle.dump(obj, handle)
    return path


def frames(length: int, dim: int, seed: int) -> np.ndarray:
    """Return a deterministic ``(length, dim)`` float32 matrix with no all-zero row."""
    return np.random.default_rng(seed).uniform(0.5, 1.5, size=(length, dim)).astype(np.float32)


def true_lengths(split: str) -> list[tuple[int, int]]:
    """Return the (acoustic, visual) true lengths of each fixture utterance of ``split``."""
    return [(2 + i, 3 + i) for i in range(len(MSA_UTTERANCES[split]))]


def mmsa_split(split: str, aligned: bool, max_frames: int = 8, acoustic_dim: int = 5, visual_dim: int = 20) -> dict:
    """Return one split dict of an MMSA pickle (features padded at the end, as MMSA does)."""
    utterances = MSA_UTTERANCES[split]
    count = len(utterances)
    audio = np.zeros((count, max_frames, acoustic_dim), np.float32)
    vision = np.zeros((count, max_frames, visual_dim), np.float32)
    for i, (a_len, v_len) in enumerate(true_lengths(split)):
        audio[i, :a_len] = frames(a_len, acoustic_dim, seed=10 * i + 1)
        vision[i, :v_len] = frames(v_len, visual_dim, seed=10 * i + 2)
    content = {
        "raw_text": np.array([u[2] for u in utterances], dtype=object),
        "id": np.array([f"{u[0]}$_${u[1]}" for u in utterances], dtype=object),
        "regression_labels": np.array([u[3] for u in utterances], dtype=np.float32),
        "classification_labels": np.array([float(u[3] > 0) for u in utterances], dtype=np.float32),
        "text": np.zeros((count, max_frames, 768), np.float32),
        "text_bert": np.zeros((count, 3, max_frames), np.float32),
        "audio": audio,
        "vision": vision,
    }
    if not aligned:
        lengths = true_lengths(split)
        content["audio_lengths"] = [a for a, _ in lengths]
        content["vision_lengths"] = [v for _, v in lengths]
    return content


def write_mmsa_pickle(path: str, aligned: bool = False) -> str:
    """Write an MMSA ``aligned_50.pkl``/``unaligned_50.pkl`` look-alike."""
    return dump_pickle({split: mmsa_split(split, aligned) for split in MSA_UTTERANCES}, path)


def write_official_msa_pickle(path: str, max_frames: int = 6, dim: int = 64) -> str:
    """Write an official ``mosi_data_0610.pkl`` look-alike: left-padded features, ids (N, 2) of bytes, no text.

    Within each split the utterances are stored in reverse order, so a join by position would fail.
    """
    data = {}
    for split, utterances in MSA_UTTERANCES.items():
        order = list(reversed(range(len(utterances))))
        audio = np.zeros((len(order), max_frames, dim), np.float32)
        vision = np.zeros((len(order), max_frames, dim), np.float32)
        for row, i in enumerate(order):
            a_len, v_len = true_lengths(split)[i]
            audio[row, max_frames - a_len :] = frames(a_len, dim, seed=100 + i)
            vision[row, max_frames - v_len :] = frames(v_len, dim, seed=200 + i)
        data[split] = {
            "audio": audio,
            "vision": vision,
            "labels": np.array([[[utterances[i][3]]] for i in order], dtype=np.float32),
            "id": np.array([[f"{utterances[i][0]}_{utterances[i][1]}".encode(), b"x"] for i in order], dtype=object),
        }
    return dump_pickle(data, path)


def write_msa_transcript_csv(path: str) -> str:
    """Write an MMSA-style ``label.csv`` (video_id, clip_id, text, label, annotation, mode) for the fixture utterances."""
    rows = []
    for split, utterances in MSA_UTTERANCES.items():
        for video, clip, text, score in utterances:
            annotation = "Positive" if score > 0 else "Negative" if score < 0 else "Neutral"
            rows.append({"video_id": video, "clip_id": clip, "text": text, "label": score, "annotation": annotation, "mode": split})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def write_meld_subset(folder: str, dialogues: int = 3) -> str:
    """Copy the first ``dialogues`` dialogues of each real MELD CSV into ``folder``."""
    os.makedirs(folder, exist_ok=True)
    for name in ("train_sent_emo.csv", "dev_sent_emo.csv", "test_sent_emo.csv"):
        frame = pd.read_csv(os.path.join(MELD_DIR, name))
        keep = sorted(frame["Dialogue_ID"].unique())[:dialogues]
        frame[frame["Dialogue_ID"].isin(keep)].to_csv(os.path.join(folder, name), index=False)
    return folder


def write_dialogue_feature_pickle(path: str, keys_per_split: list[list[str]], dim: int = 64, video: bool = True) -> str:
    """Write an official ``meld_data_0610.pkl``/``iemocap_data_0610.pkl`` look-alike for the given keys."""
    audio = [{key: frames(3 + n % 4, dim, seed=n) for n, key in enumerate(keys)} for keys in keys_per_split]
    data: dict[str, Any] = {"audio": audio}
    if video:
        data["video"] = [{key: frames(2, dim, seed=1000 + n) for n, key in enumerate(keys)} for keys in keys_per_split]
    return dump_pickle(data, path)


IEMOCAP_TURNS = [
    # (vid_cid, start, label, text)
    ("Ses01F_impro01_F000", 6.2, "neu", "Excuse me."),
    ("Ses01F_impro01_M000", 7.5, "fru", "Do you have your forms?"),
    ("Ses01F_impro01_F001", 10.0, "neu", "Yeah."),
    ("Ses01F_impro01_M001", 10.9, "fru", "Let me see them."),
    ("Ses01F_impro01_F002", 14.8, "sur", "Is there a problem?"),
    ("Ses01F_impro01_F003", 27.4, "ang", "Well what's the problem?"),
    ("Ses01F_impro01_M002", 16.8, "fru", "Who told you to get in this line?"),
    ("Ses02M_script01_1_F000", 3.0, "hap", "That is wonderful news."),
    ("Ses02M_script01_1_M000", 5.0, "exc", "I know, I can't wait!"),
    ("Ses02M_script01_1_F001", 8.0, "sad", "But we will miss you."),
    ("Ses05F_impro03_F000", 4.8, "hap", "Well Vegas was awesome."),
    ("Ses05F_impro03_M000", 7.9, "xxx", "Yeah?"),
    ("Ses05F_impro03_M001", 9.1, "exc", "Tell me everything!"),
]
"""A miniature ``IEMOCAP_all.csv``: three dialogues, Sessions 1, 2 and 5, ten label kinds."""


def write_iemocap_csv(path: str, turns: Optional[list[tuple[str, float, str, str]]] = None) -> str:
    """Write a label CSV in the official ``IEMOCAP_all.csv`` layout."""
    rows = []
    for vid_cid, start, label, text in turns or IEMOCAP_TURNS:
        rows.append(
            {
                "start_stop": f"[{start:.4f} - {start + 1.5:.4f}]",
                "vid_cid": vid_cid,
                "label": label,
                "VAD": "[2.5000, 2.5000, 2.5000]",
                "text": text,
                "vid": vid_cid.rsplit("_", 1)[0],
                "i": 1,
                "path": f"/data/{vid_cid}.wav",
            }
        )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def write_csd(path: str, root: str, data: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    """Write a CMU-MultimodalSDK computational sequence with ``data/<video>/{features,intervals}`` and metadata."""
    import h5py

    with h5py.File(path, "w") as handle:
        group = handle.create_group(root)
        for video, (features, intervals) in data.items():
            entry = group.create_group("data").require_group(video) if "data" not in group else group["data"].create_group(video)
            entry.create_dataset("features", data=features)
            entry.create_dataset("intervals", data=np.asarray(intervals, dtype=np.float64))
        metadata = group.create_group("metadata")
        metadata.create_dataset("root name", data=np.array([f'"{root}"'.encode()]))
        metadata.create_dataset("dataset name", data=np.array([b'"fixture"']))
    return path
