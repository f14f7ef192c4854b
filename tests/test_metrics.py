# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Specification of unimse_hf.metrics: hand-computed values, agreement with scikit-learn/scipy, edge cases."""

import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import HfApi
from huggingface_hub.utils import filter_repo_objects
from scipy.stats import pearsonr
from sklearn.metrics import accuracy_score, classification_report, f1_score, mean_absolute_error

from unimse_hf.metrics import (
    AGGREGATE_METRIC,
    INVALID_PREDICTION,
    compute_unimse_metrics,
    erc_generation_metrics,
    erc_metrics,
    erc_reference_emotion,
    msa_generation_metrics,
    msa_metrics,
    msa_reference_score,
    parse_failure_rate,
    pearson_correlation,
    push_metric_to_hub,
)

METRICS_DIR = Path(__file__).resolve().parents[1] / "unimse_hf" / "evaluate_metrics"

# A hand-worked MSA example. Samples 0-3 have y != 0; samples 4-5 have y == 0.
HAND_P = [2.6, 1.5, -0.2, -3.5, 0.5, 0.0]
HAND_Y = [3.0, 2.5, 0.4, -2.0, 0.0, 0.0]


def test_msa_mae_matches_hand_computation():
    # |p - y| = 0.4, 1.0, 0.6, 1.5, 0.5, 0.0 -> 4.0 / 6
    assert msa_metrics(HAND_P, HAND_Y)["mae"] == pytest.approx(4.0 / 6)


def test_msa_corr_matches_hand_computation():
    # mean p = 0.15, mean y = 0.65; sums of dp*dy, dp^2, dy^2 worked out by hand.
    assert msa_metrics(HAND_P, HAND_Y)["corr"] == pytest.approx(17.885 / math.sqrt(21.415 * 16.875))


def test_msa_acc7_matches_hand_computation():
    # round(clip(p, +-3)) = 3, 2, -0, -3, 0, 0 and round(clip(y, +-3)) = 3, 2, 0, -2, 0, 0: only sample 3 differs.
    assert msa_metrics(HAND_P, HAND_Y)["acc7"] == pytest.approx(5 / 6)


def test_msa_acc5_matches_hand_computation():
    # clipping to +-2 makes sample 3 agree (-2 vs -2): all six agree.
    assert msa_metrics(HAND_P, HAND_Y)["acc5"] == 1.0


def test_msa_non0_metrics_match_hand_computation():
    # y != 0 keeps samples 0-3: gold (y > 0) T T T F, predicted (p > 0) T T F F.
    # F1(T) = 2*2 / (2*2 + 0 + 1) = 0.8 (support 3); F1(F) = 2*1 / (2*1 + 1 + 0) = 2/3 (support 1).
    metrics = msa_metrics(HAND_P, HAND_Y)
    assert metrics["acc2_non0"] == pytest.approx(3 / 4)
    assert metrics["weighted_f1_non0"] == pytest.approx((3 * 0.8 + 1 * 2 / 3) / 4)


def test_msa_has0_metrics_match_hand_computation():
    # All samples: gold (y >= 0) T T T F T T, predicted (p >= 0) T T F F T T.
    # F1(T) = 2*4 / (2*4 + 0 + 1) = 8/9 (support 5); F1(F) = 2*1 / (2*1 + 1 + 0) = 2/3 (support 1).
    metrics = msa_metrics(HAND_P, HAND_Y)
    assert metrics["acc2_has0"] == pytest.approx(5 / 6)
    assert metrics["weighted_f1_has0"] == pytest.approx((5 * 8 / 9 + 1 * 2 / 3) / 6)


def test_msa_metrics_agree_with_scipy_and_sklearn_on_random_scores():
    rng = np.random.default_rng(0)
    y = np.round(rng.uniform(-3, 3, 500) * 3) / 3  # MOSI-like thirds, including exact zeros
    p = np.clip(y + rng.normal(0, 0.8, 500), -3.5, 3.5)
    metrics = msa_metrics(p.tolist(), y.tolist())
    non_zero = y != 0
    assert metrics["mae"] == pytest.approx(mean_absolute_error(y, p))
    assert metrics["corr"] == pytest.approx(pearsonr(p, y).statistic)
    assert metrics["acc7"] == pytest.approx(accuracy_score(np.round(np.clip(y, -3, 3)), np.round(np.clip(p, -3, 3))))
    assert metrics["acc5"] == pytest.approx(accuracy_score(np.round(np.clip(y, -2, 2)), np.round(np.clip(p, -2, 2))))
    assert metrics["acc2_non0"] == pytest.approx(accuracy_score(y[non_zero] > 0, p[non_zero] > 0))
    assert metrics["weighted_f1_non0"] == pytest.approx(f1_score(y[non_zero] > 0, p[non_zero] > 0, average="weighted"))
    assert metrics["acc2_has0"] == pytest.approx(accuracy_score(y >= 0, p >= 0))
    assert metrics["weighted_f1_has0"] == pytest.approx(f1_score(y >= 0, p >= 0, average="weighted"))


def test_msa_acc7_rounds_half_to_even():
    # 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0: half-away-from-zero rounding would miss three of four.
    assert msa_metrics([0.5, 1.5, 2.5, -0.5], [0.0, 2.0, 2.0, 0.0])["acc7"] == 1.0


def test_msa_mae_does_not_clip():
    assert msa_metrics([10.0, 0.0], [-3.0, 0.0])["mae"] == pytest.approx(6.5)


def test_corr_is_nan_without_warning_for_constant_predictions():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(msa_metrics([1.0, 1.0, 1.0], [0.5, -1.0, 2.0])["corr"])


def test_corr_is_nan_for_constant_references():
    assert math.isnan(pearson_correlation([0.3, -1.0, 2.0], [1.0, 1.0, 1.0]))


def test_corr_is_nan_for_a_single_sample():
    assert math.isnan(msa_metrics([1.0], [2.0])["corr"])


def test_non0_metrics_are_nan_when_every_gold_score_is_zero():
    metrics = msa_metrics([0.4, -0.2], [0.0, 0.0])
    assert math.isnan(metrics["acc2_non0"]) and math.isnan(metrics["weighted_f1_non0"])
    assert metrics["acc2_has0"] == 0.5


def test_weighted_f1_is_zero_without_warning_when_no_prediction_is_right():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = msa_metrics([-1.0, -2.0], [1.0, 2.0])
    assert metrics["acc2_non0"] == 0.0 and metrics["weighted_f1_non0"] == 0.0


@pytest.mark.parametrize("argument", ["predictions", "references"])
def test_msa_metrics_reject_empty_input_naming_the_argument(argument):
    inputs = {"predictions": [1.0], "references": [1.0], argument: []}
    with pytest.raises(ValueError, match=f"`{argument}` must not be empty"):
        msa_metrics(**inputs)


def test_msa_metrics_reject_non_finite_predictions():
    with pytest.raises(ValueError, match="`predictions` must contain only finite numbers"):
        msa_metrics([1.0, math.nan], [1.0, 2.0])


def test_msa_metrics_reject_non_numbers():
    with pytest.raises(ValueError, match="`references` must contain only numbers"):
        msa_metrics([1.0], ["positive"])


def test_msa_metrics_reject_length_mismatch():
    with pytest.raises(ValueError, match="`predictions` has 2 items but `references` has 1"):
        msa_metrics([1.0, 2.0], [1.0])


# A hand-worked ERC example; None is an unreadable prediction.
HAND_GOLD = ["joy", "joy", "anger", "sadness", "neutral", "neutral"]
HAND_PRED = ["joy", None, "anger", "joy", "neutral", "anger"]


def test_erc_accuracy_matches_hand_computation():
    # Samples 0, 2 and 4 are right; 1 is unreadable, 3 and 5 are wrong classes.
    assert erc_metrics(HAND_PRED, HAND_GOLD)["accuracy"] == pytest.approx(3 / 6)


def test_erc_weighted_f1_matches_hand_computation():
    # F1 = 2TP / (2TP + FP + FN): joy 2/(2+1+1) = 0.5 (support 2), anger 2/(2+1+0) = 2/3 (1),
    # sadness 0 (1), neutral 2/(2+0+1) = 2/3 (2); the invalid class has no support.
    expected = (2 * 0.5 + 1 * 2 / 3 + 1 * 0.0 + 2 * 2 / 3) / 6
    assert erc_metrics(HAND_PRED, HAND_GOLD)["weighted_f1"] == pytest.approx(expected)


def test_erc_weighted_f1_agrees_with_the_official_classification_report():
    rng = np.random.default_rng(1)
    classes = ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]
    gold = rng.choice(classes, 400, p=[0.45, 0.17, 0.12, 0.11, 0.07, 0.04, 0.04]).tolist()
    predicted = [g if rng.random() < 0.6 else (None if rng.random() < 0.2 else str(rng.choice(classes))) for g in gold]
    as_classes = [INVALID_PREDICTION if p is None else p for p in predicted]
    report = classification_report(gold, as_classes, output_dict=True, zero_division=0)
    metrics = erc_metrics(predicted, gold)
    assert metrics["weighted_f1"] == pytest.approx(report["weighted avg"]["f1-score"])
    assert metrics["accuracy"] == pytest.approx(report["accuracy"])


def test_erc_invalid_prediction_counts_as_wrong():
    assert erc_metrics([None, "joy"], ["joy", "joy"])["accuracy"] == 0.5


@pytest.mark.parametrize("argument", ["predictions", "references"])
def test_erc_metrics_reject_empty_input_naming_the_argument(argument):
    inputs = {"predictions": ["joy"], "references": ["joy"], argument: []}
    with pytest.raises(ValueError, match=f"`{argument}` must not be empty"):
        erc_metrics(**inputs)


def test_parse_failure_rate_counts_texts_that_are_not_complete_labels():
    texts = ["positive,1.0,joy,excited", "positive,1.0,joy", "", "neutral,abc,joy,joy", "neutral,0.0,neutral,neu"]
    assert parse_failure_rate(texts) == pytest.approx(3 / 5)


def test_parse_failure_rate_rejects_empty_input():
    with pytest.raises(ValueError, match="`generated_texts` must not be empty"):
        parse_failure_rate([])


@pytest.mark.parametrize("reference", [-0.6666666865348816, "-0.6666666865348816", "negative,-0.6666666865348816,anger,sadness"])
def test_msa_reference_score_reads_numbers_number_strings_and_labels(reference):
    assert msa_reference_score(reference) == pytest.approx(-0.6666666865348816)


@pytest.mark.parametrize("reference", ["positive", "positive,abc,joy,joy", "nan", True])
def test_msa_reference_score_rejects_unreadable_gold(reference):
    with pytest.raises(ValueError):
        msa_reference_score(reference)


@pytest.mark.parametrize("reference", ["hap", "joy", " Joy ", "positive,1.0,surprise,joy"])
def test_erc_reference_emotion_reads_words_abbreviations_and_labels(reference):
    assert erc_reference_emotion(reference, "iemocap") == "joy"


@pytest.mark.parametrize("reference", ["hap", "frustrated", "positive,1.0,happy,joy", 1.0])
def test_erc_reference_emotion_rejects_gold_outside_the_dataset_labels(reference):
    with pytest.raises(ValueError):
        erc_reference_emotion(reference, "meld")


def test_msa_generation_metrics_score_an_unreadable_score_as_the_farthest_score_from_the_gold():
    metrics = msa_generation_metrics(["positive,abc,joy,joy", "negative,-2.0,anger,anger"], [1.0, -2.0])
    assert metrics["mae"] == pytest.approx((4.0 + 0.0) / 2)  # scored as -3, the farthest score from 1.0
    assert metrics["acc2_non0"] == metrics["acc2_has0"] == metrics["acc7"] == metrics["acc5"] == 0.5
    assert metrics["parse_failure_rate"] == 0.5
    assert metrics["num_samples"] == 2


@pytest.mark.parametrize("gold", [-3.0, -0.2, 0.0, 0.4, 2.6])
def test_an_unreadable_score_is_wrong_for_every_msa_metric_whatever_the_gold(gold):
    wrong = msa_generation_metrics(["garbage"], [gold])
    assert wrong["acc2_has0"] == wrong["acc5"] == wrong["acc7"] == wrong["weighted_f1_has0"] == 0.0
    assert wrong["mae"] == pytest.approx(3.0 + abs(gold))
    if gold != 0:
        assert wrong["acc2_non0"] == wrong["weighted_f1_non0"] == 0.0


def test_output_that_never_parses_gets_no_credit_for_model_selection():
    """The case of issue 12: with the official 0.0 fallback a model whose output never parses got MOSI Acc-2
    (non0) 0.75 and `mean_primary` 0.75 on mostly positive gold scores; counted as wrong it gets 0."""
    gold = ["positive,1.2,joy,joy", "positive,0.6,joy,joy", "positive,2.0,joy,joy", "negative,-1.0,anger,anger"]
    texts = ["the the the"] * 4
    official = compute_unimse_metrics(texts, gold, ["mosi"] * 4, parse_failures="official")
    assert official["mosi_acc2_has0"] == 0.75 and official["mosi_parse_failure_rate"] == 1.0
    strict = compute_unimse_metrics(texts, gold, ["mosi"] * 4)
    assert strict["mosi_acc2_non0"] == strict["mosi_acc2_has0"] == strict[AGGREGATE_METRIC] == 0.0
    assert strict["mosi_mae"] > official["mosi_mae"]


def test_official_parse_failure_scoring_reads_an_unreadable_score_as_zero():
    metrics = msa_generation_metrics(["positive,abc,joy,joy", "negative,-2.0,anger,anger"], [1.0, -2.0],
                                     parse_failures="official")
    assert metrics["mae"] == pytest.approx(0.5)


def test_an_unknown_parse_failure_scoring_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match="`parse_failures` must be one of"):
        msa_generation_metrics(["positive,1.0,joy,joy"], [1.0], parse_failures="zero")


def test_erc_generation_metrics_read_the_dataset_slot_even_if_another_slot_is_invalid():
    metrics = erc_generation_metrics(["positive,1.0,joy", "garbage"], ["joy", "joy"], "MELD")
    assert metrics["accuracy"] == 0.5
    assert metrics["parse_failure_rate"] == 1.0


def test_erc_generation_metrics_reject_msa_datasets():
    with pytest.raises(ValueError, match="`dataset` must be one of"):
        erc_generation_metrics(["positive,1.0,joy,joy"], ["joy"], "mosi")


MIXED_TEXTS = [
    "positive,1.2,joy,excited",  # mosi, right sign
    "negative,-0.4,sadness,sadness",  # mosi, wrong sign
    "positive,1.0,joy,excited",  # meld, right
    "neutral,0.0,neutral",  # meld, slot right, label incomplete
    "negative,-1.0,anger,frustrated",  # iemocap, right
    "negative,-1.0,anger,anger",  # iemocap, wrong
]
MIXED_GOLD_LABELS = [
    "positive,1.0,joy,excited",
    "positive,0.6,joy,joy",
    "positive,2.0,joy,excited",
    "neutral,0.0,neutral,neutral",
    "negative,-1.0,anger,frustrated",
    "negative,-1.4,sadness,sadness",
]
MIXED_GOLD_VALUES = [1.0, 0.6, "joy", "neutral", "fru", "sadness"]
MIXED_DATASETS = ["mosi", "MOSI", "meld", "meld", "iemocap", "iemocap"]


def test_compute_unimse_metrics_prefixes_each_present_dataset():
    metrics = compute_unimse_metrics(MIXED_TEXTS, MIXED_GOLD_LABELS, MIXED_DATASETS)
    assert metrics["mosi_acc2_non0"] == 0.5
    assert metrics["mosi_mae"] == pytest.approx((0.2 + 1.0) / 2)
    assert metrics["meld_accuracy"] == 1.0
    assert metrics["meld_parse_failure_rate"] == 0.5
    assert metrics["iemocap_accuracy"] == 0.5
    assert metrics["mosi_num_samples"] == 2
    assert not any(key.startswith("mosei_") for key in metrics)


def test_compute_unimse_metrics_aggregate_is_the_mean_of_primary_metrics():
    metrics = compute_unimse_metrics(MIXED_TEXTS, MIXED_GOLD_LABELS, MIXED_DATASETS)
    expected = (metrics["mosi_acc2_non0"] + metrics["meld_weighted_f1"] + metrics["iemocap_weighted_f1"]) / 3
    assert metrics[AGGREGATE_METRIC] == pytest.approx(expected)
    # By hand: mosi 1/2, meld 1.0, iemocap F1(frustrated) = 1 and F1(sadness) = 0 with support 1 each -> 1/2.
    assert metrics[AGGREGATE_METRIC] == pytest.approx((0.5 + 1.0 + 0.5) / 3)


def test_compute_unimse_metrics_reports_the_overall_parse_failure_rate():
    assert compute_unimse_metrics(MIXED_TEXTS, MIXED_GOLD_LABELS, MIXED_DATASETS)["parse_failure_rate"] == pytest.approx(1 / 6)


def test_compute_unimse_metrics_accept_label_strings_or_plain_gold_values_alike():
    from_labels = compute_unimse_metrics(MIXED_TEXTS, MIXED_GOLD_LABELS, MIXED_DATASETS)
    from_values = compute_unimse_metrics(MIXED_TEXTS, MIXED_GOLD_VALUES, MIXED_DATASETS)
    assert from_values == pytest.approx(from_labels, nan_ok=True)


def test_compute_unimse_metrics_aggregate_skips_undefined_primary_metrics():
    metrics = compute_unimse_metrics(["positive,1.0,joy,joy", "positive,1.0,joy,joy"], [0.0, "joy"], ["mosei", "meld"])
    assert math.isnan(metrics["mosei_acc2_non0"])
    assert metrics[AGGREGATE_METRIC] == metrics["meld_weighted_f1"] == 1.0


def test_compute_unimse_metrics_rejects_unknown_datasets():
    with pytest.raises(ValueError, match="`datasets` must contain only"):
        compute_unimse_metrics(["positive,1.0,joy,joy"], [1.0], ["sst2"])


def test_compute_unimse_metrics_rejects_a_datasets_length_mismatch():
    with pytest.raises(ValueError, match="`datasets` has 2 items"):
        compute_unimse_metrics(["positive,1.0,joy,joy"], [1.0], ["mosi", "mosi"])


def test_compute_unimse_metrics_rejects_empty_input():
    with pytest.raises(ValueError, match="`generated_texts` must not be empty"):
        compute_unimse_metrics([], [], [])


@pytest.fixture
def recorded_hub_calls(monkeypatch):
    """Replace the Hub client's network calls by recorders; return the recorded keyword arguments."""
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"] = {"repo_id": repo_id, "endpoint": self.endpoint, **kwargs}

    def upload_folder(self, **kwargs):
        calls["upload_folder"] = kwargs
        return "commit-info"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def _files_that_would_be_uploaded(upload_kwargs: dict) -> set[str]:
    """Apply upload_folder's own filtering to the folder, as huggingface_hub does before uploading."""
    folder = Path(upload_kwargs["folder_path"])
    paths = [path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()]
    return set(filter_repo_objects(paths, ignore_patterns=upload_kwargs.get("ignore_patterns")))


def test_push_metric_to_hub_uploads_the_module_folder_to_a_gradio_space(recorded_hub_calls, tmp_path):
    metric_dir = shutil.copytree(METRICS_DIR / "unimse_msa", tmp_path / "unimse_msa")
    (metric_dir / "__pycache__").mkdir(exist_ok=True)
    (metric_dir / "__pycache__" / "unimse_msa.cpython-311.pyc").write_bytes(b"\0")

    result = push_metric_to_hub(metric_dir, "someone/unimse_msa", endpoint="http://hub.test")

    assert result == "commit-info"
    create = recorded_hub_calls["create_repo"]
    assert create["repo_id"] == "someone/unimse_msa" and create["endpoint"] == "http://hub.test"
    assert create["repo_type"] == "space" and create["space_sdk"] == "gradio" and create["exist_ok"]
    upload = recorded_hub_calls["upload_folder"]
    assert upload["repo_id"] == "someone/unimse_msa" and upload["repo_type"] == "space"
    assert _files_that_would_be_uploaded(upload) == {"unimse_msa.py", "README.md", "app.py", "requirements.txt"}


def test_push_metric_to_hub_can_target_a_model_repository(recorded_hub_calls):
    push_metric_to_hub(METRICS_DIR / "unimse_erc", "someone/unimse_erc", repo_type="model")
    assert recorded_hub_calls["create_repo"]["repo_type"] == "model"
    assert recorded_hub_calls["create_repo"]["space_sdk"] is None
    assert recorded_hub_calls["upload_folder"]["repo_type"] == "model"


def test_push_metric_to_hub_requires_the_module_script(recorded_hub_calls, tmp_path):
    with pytest.raises(ValueError, match="must contain the module script empty.py"):
        push_metric_to_hub(tmp_path / "empty", "someone/empty")
    assert recorded_hub_calls == {}
