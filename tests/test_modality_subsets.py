"""`modality_subsets`: one eval set per modality subset (text, text+acoustic, text+visual, all), so that the
Trainer reports metrics per subset."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from datasets import Dataset

from unimse_hf import UniMSEForConditionalGeneration
from unimse_hf.data_collator import UniMSEDataCollator
from unimse_hf.modality_subsets import MODALITY_SUBSETS, modality_subsets
from unimse_hf.trainer_unimse import UniMSETrainer, UniMSETrainingArguments
from unimse_testing import TINY, tiny_config, tiny_processor

pytestmark = pytest.mark.usefixtures("single_thread_torch")

SUBSET_KEYS = ["mosi_text", "mosi_text+acoustic", "mosi_text+visual", "mosi_all"]


def rows(count: int = 3) -> list[dict]:
    """Schema-like rows of dataset `mosi` with acoustic and visual frames."""
    rng = np.random.default_rng(0)
    return [{"id": f"mosi/test/{i}", "dataset": "mosi", "text": f"it was day {i}", "context": None,
             "acoustic": rng.standard_normal((4, TINY["acoustic_dim"])).astype(np.float32).tolist(),
             "visual": rng.standard_normal((3, TINY["visual_dim"])).astype(np.float32).tolist(),
             "target": "positive,1.0,joy,joy"} for i in range(count)]


def test_dataset_variants_drop_exactly_the_other_modality_columns():
    dataset = Dataset.from_list(rows())
    variants = modality_subsets(dataset, "mosi")
    assert list(variants) == SUBSET_KEYS
    for key, kept in zip(SUBSET_KEYS, MODALITY_SUBSETS.values()):
        removed = {"acoustic", "visual"} - set(kept)
        assert set(variants[key].column_names) == set(dataset.column_names) - removed, key
        assert variants[key]["text"] == dataset["text"] and variants[key]["target"] == dataset["target"]
    assert variants["mosi_all"]["acoustic"] == dataset["acoustic"]
    assert {"acoustic", "visual"} <= set(dataset.column_names)


def test_list_variants_are_copies_without_the_removed_keys_and_leave_the_rows_unchanged():
    original = rows()
    before = copy.deepcopy(original)
    variants = modality_subsets(original, "mosi")
    assert [set(row) for row in variants["mosi_text"]] == [set(row) - {"acoustic", "visual"} for row in before]
    assert [set(row) for row in variants["mosi_text+visual"]] == [set(row) - {"acoustic"} for row in before]
    assert variants["mosi_all"] == before
    assert original == before


def test_the_collator_gives_each_variant_only_its_modalities():
    collator = UniMSEDataCollator(tiny_processor())
    variants = modality_subsets(rows(), "mosi")
    expected = {"mosi_text": set(), "mosi_text+acoustic": {"acoustic"}, "mosi_text+visual": {"visual"},
                "mosi_all": {"acoustic", "visual"}}
    for key, modalities in expected.items():
        batch = collator(variants[key])
        assert {m for m in ("acoustic", "visual") if f"{m}_features" in batch} == modalities, key


def test_trainer_evaluation_over_the_variants_reports_metrics_per_subset(tmp_path):
    torch.manual_seed(0)
    model = UniMSEForConditionalGeneration(tiny_config())
    processor = tiny_processor()
    dataset = Dataset.from_list(rows(2))
    trainer = UniMSETrainer(
        model=model,
        args=UniMSETrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=2, report_to="none",
                                     use_cpu=True, disable_tqdm=True, dataloader_num_workers=0,
                                     generation_max_new_tokens=4),
        eval_dataset=modality_subsets(dataset, "mosi"),
        processing_class=processor,
        data_collator=UniMSEDataCollator(processor),
    )
    metrics = trainer.evaluate()
    for key in SUBSET_KEYS:
        assert metrics[f"eval_{key}_mosi_num_samples"] == 2, sorted(metrics)


@pytest.mark.parametrize("dataset, name, error, named", [
    (rows(), 3, TypeError, "`name`"),
    (rows(), "  ", ValueError, "`name`"),
    ("mosi", "mosi", TypeError, "`dataset`"),
    ([*rows(1), "row"], "mosi", TypeError, "`dataset[1]`"),
    ([{k: v for k, v in row.items() if k != "visual"} for row in rows(1)], "mosi", ValueError, "'visual'"),
])
def test_bad_input_is_refused_naming_the_argument_and_leaving_the_input_unchanged(dataset, name, error, named):
    before = copy.deepcopy(dataset)
    with pytest.raises(error, match=named.replace("[", r"\[").replace("]", r"\]")):
        modality_subsets(dataset, name)
    assert dataset == before


def test_a_dataset_without_a_visual_column_is_refused_naming_it():
    dataset = Dataset.from_list(rows()).remove_columns(["visual"])
    with pytest.raises(ValueError, match="'visual'"):
        modality_subsets(dataset, "mosi")
