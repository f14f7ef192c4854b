#!/usr/bin/env python
# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Train and evaluate UniMSE on prepared Parquet splits (or a Hub dataset) with `UniMSETrainer`.

Runs unchanged under `python` and `accelerate launch`:

    python examples/train_unimse.py --model_name_or_path t5-base --dataset_dir prepared/ \
        --output_dir runs/unimse --do_train --do_eval --do_predict \
        --per_device_train_batch_size 32 --num_train_epochs 20 --eval_strategy epoch --save_strategy epoch \
        --metric_for_best_model mean_primary --load_best_model_at_end

    accelerate launch --config_file examples/accelerate/multi_gpu.yaml examples/train_unimse.py ...

`--tiny` builds a small random model instead (smoke tests, CPU). The data are rows of the UniMSE row schema
(`unimse_hf/data/schema.py`): `{dataset_dir}/{train,validation,test}.parquet` as written by
`examples/prepare_data.py`, or a Hub dataset with those splits. Every row's acoustic/visual frames must have
the width of the first row's (checked at load, naming the row id and file).

The model is frozen for fine-tuning (`model.freeze_for_fine_tuning()`: fusion modules and
`trainable_t5_blocks` train). Validation is evaluated per corpus (`eval_mosi_*`, `eval_meld_*`, plus
`eval_mean_primary`). `--push_to_hub` pushes the final model; `--push_checkpoints every_save|checkpoint|
all_checkpoints` also pushes each saved checkpoint (`HubPushCallback`). A run whose loss or weights stop being
finite stops with `NonFiniteTrainingError` (non-zero exit) before saving them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Optional

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import transformers
from huggingface_hub.errors import StrictDataclassError
from transformers import HfArgumentParser, set_seed

from unimse_hf import UniMSEConfig, UniMSEForConditionalGeneration, UniMSEProcessor
from unimse_hf.checkpoint import last_complete_checkpoint
from unimse_hf.data_collator import UniMSEDataCollator
from unimse_hf.hub_push_callback import CHECKPOINT_STRATEGIES, HubPushCallback
from unimse_hf.trainer_unimse import UniMSETrainer, UniMSETrainingArguments

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
TINY_CONFIG = dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, modality_hidden=16, modality_out=16,
                   pmf_bottleneck=16, cl_proj_dim=8)
"""The `--tiny` model: 2+2 blocks of width 32 with the full T5 vocabulary."""


@dataclass
class ModelArguments:
    """Which model to train."""

    model_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "A T5 checkpoint (UniMSE modules are added, randomly initialised) or a UniMSE checkpoint "
                          "(folder or Hub id). Leave unset with --tiny."},
    )
    tiny: bool = field(default=False, metadata={"help": "Train a small randomly initialised UniMSE (smoke tests)."})
    config_overrides: Optional[str] = field(
        default=None,
        metadata={"help": "Comma-separated UniMSEConfig overrides, e.g. 'cl_weight_ta=0.3,trainable_t5_blocks=[10,11]'."},
    )
    tokenizer_dir: str = field(
        default="data/t5",
        metadata={"help": "Folder with T5's spiece.model, used when the checkpoint has no saved processor."},
    )


@dataclass
class DataArguments:
    """Which data to train and evaluate on."""

    dataset_dir: Optional[list[str]] = field(
        default=None,
        metadata={"help": "One or more folders with train/validation/test.parquet, e.g. one per corpus as "
                          "examples/prepare_data.py writes them; their splits are concatenated."},
    )
    dataset_name: Optional[str] = field(default=None, metadata={"help": "A Hub dataset id with the same splits."})
    datasets: Optional[str] = field(
        default=None, metadata={"help": "Comma-separated corpora to keep (mosi,mosei,meld,iemocap); default: all."}
    )
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Keep the first N training rows."})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "Keep the first N validation rows."})
    max_test_samples: Optional[int] = field(default=None, metadata={"help": "Keep the first N test rows."})
    contrastive_label_column: str = field(
        default="polarity",
        metadata={"help": "Row column whose equal values are positives of the label-aware contrastive term "
                          "(used when the config's cl_label_weight > 0)."},
    )
    use_word_timestamps: bool = field(
        default=False, metadata={"help": "Token-align the frames with the rows' word_timestamps."}
    )
    grammar_constrained_loss: bool = field(
        default=False,
        metadata={"help": "Normalise the LM loss over the tokens the label grammar allows at each target position "
                          "(the likelihood of structured decoding; skips the full-vocabulary projection). A model "
                          "trained so must be decoded with the grammar, so --generation_structured False is refused."},
    )
    push_checkpoints: Optional[str] = field(
        default=None,
        metadata={"help": "Also push every saved checkpoint to --hub_model_id (HubPushCallback): every_save "
                          "(the model), checkpoint (plus the resumable folder as last-checkpoint/) or "
                          "all_checkpoints.", "choices": list(CHECKPOINT_STRATEGIES)},
    )

    def __post_init__(self) -> None:
        if (self.dataset_dir is None) == (self.dataset_name is None):
            raise ValueError("Give exactly one of --dataset_dir and --dataset_name")
        for name in ("max_train_samples", "max_eval_samples", "max_test_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be >= 1, got {value}")


def parse_config_overrides(text: Optional[str]) -> dict[str, Any]:
    """`'a=1,b=[1,2],c=x'` -> `{'a': 1, 'b': [1, 2], 'c': 'x'}` (values read as JSON where possible)."""
    overrides: dict[str, Any] = {}
    for item in re.split(r",(?![^\[]*\])", text or ""):
        if not item.strip():
            continue
        key, separator, value = item.partition("=")
        if not separator:
            raise ValueError(f"config override {item!r} is not key=value")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value.strip()
    return overrides


def load_splits(data_args: DataArguments) -> datasets.DatasetDict:
    """Load the splits, keep the requested corpora and cap the sizes."""
    if data_args.dataset_dir is not None:
        parts: dict[str, list[datasets.Dataset]] = {}
        for folder in data_args.dataset_dir:
            files = {split: os.path.join(folder, f"{split}.parquet") for split in SPLITS}
            files = {split: path for split, path in files.items() if os.path.isfile(path)}
            if not files:
                raise FileNotFoundError(f"no train/validation/test.parquet in {folder}")
            for split, path in files.items():
                # `Dataset.from_parquet` reads local files without `load_dataset`'s network usage ping.
                piece = datasets.Dataset.from_parquet(path)
                check_feature_widths(piece, path)
                parts.setdefault(split, []).append(piece)
        raw = datasets.DatasetDict({split: concatenate_corpora(pieces) for split, pieces in parts.items()})
    else:
        raw = datasets.load_dataset(data_args.dataset_name)
        for split, rows in raw.items():
            check_feature_widths(rows, f"{data_args.dataset_name} ({split})")
    for modality in ("acoustic", "visual"):  # every split and corpus must agree too
        widths = {split: width for split, rows in raw.items()
                  if (width := check_feature_widths(rows, split).get(modality)) is not None}
        if len(set(widths.values())) > 1:
            raise ValueError(f"the {modality} frames have different widths across splits/corpora: {widths}")
    if data_args.datasets:
        keep = {name.strip().lower() for name in data_args.datasets.split(",") if name.strip()}
        raw = raw.filter(lambda row: row["dataset"] in keep)
    limits = {"train": data_args.max_train_samples, "validation": data_args.max_eval_samples,
              "test": data_args.max_test_samples}
    for split, limit in limits.items():
        if split in raw and limit is not None:
            raw[split] = raw[split].select(range(min(limit, len(raw[split]))))
    return raw


def concatenate_corpora(pieces: list[datasets.Dataset]) -> datasets.Dataset:
    """Concatenate one split of several corpora, casting columns that are all null in a corpus (e.g. MELD's
    `visual`) to the type another corpus gives them."""
    if len(pieces) == 1:
        return pieces[0]
    features = {}
    for piece in pieces:
        for name, feature in piece.features.items():
            if name not in features or getattr(features[name], "dtype", None) == "null":
                features[name] = feature
    return datasets.concatenate_datasets([piece.cast(datasets.Features({n: features[n] for n in piece.features}))
                                          for piece in pieces])


def check_feature_widths(rows: datasets.Dataset, source: str) -> dict[str, int]:
    """The frame width of each modality column of `rows` (`{"acoustic": 74, ...}`, from its first frame),
    after checking that every frame of every row has it.

    Raises `ValueError` naming `source`, the column and the id of the first row whose frames differ (reading
    the Arrow column, without building Python rows).
    """
    widths: dict[str, int] = {}
    for modality in ("acoustic", "visual"):
        if modality not in rows.column_names:
            continue
        column = rows.data.table.column(modality).combine_chunks()
        if pa.types.is_null(column.type):
            continue
        if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)) or not (
                pa.types.is_list(column.type.value_type) or pa.types.is_large_list(column.type.value_type)):
            raise ValueError(f"{source}: column `{modality}` must hold lists of frames (lists of numbers), "
                             f"got Arrow type {column.type}")
        frame_widths = pc.list_value_length(column.flatten()).to_numpy(zero_copy_only=False)
        if frame_widths.size == 0:
            continue
        row_of_frame = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(frame_widths != frame_widths[0])
        if bad.size:
            first_row, bad_row = int(row_of_frame[0]), int(row_of_frame[bad[0]])
            ids = rows.select_columns(["id"]) if "id" in rows.column_names else None
            name = (lambda index: repr(ids[index]["id"]) if ids is not None else f"#{index}")
            raise ValueError(f"{source}: row {name(bad_row)} has {modality} frames of width "
                             f"{int(frame_widths[bad[0]])}, but row {name(first_row)} (the first with frames) has "
                             f"{int(frame_widths[0])}; every row's frames must have the same width")
        widths[modality] = int(frame_widths[0])
    return widths


def feature_dims(split: datasets.Dataset) -> dict[str, int]:
    """`acoustic_dim` / `visual_dim` of a split (see `check_feature_widths`)."""
    return {f"{modality}_dim": width for modality, width in check_feature_widths(split, "data").items()}


def per_corpus(rows: datasets.Dataset) -> dict[str, datasets.Dataset]:
    """One evaluation set per corpus of `rows` (by the `dataset` column), in order of first appearance."""
    names = rows["dataset"]
    return {name: rows.select([i for i, other in enumerate(names) if other == name]) for name in dict.fromkeys(names)}


def build_model_and_processor(model_args: ModelArguments, dims: dict[str, int]) -> tuple[UniMSEForConditionalGeneration, UniMSEProcessor]:
    """The model (tiny, from T5 or from a UniMSE checkpoint) and a processor matching its feature sizes."""
    overrides = parse_config_overrides(model_args.config_overrides)
    unknown = sorted(set(overrides) - {config_field.name for config_field in dataclasses.fields(UniMSEConfig)})
    if unknown:
        raise ValueError(f"--config_overrides: {', '.join(unknown)} {'is not a' if len(unknown) == 1 else 'are not'} "
                         "UniMSEConfig field(s)")
    source = model_args.model_name_or_path
    if model_args.tiny == (source is not None):
        raise ValueError("Give exactly one of --model_name_or_path and --tiny")
    try:
        if model_args.tiny:
            config = UniMSEConfig(**{**TINY_CONFIG, **dims, **overrides})
        else:
            config_dict, _ = UniMSEConfig.get_config_dict(source)
            if config_dict.get("model_type") == UniMSEConfig.model_type:
                config = UniMSEConfig.from_pretrained(source, **overrides)
            else:  # a T5 checkpoint: its T5 fields, UniMSE defaults for the rest, feature sizes from the data
                config = UniMSEConfig.from_pretrained(source, **{**dims, **overrides})
    except StrictDataclassError as error:  # the config's type checks: report them as the bad argument
        raise ValueError(f"--config_overrides {model_args.config_overrides!r}: {error}") from None
    if model_args.tiny:
        model = UniMSEForConditionalGeneration(config)
    else:
        model = UniMSEForConditionalGeneration.from_pretrained(source, config=config)
    config = model.config
    if source is not None and os.path.isfile(os.path.join(source, "processor_config.json")):
        processor = UniMSEProcessor.from_pretrained(source)
    else:
        tokenizer_dir = source if source and os.path.isfile(os.path.join(source, "spiece.model")) else model_args.tokenizer_dir
        processor = UniMSEProcessor.from_tokenizer_dir(tokenizer_dir, acoustic_dim=config.acoustic_dim,
                                                       visual_dim=config.visual_dim)
    for modality in ("acoustic", "visual"):
        expected, found = getattr(config, f"{modality}_dim"), dims.get(f"{modality}_dim")
        if found is not None and found != expected:
            raise ValueError(f"the data's {modality} frames have {found} features but the model expects {expected}")
    return model, processor


def main(argv: Optional[list[str]] = None) -> UniMSETrainer:
    """Parse the arguments, train, evaluate on validation and test, save; return the trainer."""
    parser = HfArgumentParser((ModelArguments, DataArguments, UniMSETrainingArguments))
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        model_args, data_args, training_args = parser.parse_json_file(os.path.abspath(argv[0]))
    else:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    if data_args.grammar_constrained_loss and not training_args.generation_structured:
        raise ValueError("--grammar_constrained_loss trains only the grammar's choices, so evaluation must decode with "
                         "the grammar: drop --generation_structured False")

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=[logging.StreamHandler()])
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    logger.info(f"Training arguments: {training_args}")

    resume = training_args.resume_from_checkpoint
    if resume == "latest":
        # The newest checkpoint written completely: a run killed while saving leaves an incomplete folder.
        resume = last_complete_checkpoint(training_args.output_dir, world_size=training_args.world_size,
                                          save_only_model=training_args.save_only_model)
        if resume is None:
            raise ValueError(f"--resume_from_checkpoint latest: no complete checkpoint in {training_args.output_dir}")
        logger.info(f"--resume_from_checkpoint latest: resuming from {resume}")

    set_seed(training_args.seed)
    raw = load_splits(data_args)
    dims = feature_dims(raw["train"] if "train" in raw else next(iter(raw.values())))
    model, processor = build_model_and_processor(model_args, dims)
    model.freeze_for_fine_tuning()
    collator = UniMSEDataCollator(
        processor,
        contrastive_label_column=data_args.contrastive_label_column if model.config.cl_label_weight > 0 else None,
        use_word_timestamps=data_args.use_word_timestamps,
        grammar_constrained_loss=data_args.grammar_constrained_loss,
    )
    for split, needed in (("train", training_args.do_train), ("validation", training_args.do_eval),
                          ("test", training_args.do_predict)):
        if needed and split not in raw:
            raise ValueError(f"--do_{'eval' if split == 'validation' else 'predict' if split == 'test' else 'train'} "
                             f"needs a {split} split")
    callbacks = []
    if data_args.push_checkpoints is not None:
        callbacks.append(HubPushCallback(strategy=data_args.push_checkpoints))
    trainer = UniMSETrainer(
        model=model,
        args=training_args,
        train_dataset=raw["train"] if training_args.do_train else None,
        eval_dataset=per_corpus(raw["validation"]) if "validation" in raw else None,
        processing_class=processor,
        data_collator=collator,
        callbacks=callbacks,
    )

    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=resume)
        trainer.save_model()
        trainer.log_metrics("train", result.metrics)
        trainer.save_metrics("train", result.metrics)
        trainer.save_state()
    card_metrics = None
    if training_args.do_eval:
        card_metrics = trainer.evaluate(metric_key_prefix="eval")
        trainer.log_metrics("eval", card_metrics)
        trainer.save_metrics("eval", card_metrics)
    if training_args.do_predict:
        test = raw["test"]
        output = trainer.predict(test, metric_key_prefix="test")
        card_metrics = output.metrics
        trainer.log_metrics("test", output.metrics)
        trainer.save_metrics("test", output.metrics)
        if trainer.is_world_process_zero():
            write_predictions(os.path.join(training_args.output_dir, "test_predictions.jsonl"), test,
                              processor, output.predictions)
    if training_args.do_train:
        trainer.create_model_card(metrics=card_metrics)
    if training_args.do_predict and trainer.is_world_process_zero():
        write_report(training_args.output_dir, output.metrics, trainer.state.log_history)
    return trainer


def write_report(output_dir: str, metrics: dict[str, float], log_history: list[dict[str, Any]]) -> None:
    """evaluation_report.md + figures from the test predictions, linked from the model card when there is one."""
    try:
        from unimse_hf.evaluation_report import link_report_from_model_card, write_evaluation_report
        import matplotlib  # noqa: F401
    except ImportError:
        logger.warning("matplotlib is not installed: no evaluation_report.md (pip install 'unimse-hf[report]')")
        return
    with open(os.path.join(output_dir, "test_predictions.jsonl"), encoding="utf-8") as handle:
        predictions = [json.loads(line) for line in handle]
    report = write_evaluation_report(output_dir, metrics, predictions, log_history=log_history)
    if os.path.isfile(os.path.join(output_dir, "README.md")):
        link_report_from_model_card(output_dir, report)


def write_predictions(path: str, rows: datasets.Dataset, processor: UniMSEProcessor, predictions: np.ndarray) -> None:
    """One JSON line per test row: id, dataset, gold target and generated text (DDP padding rows dropped)."""
    predictions = np.asarray(predictions)[: len(rows)]
    predictions = np.where(predictions < 0, processor.tokenizer.pad_token_id, predictions)
    generated = processor.batch_decode(predictions)
    with open(path, "w", encoding="utf-8") as handle:
        for row, text in zip(rows, generated):
            record = {"id": row.get("id"), "dataset": row.get("dataset"), "target": row.get("target"), "generated": text}
            handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
