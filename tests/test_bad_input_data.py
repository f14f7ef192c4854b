# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Bad corpus files, bad prepare_data.py arguments and bad prepared folders: each is refused before
anything is written, with an error naming the file, row or argument; plus the data-loss paths
(rerun into a folder with other splits, a failure while writing a split, overlapping splits)."""

from __future__ import annotations

import importlib.util
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from fixtures_data import REPO, write_csd, write_iemocap_csv, write_mmsa_pickle

from unimse_hf.data import load_corpus, load_joint_dataset
from unimse_hf.data.errors import MalformedSourceError, OutputExistsError
from unimse_hf.data.export import check_prepared_folder, load_parquet_splits, push_prepared_to_hub, write_prepared_dataset
from unimse_hf.data.schema import make_row, rows_to_dataset_dict, unimse_features
from unimse_hf.universal_labels import complete_universal_labels


def _load_prepare_main():
    spec = importlib.util.spec_from_file_location("prepare_data", os.path.join(REPO, "examples", "prepare_data.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


prepare_main = _load_prepare_main()

GOOD_LINES = [
    ("vA_1", "it was great", "2.0", "train"),
    ("vA_2", "i hated the ending", "-1.5", "train"),
    ("vB_1", "quite good acting", "1.2", "valid"),
    ("vC_1", "boring and slow", "-2.4", "test"),
]
"""A valid MOSI transcript CSV: two train clips of video vA, one validation and one test video."""

FOLDS = '{"train": ["vA"], "valid": ["vB"], "test": ["vC"]}'
SEGMENT_LINES = ["0.0,2.0,vA,1,2.0", "2.0,4.0,vA,2,-1.5", "0.0,1.0,vB,1,1.2", "0.0,3.0,vC,1,-2.4"]


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (``None`` for folders)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def transcript_csv(tmp: Path, lines=GOOD_LINES, header: str = "id,text,label,mode", name: str = "label.csv", prefix: str = "") -> str:
    path = tmp / name
    body = "\n".join(",".join(f'"{cell}"' if "," in cell else cell for cell in line) for line in lines)
    path.write_text(prefix + header + "\n" + body + "\n", encoding="utf-8")
    return str(path)


def replaced(index: int, column: int, value: str) -> list[tuple[str, ...]]:
    lines = [list(line) for line in GOOD_LINES]
    lines[index][column] = value
    return [tuple(line) for line in lines]


def cli(tmp: Path, *args: str) -> Callable[[], object]:
    """prepare_data.py with ``args`` writing to ``tmp/out``."""
    return lambda: prepare_main([*args, "--output_dir", str(tmp / "out")])


def cli_mosi(tmp: Path, lines=GOOD_LINES, **kwargs) -> Callable[[], object]:
    return cli(tmp, "--dataset", "mosi", "--source", transcript_csv(tmp, lines, **kwargs))


def segments(tmp: Path, lines=SEGMENT_LINES, folds: str = FOLDS, *extra: str) -> Callable[[], object]:
    source = tmp / "OpinionLevelSentiment.csv"
    source.write_text("\n".join(lines) + "\n")
    (tmp / "folds.json").write_text(folds)
    transcripts = transcript_csv(tmp, name="transcripts.csv")
    return cli(tmp, "--dataset", "mosi", "--source", str(source), "--folds", str(tmp / "folds.json"), "--transcripts", transcripts, *extra)


def labels_csd(tmp: Path, scores, intervals=None, folds=None) -> Callable[[], object]:
    intervals = np.array([[0.0, 2.0], [2.0, 4.0]]) if intervals is None else np.asarray(intervals)
    path = write_csd(str(tmp / "labels.csd"), "Opinion Segment Labels", {"vA": (np.array(scores, np.float32).reshape(-1, 1), intervals)})
    folds_path = _write_folds(tmp, {"vA": "train"} if folds is None else folds)
    return lambda: load_corpus("mosi", path, folds=folds_path, require_text=False)


def _write_folds(tmp: Path, folds: dict[str, str]) -> str:
    import json

    grouped = {"train": [], "valid": [], "test": []}
    for video, split in folds.items():
        grouped[split].append(video)
    for split, name in (("train", "t0"), ("valid", "v0"), ("test", "e0")):
        grouped[split] = grouped[split] or [name]
    path = tmp / "folds.json"
    path.write_text(json.dumps(grouped))
    return str(path)


MELD_HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime"
MELD_LINES = [
    '1,"Oh, hi.",Ross,joy,positive,0,0,1,1,"00:00:01,000","00:00:02,000"',
    '2,What is that?,Rachel,surprise,negative,0,1,1,1,"00:00:02,000","00:00:03,000"',
]


def meld_folder(tmp: Path, train_lines=MELD_LINES) -> Callable[[], object]:
    folder = tmp / "meld"
    folder.mkdir()
    for name, lines in (("train_sent_emo.csv", train_lines), ("dev_sent_emo.csv", MELD_LINES), ("test_sent_emo.csv", MELD_LINES)):
        (folder / name).write_text(MELD_HEADER + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return cli(tmp, "--dataset", "meld", "--source", str(folder))


def meld_line(**changes: str) -> list[str]:
    cells = dict(utterance="Hello there.", emotion="neutral", dialogue="1", utterance_id="0")
    cells.update(changes)
    return MELD_LINES + [
        f'3,{cells["utterance"]},Joey,{cells["emotion"]},neutral,{cells["dialogue"]},{cells["utterance_id"]},1,1,"00:00:04,000","00:00:05,000"'
    ]


def mmsa(tmp: Path, change: Callable[[dict], None], **load_kwargs) -> Callable[[], object]:
    path = write_mmsa_pickle(str(tmp / "unaligned_50.pkl"))
    with open(path, "rb") as handle:
        data = pickle.load(handle)
    change(data)
    with open(path, "wb") as handle:
        pickle.dump(data, handle)
    return lambda: load_corpus("mosi", path, trust_pickle=True, **load_kwargs)


def _set(data: dict, split: str, key: str, index, value) -> None:
    data[split][key][index] = value


def schema_rows(dataset: str = "mosi", clip_of=lambda split, n: f"{split}{n}") -> list[dict]:
    """Completed rows of one corpus: two train rows, one validation and one test row, each its own clip."""
    rows = []
    for split, count in (("train", 2), ("validation", 1), ("test", 1)):
        for n in range(count):
            row = make_row(dataset=dataset, split=split, key=f"v{split}{n}_1", clip=clip_of(split, n), text="a fine film",
                           score=1.0, polarity="positive", meld_emotion="joy", iemocap_emotion="joy")
            row.update(target="positive,1.0,joy,joy", slot_sources={"score": "gold", "meld_emotion": "gold", "iemocap_emotion": "gold"})
            rows.append(row)
    return rows


def raw_folder(tmp: Path, rows: list[dict], name: str = "prepared") -> str:
    """Write rows as split Parquet files without any check (a folder someone else produced)."""
    from datasets import Dataset

    folder = tmp / name
    folder.mkdir()
    for split in ("train", "validation", "test"):
        part = [r for r in rows if r["split"] == split]
        if part:
            Dataset.from_list(part, features=unimse_features()).to_parquet(str(folder / f"{split}.parquet"))
    return str(folder)


def prepared_folder(folder: Path, lines=GOOD_LINES) -> str:
    """A real prepared folder written by prepare_data.py from a small transcript CSV."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    source = transcript_csv(folder.parent, lines, name=f"{folder.name}-source.csv")
    assert prepare_main(["--dataset", "mosi", "--source", source, "--output_dir", str(folder)]) == 0
    return str(folder)


def with_rows(tmp: Path, change: Callable[[list[dict]], None], dataset: str = "mosi") -> Callable[[], object]:
    rows = schema_rows()
    change(rows)
    folder = raw_folder(tmp, rows)
    return lambda: load_joint_dataset({dataset: folder})


def _frames(rows: list[dict], index: int, value) -> None:
    rows[index]["acoustic"] = value


def _latin1_csv(tmp: Path) -> str:
    path = tmp / "latin.csv"
    path.write_bytes("id,text,label,mode\nvA_1,très bien,2.0,train\n".encode("latin-1"))
    return str(path)


def _segments_only(tmp: Path) -> str:
    path = tmp / "OpinionLevelSentiment.csv"
    path.write_text("\n".join(SEGMENT_LINES) + "\n")
    return str(path)


def _folds_file(tmp: Path) -> str:
    (tmp / "folds.json").write_text(FOLDS)
    return str(tmp / "folds.json")


def _segments_with_transcripts(tmp: Path, transcript_lines) -> Callable[[], object]:
    transcripts = transcript_csv(tmp, transcript_lines, name="transcripts.csv")
    return cli(tmp, "--dataset", "mosi", "--source", _segments_only(tmp), "--folds", _folds_file(tmp), "--transcripts", transcripts)


def _iemocap(tmp: Path, turns) -> Callable[[], object]:
    path = write_iemocap_csv(str(tmp / "IEMOCAP_all.csv"), turns)
    return cli(tmp, "--dataset", "iemocap", "--source", path)


def _features_with(tmp: Path, change: Callable[[dict], None]) -> Callable[[], object]:
    source = transcript_csv(tmp, [("vidA_1", "it was great", "2.0", "train"), ("vidC_1", "quite good", "1.2", "valid"),
                                  ("vidD_3", "boring", "-2.4", "test")])
    path = write_mmsa_pickle(str(tmp / "features.pkl"))
    with open(path, "rb") as handle:
        data = pickle.load(handle)
    change(data)
    with open(path, "wb") as handle:
        pickle.dump(data, handle)
    return cli(tmp, "--dataset", "mosi", "--source", source, "--features", path, "--trust_pickle")


def _features_of_two_widths(tmp: Path) -> Callable[[], object]:
    def narrow_validation(data):
        data["valid"]["audio"] = data["valid"]["audio"][:, :, :3]

    return _features_with(tmp, narrow_validation)


def _occupied(tmp: Path, foreign: bool = False, overwrite: bool = False) -> Callable[[], object]:
    prepared_folder(tmp / "out")
    if foreign:
        (tmp / "out" / "notes.txt").write_text("my notes")
    flags = ["--overwrite"] if overwrite else []
    return cli(tmp, "--dataset", "mosi", "--source", transcript_csv(tmp), *flags)


def _output_is_a_file(tmp: Path) -> Callable[[], object]:
    (tmp / "out").write_text("not a folder")
    return cli_mosi(tmp)


def _meld_with_folds(tmp: Path) -> Callable[[], object]:
    meld_folder(tmp)
    return cli(tmp, "--dataset", "meld", "--source", str(tmp / "meld"), "--folds", _folds_file(tmp))


def _same_corpus_pool(tmp: Path) -> Callable[[], object]:
    pool = prepared_folder(tmp / "pool")
    return cli(tmp, "--dataset", "mosi", "--source", transcript_csv(tmp), "--universal_labels", str(tmp), "--label_pools", pool)


def _stale_split(tmp: Path) -> Callable[[], object]:
    folder = prepared_folder(tmp / "mosi", GOOD_LINES[:2])
    prepared_folder(tmp / "full")
    (tmp / "mosi" / "test.parquet").write_bytes((tmp / "full" / "test.parquet").read_bytes())
    return lambda: load_joint_dataset({"mosi": folder})


def _edited_split(tmp: Path) -> Callable[[], object]:
    folder = prepared_folder(tmp / "mosi")
    other = prepared_folder(tmp / "other", [GOOD_LINES[0], GOOD_LINES[1], ("vB_2", "fine", "0.4", "valid"), GOOD_LINES[3]])
    (tmp / "mosi" / "validation.parquet").write_bytes((Path(other) / "validation.parquet").read_bytes())
    return lambda: load_joint_dataset({"mosi": folder})


def _media_script(tmp: Path, lines, *flags: str) -> Callable[[], object]:
    """examples/prepare_media_dataset.py on a labels CSV (checked before any clip is processed)."""
    spec = importlib.util.spec_from_file_location("prepare_media_dataset", os.path.join(REPO, "examples", "prepare_media_dataset.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    labels = transcript_csv(tmp, lines, name="media_labels.csv")
    argv = ["--media_dir", os.path.join(REPO, "data", "mosi", "raw"), "--labels", labels, "--output_dir", str(tmp / "out"), *flags]
    return lambda: module.main(argv)


def _complete_rows_with(change: Callable[[list[dict]], None]) -> Callable[[], object]:
    """complete_universal_labels on a hand-built Dataset that skipped the row checks."""
    from datasets import Dataset

    rows = schema_rows()
    for row in rows:
        row.update(meld_emotion=None, iemocap_emotion=None, slot_sources=None, target=None)
    change(rows)
    dataset = Dataset.from_list(rows, features=unimse_features())
    return lambda: complete_universal_labels({"mosi": {"train": dataset}}, None, show_progress=False)


def _joint(**folders: str) -> Callable[[], object]:
    return lambda: load_joint_dataset(folders)


def _old_layout(tmp: Path) -> Callable[[], object]:
    import pyarrow.parquet as pq

    folder = prepared_folder(tmp / "mosi")
    for split in ("train", "validation", "test"):
        path = tmp / "mosi" / f"{split}.parquet"
        pq.write_table(pq.read_table(path).drop(["clip"]), path)
    (tmp / "mosi" / "README.md").unlink()  # an older folder: no checksummed card to compare with
    return lambda: load_joint_dataset({"mosi": folder})


@dataclass
class Case:
    name: str
    build: Callable[[Path], Callable[[], object]]
    error: type
    match: str


CASES = [
    # ------------------------------------------------------------------ transcript CSV (through the CLI)
    Case("csv_score_inf", lambda t: cli_mosi(t, replaced(1, 2, "inf")), MalformedSourceError,
         r"label\.csv \[label\]: scores must be finite and within \[-3\.0, 3\.0\]: file lines \[3\] \(vA_2=inf\)"),
    Case("csv_score_minus_inf", lambda t: cli_mosi(t, replaced(3, 2, "-inf")), MalformedSourceError, r"label\.csv \[label\]: .*file lines \[5\]"),
    Case("csv_score_nan", lambda t: cli_mosi(t, replaced(0, 2, "nan")), MalformedSourceError,
         r"label\.csv \[label\]: not a number in file lines \[2\]"),
    Case("csv_score_out_of_range", lambda t: cli_mosi(t, replaced(2, 2, "3.5")), MalformedSourceError,
         r"label\.csv \[label\]: scores must be finite and within .*file lines \[4\] \(vB_1=3\.5\)"),
    Case("csv_score_not_a_number", lambda t: cli_mosi(t, replaced(0, 2, "great")), MalformedSourceError,
         r"label\.csv \[label\]: not a number in file lines \[2\] \(\['great'\]\)"),
    Case("csv_empty_text", lambda t: cli_mosi(t, replaced(1, 1, "")), MalformedSourceError, r"label\.csv \[text\]: empty values in file lines \[3\]"),
    Case("csv_blank_text", lambda t: cli_mosi(t, replaced(1, 1, "   ")), MalformedSourceError, r"label\.csv \[text\]: empty values in file lines \[3\]"),
    Case("csv_zero_width_text", lambda t: cli_mosi(t, replaced(1, 1, "\u200b\u200b")), MalformedSourceError,
         r"label\.csv \[text\]: row 'mosi/train/vA_2': text is empty"),
    Case("csv_duplicate_id", lambda t: cli_mosi(t, replaced(1, 0, "vA_1")), MalformedSourceError,
         r"label\.csv \[id\]: utterance 'vA_1' appears more than once \(file lines \[2, 3\]\)"),
    Case("csv_clip_in_two_splits", lambda t: cli_mosi(t, replaced(3, 0, "vA_3")), MalformedSourceError,
         r"label\.csv \[clip\]: splits are not disjoint by clip: clip 'vA' in train and test \(mosi/train/vA_1, mosi/test/vA_3\)"),
    Case("csv_unknown_mode", lambda t: cli_mosi(t, replaced(2, 3, "holdout")), MalformedSourceError,
         r"label\.csv \[mode\]: file line 4: unknown split name 'holdout'"),
    Case("csv_empty_id", lambda t: cli_mosi(t, replaced(2, 0, "")), MalformedSourceError, r"label\.csv \[id\]: empty values in file lines \[4\]"),
    Case("csv_broken_quote", lambda t: cli_mosi(t, replaced(1, 1, '"i hated the ending')), MalformedSourceError,
         r"label\.csv: not a readable CSV: .*(EOF|line|row)"),
    Case("csv_not_utf8", lambda t: cli(t, "--dataset", "mosi", "--source", _latin1_csv(t)), MalformedSourceError,
         r"latin\.csv: not a readable UTF-8 CSV"),
    Case("csv_header_only", lambda t: cli_mosi(t, []), MalformedSourceError, r"label\.csv: no data rows"),
    Case("csv_mmsa_without_clip_id", lambda t: cli_mosi(t, [("vA", "nice", "1.0", "train")], header="video_id,text,label,mode"),
         MalformedSourceError, r"label\.csv: unrecognised CSV header \['video_id', 'text', 'label', 'mode'\]"),
    # ------------------------------------------------------------------ official segment CSV + folds
    Case("segment_score_inf", lambda t: segments(t, SEGMENT_LINES[:3] + ["0.0,3.0,vC,1,inf"]), MalformedSourceError,
         r"OpinionLevelSentiment\.csv \[sentiment\]: scores must be finite .*file lines \[4\] \(vC_1=inf\)"),
    Case("segment_number_not_integer", lambda t: segments(t, SEGMENT_LINES[:3] + ["0.0,3.0,vC,1.5,-2.4"]), MalformedSourceError,
         r"OpinionLevelSentiment\.csv \[segment\]: segment numbers must be integers: file lines \[4\]"),
    Case("segment_repeated", lambda t: segments(t, SEGMENT_LINES + ["4.0,5.0,vA,2,1.0"]), MalformedSourceError,
         r"OpinionLevelSentiment\.csv \[segment\]: utterance 'vA_2' appears more than once \(file lines \[2, 5\]\)"),
    Case("segment_start_after_end", lambda t: segments(t, ["3.0,2.0,vA,1,2.0"] + SEGMENT_LINES[1:]), MalformedSourceError,
         r"OpinionLevelSentiment\.csv \[start\]: start after end .*file lines \[1\]"),
    Case("segment_video_in_no_fold", lambda t: segments(t, SEGMENT_LINES + ["0.0,1.0,vZ,1,0.5"]), MalformedSourceError,
         r"OpinionLevelSentiment\.csv: 1 videos are in no standard fold \(\['vZ'\]\)"),
    Case("segment_without_transcripts", lambda t: cli(t, "--dataset", "mosi", "--source", _segments_only(t), "--folds", _folds_file(t)),
         MalformedSourceError, r"OpinionLevelSentiment\.csv \[text\]: 4 of 4 rows have no transcript .*--transcripts"),
    Case("segment_without_folds", lambda t: cli(t, "--dataset", "mosi", "--source", _segments_only(t)), ValueError,
         r"segment_csv source has no split column: pass the standard folds \(--folds\)"),
    Case("folds_video_in_two_folds", lambda t: segments(t, folds='{"train": ["vA"], "valid": ["vB", "vA"], "test": ["vC"]}'),
         MalformedSourceError, r"folds\.json \[valid\]: video 'vA' is in two folds"),
    Case("folds_not_json", lambda t: segments(t, folds="{train: vA"), MalformedSourceError, r"folds\.json: not valid JSON"),
    Case("folds_missing_a_split", lambda t: segments(t, folds='{"train": ["vA", "vB", "vC"]}'), MalformedSourceError,
         r"folds\.json: no videos for split\(s\) \['test', 'validation'\]"),
    Case("transcripts_with_duplicate_ids", lambda t: _segments_with_transcripts(t, GOOD_LINES + [("vA_1", "again", "2.0", "train")]),
         MalformedSourceError, r"transcripts\.csv \[id\]: utterance 'vA_1' appears more than once"),
    # ------------------------------------------------------------------ labels .csd
    Case("csd_label_plus_inf", lambda t: labels_csd(t, [np.inf, -1.0]), MalformedSourceError,
         r"labels\.csd \[Opinion Segment Labels/data/vA/features\]: segment vA_1: score must be finite, got inf"),
    Case("csd_label_nan", lambda t: labels_csd(t, [1.0, np.nan]), MalformedSourceError, r"labels\.csd \[.*vA/features\]: segment vA_2: score must be finite, got nan"),
    Case("csd_label_out_of_range", lambda t: labels_csd(t, [1.0, -4.0]), MalformedSourceError, r"labels\.csd \[.*\]: segment vA_2: score -4\.0 outside"),
    Case("csd_interval_backwards", lambda t: labels_csd(t, [1.0, -1.0], intervals=[[0.0, 2.0], [4.0, 2.0]]), MalformedSourceError,
         r"labels\.csd \[Opinion Segment Labels/data/vA/intervals\]: intervals not finite or start > end in rows \[1\]"),
    Case("csd_video_in_no_fold", lambda t: labels_csd(t, [1.0, -1.0], folds={"vB": "train"}), MalformedSourceError,
         r"labels\.csd: 1 videos are in no standard fold \(\['vA'\]\)"),
    # ------------------------------------------------------------------ MELD CSVs
    Case("meld_broken_quote", lambda t: meld_folder(t, MELD_LINES + ['3,"Hey,Joey,joy,positive,0,2,1,1,x,y']), MalformedSourceError,
         r"train_sent_emo\.csv: not a readable CSV"),
    Case("meld_unknown_emotion", lambda t: meld_folder(t, meld_line(emotion="happy")), MalformedSourceError,
         r"train_sent_emo\.csv \[Emotion\]: unknown values \['happy'\] in file lines \[4\]"),
    Case("meld_dialogue_id_not_integer", lambda t: meld_folder(t, meld_line(dialogue="one")), MalformedSourceError,
         r"train_sent_emo\.csv \[Dialogue_ID\]: not a non-negative integer in file lines \[4\]"),
    Case("meld_empty_utterance", lambda t: meld_folder(t, meld_line(utterance='" "')), MalformedSourceError,
         r"train_sent_emo\.csv \[Utterance\]: empty values in file lines \[4\]"),
    Case("meld_duplicate_utterance", lambda t: meld_folder(t, meld_line(dialogue="0", utterance_id="1")), MalformedSourceError,
         r"train_sent_emo\.csv \[Utterance_ID\]: utterance 'dia0_utt1' appears more than once \(file lines \[3, 4\]\)"),
    # ------------------------------------------------------------------ IEMOCAP CSV
    Case("iemocap_duplicate_turn", lambda t: _iemocap(t, [("Ses01F_impro01_F000", 1.0, "neu", "Hi."), ("Ses01F_impro01_F000", 2.0, "ang", "No.")]),
         MalformedSourceError, r"IEMOCAP_all\.csv \[vid_cid\]: utterance 'Ses01F_impro01_F000' appears more than once"),
    Case("iemocap_kept_turn_without_text", lambda t: _iemocap(t, [("Ses01F_impro01_F000", 1.0, "neu", "Hi."), ("Ses01F_impro01_M000", 2.0, "ang", "")]),
         MalformedSourceError, r"IEMOCAP_all\.csv \[text\]: utterance 'Ses01F_impro01_M000' has no transcript"),
    # ------------------------------------------------------------------ MMSA pickles and feature joins
    Case("pickle_score_inf", lambda t: mmsa(t, lambda d: _set(d, "train", "regression_labels", 1, np.inf)), MalformedSourceError,
         r"unaligned_50\.pkl \[train/regression_labels\]: utterance 'vidA_2' \(index 1\): score must be finite"),
    Case("pickle_score_out_of_range", lambda t: mmsa(t, lambda d: _set(d, "test", "regression_labels", 0, -3.5)), MalformedSourceError,
         r"unaligned_50\.pkl \[test/regression_labels\]: utterance 'vidD_3' \(index 0\): score -3\.5 outside"),
    Case("pickle_id_in_two_splits", lambda t: mmsa(t, lambda d: _set(d, "test", "id", 0, "vidA$_$1")), MalformedSourceError,
         r"unaligned_50\.pkl \[test/id\]: utterance 'vidA_1' appears twice \(in train and test\)"),
    Case("pickle_clip_in_two_splits", lambda t: mmsa(t, lambda d: _set(d, "test", "id", 0, "vidA$_$9")), MalformedSourceError,
         r"unaligned_50\.pkl \[clip\]: splits are not disjoint by clip: clip 'vidA' in train and test \(mosi/train/vidA_1, mosi/test/vidA_9\)"),
    Case("pickle_infinite_frames", lambda t: mmsa(t, lambda d: _set(d, "valid", "vision", (0, 0, 0), np.inf)), MalformedSourceError,
         r"unaligned_50\.pkl \[valid/vision\[0\] \(vidC_1\)\]: infinite values in frame rows \[0\]"),
    Case("pickle_empty_transcript", lambda t: mmsa(t, lambda d: _set(d, "train", "raw_text", 2, " ")), MalformedSourceError,
         r"unaligned_50\.pkl \[text\]: row 'mosi/train/vid_B_1': text is empty"),
    Case("features_joined_with_another_width", _features_of_two_widths, MalformedSourceError,
         r"features\.pkl \[acoustic\]: utterance 'vidC_1': acoustic frames have 3 features, but 'vidA_1' has 5"),
    Case("features_with_nan_frames", lambda t: _features_with(t, lambda d: _set(d, "test", "audio", (0, 0, 0), np.nan)), MalformedSourceError,
         r"features\.pkl \[test/audio\[0\] \(vidD_3\)\]: NaN values in frame rows \[0\]"),
    # ------------------------------------------------------------------ prepare_data.py arguments and output folder
    Case("output_dir_not_empty", lambda t: _occupied(t), OutputExistsError,
         r"`output_dir` .*out is not empty \(holds \['README\.md', 'test\.parquet'.*pass --overwrite"),
    Case("output_dir_with_foreign_files_even_with_overwrite", lambda t: _occupied(t, foreign=True, overwrite=True), OutputExistsError,
         r"`output_dir` .*out holds files a prepared folder does not \(\['notes\.txt'\]\)"),
    Case("output_dir_is_a_file", lambda t: _output_is_a_file(t), OutputExistsError, r"`output_dir` .*out exists and is not a folder"),
    Case("transcripts_for_a_source_with_text", lambda t: cli(t, "--dataset", "mosi", "--source", transcript_csv(t), "--transcripts", transcript_csv(t, name="t.csv")),
         ValueError, r"`transcripts` completes label-only sources .*a transcript_csv source has its own transcripts"),
    Case("folds_for_meld", lambda t: _meld_with_folds(t), ValueError, r"`folds` apply to MOSI/MOSEI .*a meld_csv_folder source has its own splits"),
    Case("label_pool_of_the_same_corpus", lambda t: _same_corpus_pool(t), ValueError, r"--label_pools .*pool holds mosi, the corpus this run prepares"),
    Case("media_labels_score_inf", lambda t: _media_script(t, replaced(0, 2, "inf")), MalformedSourceError,
         r"media_labels\.csv \[label\]: scores must be finite .*file lines \[2\] \(vA_1=inf\)"),
    Case("media_labels_duplicate_id", lambda t: _media_script(t, replaced(2, 0, "vA_1")), MalformedSourceError,
         r"media_labels\.csv \[id\]: utterance 'vA_1' appears more than once \(file lines \[2, 4\]\)"),
    Case("media_output_dir_not_empty", lambda t: (prepared_folder(t / "out"), _media_script(t, GOOD_LINES))[1], OutputExistsError,
         r"`output_dir` .*out is not empty .*pass --overwrite"),
    Case("completion_with_an_infinite_gold_score", lambda t: _complete_rows_with(lambda rows: rows[1].update(score=float("inf"))),
         ValueError, r"row 'mosi/train/vtrain1_1': gold score inf is not a valid label value"),
    # ------------------------------------------------------------------ load_joint_dataset on prepared folders
    Case("joint_unknown_corpus", lambda t: (lambda: load_joint_dataset({"cmu-mosi": str(t)})), ValueError, r"`prepared_dirs` has unknown corpora \['cmu-mosi'\]"),
    Case("joint_not_a_mapping", lambda t: (lambda: load_joint_dataset([str(t)])), TypeError, r"`prepared_dirs` must map corpus names to folders, got list"),
    Case("joint_missing_folder", lambda t: (lambda: load_joint_dataset({"mosi": str(t / "nowhere")})), FileNotFoundError, r"prepared folder not found: .*nowhere"),
    Case("joint_folder_of_another_corpus", lambda t: _joint(meld=prepared_folder(t / "mosi")), MalformedSourceError,
         r"mosi \[dataset\]: row 'mosi/train/vA_1' belongs to 'mosi', not 'meld'"),
    Case("joint_same_folder_twice", lambda t: (lambda: load_joint_dataset({"mosi": str(t), "mosei": str(t)})), ValueError,
         r"`prepared_dirs` names the folder\(s\) .* for more than one corpus"),
    Case("joint_split_not_in_the_card", _stale_split, MalformedSourceError,
         r"mosi/README\.md: the card lists splits \['train'\] but the folder holds \['test\.parquet', 'train\.parquet'\]"),
    Case("joint_split_changed_after_the_card", _edited_split, MalformedSourceError,
         r"mosi/validation\.parquet: its SHA-256 is not the one .*README\.md records"),
    Case("joint_folder_without_clip_column", _old_layout, MalformedSourceError,
         r"train\.parquet: missing columns \['clip'\]: not written by this version of prepare_data\.py"),
    Case("joint_overlapping_clips", lambda t: with_rows(t, lambda rows: rows[3].update(clip="train0")), MalformedSourceError,
         r"prepared \[clip\]: splits are not disjoint by clip: clip 'train0' in train and test \(mosi/train/vtrain0_1, mosi/test/vtest0_1\)"),
    Case("joint_non_finite_frames", lambda t: with_rows(t, lambda rows: _frames(rows, 2, [[1.0, np.inf]])), MalformedSourceError,
         r"prepared \[acoustic\]: row 'mosi/validation/vvalidation0_1': non-finite acoustic values"),
    Case("joint_frames_of_two_widths", lambda t: with_rows(t, lambda rows: (_frames(rows, 0, [[1.0, 2.0]]), _frames(rows, 3, [[1.0, 2.0, 3.0]]))),
         MalformedSourceError, r"prepared \[acoustic\]: row 'mosi/test/vtest0_1': acoustic frames have 3 features, but row 'mosi/train/vtrain0_1' has 2"),
    Case("joint_score_out_of_range", lambda t: with_rows(t, lambda rows: rows[1].update(score=7.0)), MalformedSourceError,
         r"prepared \[score\]: row 'mosi/train/vtrain1_1': score 7\.0 outside \[-3\.0, 3\.0\]"),
    Case("joint_unknown_emotion", lambda t: with_rows(t, lambda rows: rows[0].update(meld_emotion="happy")), MalformedSourceError,
         r"prepared \[meld_emotion\]: row 'mosi/train/vtrain0_1': meld_emotion 'happy' is not one of"),
    Case("joint_row_in_the_wrong_split_file", lambda t: with_rows(t, lambda rows: rows[2].update(split="train")), MalformedSourceError,
         r"prepared \[id\]: row 'mosi/validation/vvalidation0_1': the id does not start with its dataset and split \(mosi/train/\)"),
    Case("joint_rows_without_target", lambda t: with_rows(t, lambda rows: rows[0].update(target=None)), ValueError,
         r"corpus 'mosi': 1 training rows have no target"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_refused_naming_it_and_nothing_is_written(case, tmp_path):
    call = case.build(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(case.error, match=case.match):
        call()
    assert snapshot(tmp_path) == before


def test_the_table_covers_at_least_35_bad_inputs():
    assert len(CASES) >= 35 and len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--context_window", "-1"], "--context_window must be >= 0, got -1"),
        (["--max_source_length", "0"], "--max_source_length must be >= 1, got 0"),
        (["--score_decimals", "-2"], "--score_decimals must be between 0 and 10, got -2"),
        (["--private"], "--private only applies with --push_to_hub"),
        (["--label_pools", "somewhere"], "--label_pools needs --universal_labels ENCODER_DIR"),
    ],
)
def test_bad_cli_arguments_exit_with_a_usage_error_naming_the_argument(argv, named, tmp_path, capsys):
    source = transcript_csv(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as raised:
        prepare_main(["--dataset", "mosi", "--source", source, "--output_dir", str(tmp_path / "out"), *argv])
    assert raised.value.code == 2 and named in capsys.readouterr().err
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------------------------- accepted inputs


def test_transcript_csv_with_a_utf8_bom_is_read_like_the_meld_csvs(tmp_path):
    plain = load_corpus("mosi", transcript_csv(tmp_path, name="plain.csv"))
    bom = load_corpus("mosi", transcript_csv(tmp_path, name="bom.csv", prefix="\ufeff"))
    assert bom["train"]["id"] == plain["train"]["id"] == ["mosi/train/vA_1", "mosi/train/vA_2"]
    assert bom["test"]["score"] == [-2.4]


def test_clip_of_a_mosi_row_is_its_video_and_of_a_meld_row_its_split_dialogue(tmp_path):
    mosi = load_corpus("mosi", transcript_csv(tmp_path))
    assert mosi["train"]["clip"] == ["vA", "vA"]
    meld_folder(tmp_path)
    meld = load_corpus("meld", str(tmp_path / "meld"))
    assert meld["train"]["clip"] == ["train/dia0", "train/dia0"] and meld["test"]["clip"] == ["test/dia0", "test/dia0"]


# ---------------------------------------------------------------------------------- data-loss paths


def test_rerun_into_a_folder_with_other_splits_is_refused_then_overwrite_replaces_the_folder_whole(tmp_path):
    out = tmp_path / "out"
    prepared_folder(out)
    assert sorted(load_parquet_splits(str(out))) == ["test", "train", "validation"]
    train_only = transcript_csv(tmp_path, GOOD_LINES[:2], name="train_only.csv")
    before = snapshot(out)
    with pytest.raises(OutputExistsError, match="pass --overwrite"):
        prepare_main(["--dataset", "mosi", "--source", train_only, "--output_dir", str(out)])
    assert snapshot(out) == before

    assert prepare_main(["--dataset", "mosi", "--source", train_only, "--output_dir", str(out), "--overwrite"]) == 0
    assert sorted(os.listdir(out)) == ["README.md", "train.parquet", "universal_labels_report.json", "universal_labels_report.md"]
    assert sorted(load_parquet_splits(str(out))) == ["train"]
    assert check_prepared_folder(str(out)) == ["train"]
    assert [name for name in os.listdir(tmp_path) if name.startswith(".")] == []


def _completed(tmp_path: Path):
    corpus = load_corpus("mosi", transcript_csv(tmp_path, name="new.csv"))
    completed, report = complete_universal_labels({"mosi": corpus}, None, show_progress=False)
    return completed["mosi"], report


def _fail_on_third_split(monkeypatch):
    from datasets import Dataset

    original, calls = Dataset.to_parquet, []

    def to_parquet(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            Path(path).write_bytes(b"half a file")
            raise OSError("disk full")
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(Dataset, "to_parquet", to_parquet)
    return calls


def test_failure_while_writing_the_third_split_leaves_the_previous_folder_byte_identical(tmp_path, monkeypatch):
    (tmp_path / "new").mkdir()
    corpus, report = _completed(tmp_path / "new")
    out = tmp_path / "out"
    prepared_folder(out, GOOD_LINES[:2] + [("vB_1", "older", "0.5", "valid"), ("vC_1", "older", "-0.5", "test")])
    before = snapshot(tmp_path)
    calls = _fail_on_third_split(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        write_prepared_dataset(str(out), corpus, "mosi", [], "test", report=report, overwrite=True)
    assert len(calls) == 3
    assert snapshot(tmp_path) == before  # old folder untouched, no temporary sibling left


def test_failure_while_writing_the_third_split_leaves_no_folder_when_there_was_none(tmp_path, monkeypatch):
    (tmp_path / "new").mkdir()
    corpus, report = _completed(tmp_path / "new")
    before = snapshot(tmp_path)
    _fail_on_third_split(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        write_prepared_dataset(str(tmp_path / "out"), corpus, "mosi", [], "test", report=report)
    assert snapshot(tmp_path) == before


def test_overlapping_splits_are_an_error_naming_the_clip_its_splits_and_row_ids(tmp_path):
    lines = GOOD_LINES + [("vC_2", "the same video again", "1.0", "train"), ("vB_7", "and again", "0.2", "test")]
    with pytest.raises(MalformedSourceError) as raised:
        load_corpus("mosi", transcript_csv(tmp_path, lines))
    message = str(raised.value)
    assert "clip 'vB' in validation and test (mosi/validation/vB_1, mosi/test/vB_7)" in message
    assert "clip 'vC' in test and train (mosi/test/vC_1, mosi/train/vC_2)" in message


def test_rows_with_overlapping_clips_are_refused_when_building_a_dataset():
    rows = [make_row(dataset="mosi", split=split, key=f"v_{n}", clip="v", text="text", score=1.0, polarity="positive")
            for n, split in enumerate(("train", "test"))]
    with pytest.raises(MalformedSourceError, match=r"clip 'v' in train and test \(mosi/train/v_0, mosi/test/v_1\)"):
        rows_to_dataset_dict(rows, "rows.csv")


def test_push_refuses_a_folder_that_does_not_match_its_card_before_any_upload(tmp_path):
    out = prepared_folder(tmp_path / "out")
    (tmp_path / "out" / "test.parquet").unlink()
    with pytest.raises(MalformedSourceError, match=r"the card lists splits \['test', 'train', 'validation'\] but the folder holds"):
        push_prepared_to_hub(out, "tester/mosi", "mosi")


def test_write_parquet_splits_refuses_a_folder_that_holds_another_split(tmp_path):
    from unimse_hf.data.export import write_parquet_splits

    corpus = load_corpus("mosi", transcript_csv(tmp_path))
    out = tmp_path / "out"
    write_parquet_splits(corpus, str(out))
    before = snapshot(out)
    with pytest.raises(OutputExistsError, match=r"out holds \['validation\.parquet', 'test\.parquet'\] from another run"):
        write_parquet_splits({"train": corpus["train"]}, str(out))
    assert snapshot(out) == before
