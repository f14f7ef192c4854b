"""UniMSETrainer: loss composition and logging, gradient accumulation, resume, optimiser recipes, evaluation,
fusion learning, 2-process DDP and Hub pushes. Tiny models on CPU."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import TrainerCallback

from unimse_hf import UniMSEForConditionalGeneration
from unimse_hf.data_collator import UniMSEDataCollator
from unimse_hf.hub_push_callback import HubPushCallback
from unimse_hf.trainer_unimse import UniMSETrainer, UniMSETrainingArguments
from unimse_testing import REPO_ROOT, TINY, tiny_config, tiny_processor

POSITIVE = "positive,2.0,joy,joy"
NEGATIVE = "negative,-1.5,sadness,sadness"
WORDS = ["it", "was", "a", "really", "long", "day", "at", "the", "office", "honestly"]


pytestmark = pytest.mark.usefixtures("single_thread_torch")


def synthetic_rows(count: int, seed: int, modalities: tuple[str, ...] = ("acoustic", "visual"),
                   informative: Optional[str] = None, constant_text: bool = False) -> list[dict[str, Any]]:
    """Rows of the UniMSE row schema (dataset `mosi`), alternating positive and negative labels.

    With `informative` set, that modality's frames are centred on +1 for positive and -1 for negative rows;
    otherwise frames are pure noise. `constant_text` gives every row the same transcript.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        positive = index % 2 == 0
        text = "it was what it was" if constant_text else " ".join(rng.choice(WORDS, size=int(rng.integers(3, 9))))
        row = {"id": f"mosi/train/{seed}_{index}", "dataset": "mosi", "split": "train", "text": text,
               "context": None, "acoustic": None, "visual": None, "word_timestamps": None,
               "score": 2.0 if positive else -1.5, "polarity": "positive" if positive else "negative",
               "meld_emotion": "joy" if positive else "sadness", "iemocap_emotion": "joy" if positive else "sadness",
               "target": POSITIVE if positive else NEGATIVE}
        for modality in modalities:
            dim = TINY[f"{modality}_dim"]
            frames = rng.standard_normal((int(rng.integers(4, 14)), dim))
            if modality == informative:
                frames += 1.0 if positive else -1.0
            row[modality] = frames.astype(np.float32).tolist()
        rows.append(row)
    return rows


def make_trainer(output_dir: Path, rows: list[dict], model: Optional[UniMSEForConditionalGeneration] = None,
                 eval_rows: Optional[Union[list[dict], dict[str, list[dict]]]] = None,
                 contrastive_label_column: Optional[str] = None, callbacks: Optional[list] = None,
                 **args: Any) -> UniMSETrainer:
    """A UniMSETrainer on CPU over `rows` with quiet, checkpoint-free defaults (overridable by `args`).
    `eval_rows` may be a dict of row lists (one eval set per name)."""
    defaults = dict(output_dir=str(output_dir), per_device_train_batch_size=4, per_device_eval_batch_size=8,
                    max_steps=2, save_strategy="no", report_to="none", use_cpu=True, seed=0, logging_steps=1,
                    disable_tqdm=True, dataloader_num_workers=0)
    processor = tiny_processor()
    if isinstance(eval_rows, dict):
        eval_dataset = {name: Dataset.from_list(sub_rows) for name, sub_rows in eval_rows.items()}
    else:
        eval_dataset = None if eval_rows is None else Dataset.from_list(eval_rows)
    return UniMSETrainer(
        model=model if model is not None else tiny_model_for_training(),
        args=UniMSETrainingArguments(**{**defaults, **args}),
        train_dataset=Dataset.from_list(rows),
        eval_dataset=eval_dataset,
        processing_class=processor,
        data_collator=UniMSEDataCollator(processor, contrastive_label_column=contrastive_label_column),
        callbacks=callbacks,
    )


def tiny_model_for_training(seed: int = 0, **overrides: Any) -> UniMSEForConditionalGeneration:
    """A tiny UniMSE with a fixed initialisation, frozen for fine-tuning (in training mode, as the Trainer
    leaves it)."""
    torch.manual_seed(seed)
    model = UniMSEForConditionalGeneration(tiny_config(**overrides))
    model.freeze_for_fine_tuning()
    return model


class GradientRecorder(TrainerCallback):
    """Records the gradients of the trainable parameters right before each optimizer step."""

    def __init__(self) -> None:
        self.gradients: list[dict[str, torch.Tensor]] = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.gradients.append({name: p.grad.detach().clone() for name, p in model.named_parameters()
                               if p.requires_grad and p.grad is not None})


# ---------------------------------------------------------------------------------------------- loss


def test_each_loss_component_is_logged_finite_and_the_logged_loss_is_their_weighted_sum(tmp_path):
    model = tiny_model_for_training(cl_label_weight=0.2, dropout_rate=0.0, modality_dropout=0.0)
    trainer = make_trainer(tmp_path, synthetic_rows(16, seed=1), model=model, contrastive_label_column="polarity",
                           max_steps=4, logging_steps=2)
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert [entry["step"] for entry in logs] == [2, 4]
    for entry in logs:
        for name in ("lm_loss", "cl_ta", "cl_tv", "cl_label"):
            assert name in entry and math.isfinite(entry[name]) and entry[name] > 0, (name, entry)
        weighted = entry["lm_loss"] + 0.5 * entry["cl_ta"] + 0.5 * entry["cl_tv"] + 0.2 * entry["cl_label"]
        assert entry["loss"] == pytest.approx(weighted, rel=1e-5)


def test_zero_text_acoustic_weight_removes_that_term_from_loss_and_gradients(tmp_path):
    """With `cl_weight_ta=0` the loss is LM + 0.5·InfoNCE(text, visual) and the acoustic LSTM receives exactly
    the gradient of that sum (its LM path only); with 0.5 the acoustic InfoNCE changes the LSTM's gradient."""
    processor = tiny_processor()
    batch = UniMSEDataCollator(processor)(synthetic_rows(6, seed=2))

    def loss_and_lstm_gradient(cl_weight_ta: float, reference: bool) -> tuple[torch.Tensor, torch.Tensor]:
        model = tiny_model_for_training(cl_weight_ta=cl_weight_ta, dropout_rate=0.0, modality_dropout=0.0)
        trainer = make_trainer(tmp_path, synthetic_rows(4, seed=0), model=model)
        model.train()
        if reference:
            outputs = model(**batch)
            loss = outputs.lm_loss + 0.5 * outputs.contrastive_loss_tv
        else:
            loss = trainer.compute_loss(model, batch)
        loss.backward()
        return loss.detach(), model.acoustic_encoder.rnn.weight_ih_l0.grad.clone()

    loss_without, gradient_without = loss_and_lstm_gradient(0.0, reference=False)
    loss_reference, gradient_reference = loss_and_lstm_gradient(0.0, reference=True)
    _, gradient_with = loss_and_lstm_gradient(0.5, reference=False)
    assert torch.allclose(loss_without, loss_reference, atol=1e-6)
    assert torch.allclose(gradient_without, gradient_reference, atol=1e-7)
    assert (gradient_with - gradient_without).abs().max() > 1e-4


def test_model_loss_equals_trainer_compute_loss_with_contrastive_weights_on(tmp_path):
    """The one implementation of the objective: `model(**batch, labels=...).loss` is what the trainer
    optimises, with both InfoNCE terms and the label-aware term weighted in (and `contrastive_label_ids`
    reaching the model)."""
    model = tiny_model_for_training(cl_label_weight=0.3, cl_weight_ta=0.4, cl_weight_tv=0.7, dropout_rate=0.0,
                                    modality_dropout=0.0)
    trainer = make_trainer(tmp_path, synthetic_rows(4, seed=0), model=model, contrastive_label_column="polarity")
    batch = trainer.data_collator(synthetic_rows(6, seed=3))
    assert batch["contrastive_label_ids"].tolist() == [0, 1, 0, 1, 0, 1]
    model.train()
    outputs = model(**batch)
    parts = (outputs.lm_loss, outputs.contrastive_loss_ta, outputs.contrastive_loss_tv, outputs.contrastive_loss_label)
    assert all(part is not None and part.item() > 0 for part in parts)
    weighted = parts[0] + 0.4 * parts[1] + 0.7 * parts[2] + 0.3 * parts[3]
    assert torch.allclose(outputs.loss, weighted, atol=1e-6)
    assert torch.allclose(trainer.compute_loss(model, batch), outputs.loss, atol=1e-6)


# ---------------------------------------------------------------------------------------------- accumulation


def test_gradient_accumulation_gives_the_gradients_of_the_full_batch(tmp_path):
    """Batch 8 vs batch 4 x 2 accumulation steps: the same gradients (dropout off). The contrastive terms are
    off (`cl_enabled=False`) because they are in-batch: splitting 8 into 4+4 changes their negatives. The
    targets have different token counts, so only a loss normalised over the accumulated token count (not a
    mean per micro-batch) matches."""
    rows = synthetic_rows(8, seed=4)
    targets = ["positive,2.0,joy,joy", "negative,-1.5,sadness,sadness", "positive,0.6667,surprise,excited",
               "negative,-2.4,anger,frustrated", "positive,1.2,joy,excited", "negative,-0.8,disgust,anger",
               "positive,3.0,joy,joy", "negative,-0.4,fear,sadness"]
    for row, target in zip(rows, targets):
        row["target"] = target
    token_counts = {len(ids) - ids.count(-100) for ids in tiny_processor().encode_labels([r["target"] for r in rows])}
    assert len(token_counts) > 2
    gradients = {}
    for name, batch_size, accumulation in (("full", 8, 1), ("accumulated", 4, 2)):
        recorder = GradientRecorder()
        model = tiny_model_for_training(cl_enabled=False, dropout_rate=0.0, modality_dropout=0.0)
        trainer = make_trainer(tmp_path / name, rows, model=model, callbacks=[recorder], max_steps=1,
                               per_device_train_batch_size=batch_size, gradient_accumulation_steps=accumulation)
        trainer.train()
        gradients[name] = recorder.gradients[0]
    assert gradients["full"].keys() == gradients["accumulated"].keys() and len(gradients["full"]) > 10
    differences = [(gradients["full"][k] - gradients["accumulated"][k]).abs().max().item() for k in gradients["full"]]
    largest = max(g.abs().max().item() for g in gradients["full"].values())
    print(f"GA max |grad difference| = {max(differences):.3g} (largest gradient {largest:.3g})")
    assert largest > 1e-3
    assert max(differences) <= 1e-6


def test_accumulated_gradients_with_contrastive_terms_follow_the_documented_token_share_scaling(tmp_path):
    """Batch 4 x 2 accumulation steps with the contrastive terms on: the gradients are those of
    Σ_micro-batches [LM token sum / N + (tokens_i / N) · (0.5·InfoNCE_ta,i + 0.5·InfoNCE_tv,i)], N the target
    tokens of both micro-batches (the in-batch terms cannot equal those of one batch of 8)."""
    rows = synthetic_rows(8, seed=4)
    recorder = GradientRecorder()
    model = tiny_model_for_training(dropout_rate=0.0, modality_dropout=0.0)
    initial = {name: value.clone() for name, value in model.state_dict().items()}
    trainer = make_trainer(tmp_path / "accumulated", rows, model=model, callbacks=[recorder], max_steps=1,
                           per_device_train_batch_size=4, gradient_accumulation_steps=2)
    batches = []  # the micro-batches as the trainer built them
    collate = trainer.data_collator
    trainer.data_collator = lambda features: batches.append(collate(features)) or batches[-1]
    trainer.train()

    reference = tiny_model_for_training(dropout_rate=0.0, modality_dropout=0.0)
    reference.load_state_dict(initial)
    reference.train()
    assert len(batches) == 2
    total_tokens = sum(int(batch["labels"].ne(-100).sum()) for batch in batches)
    for batch in batches:
        outputs = reference(**batch)
        tokens = int(batch["labels"].ne(-100).sum())
        contrastive = 0.5 * outputs.contrastive_loss_ta + 0.5 * outputs.contrastive_loss_tv
        ((outputs.lm_loss * tokens + tokens * contrastive) / total_tokens).backward()
    expected = {name: p.grad for name, p in reference.named_parameters() if p.grad is not None}
    actual = recorder.gradients[0]
    assert expected.keys() == actual.keys()
    difference = max((expected[name] - actual[name]).abs().max().item() for name in expected)
    print(f"GA with contrastive terms: max |grad difference| = {difference:.3g}")
    assert difference <= 1e-6


# ---------------------------------------------------------------------------------------------- resume


def test_resuming_from_a_checkpoint_reproduces_the_uninterrupted_run(tmp_path):
    """4 steps straight vs 2 steps, a checkpoint (mid-epoch), and a new trainer resuming it: equal weights.
    Dropout and modality dropout are on, so this also checks that the checkpoint restores the RNG states."""
    rows = synthetic_rows(16, seed=5)
    common = dict(max_steps=4, save_strategy="steps", save_steps=2, per_device_train_batch_size=4)
    straight = make_trainer(tmp_path / "straight", rows, model=tiny_model_for_training(), **common)
    straight.train()
    checkpoint = tmp_path / "straight" / "checkpoint-2"
    assert (checkpoint / "rng_state.pth").is_file() and (checkpoint / "optimizer.pt").is_file()
    resumed = make_trainer(tmp_path / "resumed", rows, model=tiny_model_for_training(seed=123), **common)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 4
    expected, actual = straight.model.state_dict(), resumed.model.state_dict()
    difference = max((expected[k].float() - actual[k].float()).abs().max().item() for k in expected)
    changed = max((expected[k].float() - tiny_model_for_training().state_dict()[k].float()).abs().max().item()
                  for k in expected)
    print(f"resume max |weight difference| = {difference:.3g} (max change from init {changed:.3g})")
    assert changed > 1e-3
    assert difference <= 1e-6


# ---------------------------------------------------------------------------------------------- optimisation


def test_official_recipe_is_adam_with_coupled_decay_constant_lr_and_no_clipping(tmp_path):
    args = UniMSETrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none",
                                   lr_scheduler_type="cosine", warmup_steps=5, max_grad_norm=1.0)
    assert (args.lr_scheduler_type.value, args.warmup_steps, args.max_grad_norm) == ("constant", 0, 0.0)
    model = tiny_model_for_training()
    trainer = make_trainer(tmp_path, synthetic_rows(4, seed=0), model=model)
    optimizer = trainer.create_optimizer()
    assert type(optimizer) is torch.optim.Adam
    groups = {group["name"]: group for group in optimizer.param_groups}
    assert set(groups) == {"t5", "fusion"}
    assert (groups["t5"]["lr"], groups["fusion"]["lr"]) == (3e-4, 1e-4)
    assert groups["t5"]["weight_decay"] == groups["fusion"]["weight_decay"] == 1e-4
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    for name, parameter in model.named_parameters():
        trainable = name in set(model.fusion_parameter_names()) | set(model.trainable_t5_parameter_names())
        assert parameter.requires_grad == trainable and (id(parameter) in optimised) == trainable, name
    assert not model.shared.weight.requires_grad


def test_hf_recipe_is_adamw_with_the_arguments_schedule_and_no_decay_on_norms(tmp_path):
    trainer = make_trainer(tmp_path, synthetic_rows(4, seed=0), optimizer_recipe="hf", lr_scheduler_type="linear",
                           warmup_steps=3, max_grad_norm=0.5, t5_learning_rate=2e-4, fusion_learning_rate=5e-4)
    assert (trainer.args.lr_scheduler_type.value, trainer.args.warmup_steps, trainer.args.max_grad_norm) == (
        "linear", 3, 0.5)
    optimizer = trainer.create_optimizer()
    assert type(optimizer) is torch.optim.AdamW
    groups = {group["name"]: group for group in optimizer.param_groups}
    assert set(groups) == {"t5", "t5_no_decay", "fusion", "fusion_no_decay"}
    assert groups["t5_no_decay"]["weight_decay"] == 0.0 and groups["fusion"]["lr"] == 5e-4


# ---------------------------------------------------------------------------------------------- evaluation


def test_evaluation_reports_per_dataset_metrics_parse_failures_and_the_aggregate(tmp_path):
    eval_rows = synthetic_rows(6, seed=6)
    meld = synthetic_rows(5, seed=7)
    for row in meld:
        row.update(dataset="meld", context="Ross: hi </s> " + row["text"] + " </s>", score=0.0)
    trainer = make_trainer(tmp_path, synthetic_rows(4, seed=0), eval_rows=eval_rows + meld)
    metrics = trainer.evaluate()
    for key in ("eval_mosi_acc2_non0", "eval_mosi_mae", "eval_mosi_parse_failure_rate", "eval_meld_weighted_f1",
                "eval_meld_accuracy", "eval_parse_failure_rate", "eval_mean_primary"):
        assert key in metrics, (key, sorted(metrics))
    assert metrics["eval_mosi_num_samples"] == 6 and metrics["eval_meld_num_samples"] == 5
    assert 0.0 <= metrics["eval_parse_failure_rate"] <= 1.0


def test_a_dict_of_eval_sets_is_scored_per_dataset_with_the_mean_primary_over_them(tmp_path):
    mosi = synthetic_rows(6, seed=6)
    meld = synthetic_rows(5, seed=7)
    for row in meld:
        row.update(dataset="meld", context="Ross: hi </s> " + row["text"] + " </s>", score=0.0)
    trainer = make_trainer(tmp_path, synthetic_rows(4, seed=0), eval_rows={"mosi": mosi, "meld": meld})
    metrics = trainer.evaluate()
    assert metrics["eval_mosi_num_samples"] == 6 and metrics["eval_meld_num_samples"] == 5
    assert {"eval_mosi_acc2_non0", "eval_mosi_loss", "eval_meld_weighted_f1", "eval_meld_loss"} <= set(metrics)
    assert not any(key.startswith(("eval_mosi_mosi_", "eval_meld_meld_")) for key in metrics)
    assert metrics["eval_mean_primary"] == pytest.approx(
        (metrics["eval_mosi_acc2_non0"] + metrics["eval_meld_weighted_f1"]) / 2, nan_ok=True)
    assert any("eval_mean_primary" in entry for entry in trainer.state.log_history)


def test_evaluation_decodes_with_the_processor_grammar_as_the_pipeline_does(tmp_path):
    """Trainer evaluation and the pipeline decode the same way: the same label strings for the same rows."""
    from transformers import pipeline

    rows = synthetic_rows(4, seed=9, modalities=())
    trainer = make_trainer(tmp_path, synthetic_rows(4, seed=0))
    output = trainer.predict(Dataset.from_list(rows))
    ids = np.where(output.predictions < 0, trainer.processing_class.tokenizer.pad_token_id, output.predictions)
    from_trainer = trainer.processing_class.batch_decode(ids)
    trainer.save_model(str(tmp_path / "saved"))
    pipe = pipeline(model=str(tmp_path / "saved"), trust_remote_code=True)
    from_pipeline = [pipe(row["text"])["label"] for row in rows]
    assert from_trainer == from_pipeline
    assert all(trainer.processing_class.post_process_generation([text])[0].valid for text in from_trainer)


def test_metrics_function_is_injectable_and_sees_generated_text_references_and_datasets(tmp_path):
    seen = {}

    def metrics_function(generated, references, dataset_names):
        seen.update(generated=list(generated), references=list(references), datasets=list(dataset_names))
        return {"custom": 1.0}

    eval_rows = synthetic_rows(5, seed=8)
    trainer = make_trainer(tmp_path, synthetic_rows(4, seed=0), eval_rows=eval_rows)
    trainer.metrics_function = metrics_function
    metrics = trainer.evaluate()
    assert metrics["eval_custom"] == 1.0
    assert seen["references"] == [row["target"] for row in eval_rows]
    assert seen["datasets"] == ["mosi"] * 5 and len(seen["generated"]) == 5
    assert all(isinstance(text, str) for text in seen["generated"])


# ---------------------------------------------------------------------------------------------- fusion learns


def fusion_run(tmp_path: Path, informative: Optional[str]) -> float:
    """Train on rows whose label only the `informative` modality reveals (text identical for both classes;
    `None`: text-only, no features), return the held-out accuracy of the generated score's sign (unreadable
    scores count as wrong)."""
    modalities = () if informative is None else (informative,)
    train = synthetic_rows(64, seed=10, modalities=modalities, informative=informative, constant_text=True)
    held_out = synthetic_rows(32, seed=11, modalities=modalities, informative=informative, constant_text=True)
    model = tiny_model_for_training(dropout_rate=0.0, modality_dropout=0.0)
    trainer = make_trainer(tmp_path / str(informative), train, model=model, max_steps=60,
                           per_device_train_batch_size=16, optimizer_recipe="hf", lr_scheduler_type="constant",
                           warmup_steps=0, t5_learning_rate=1e-2, fusion_learning_rate=1e-2, logging_steps=20)
    trainer.train()
    output = trainer.predict(Dataset.from_list(held_out))
    predictions = np.where(output.predictions < 0, trainer.processing_class.tokenizer.pad_token_id, output.predictions)
    parsed = trainer.processing_class.post_process_generation(predictions)
    correct = [label.score is not None and (label.score > 0) == (row["score"] > 0) for label, row in zip(parsed, held_out)]
    return float(np.mean(correct))


@pytest.fixture(scope="module")
def text_only_accuracy(tmp_path_factory) -> float:
    return fusion_run(tmp_path_factory.mktemp("text_only"), informative=None)


@pytest.mark.parametrize("modality", ["acoustic", "visual"])
def test_fusion_learns_a_label_only_the_modality_reveals(tmp_path, modality, text_only_accuracy):
    fused_accuracy = fusion_run(tmp_path, informative=modality)
    print(f"{modality}: fused accuracy {fused_accuracy:.3f}, text-only accuracy {text_only_accuracy:.3f}")
    assert fused_accuracy >= 0.9
    assert abs(text_only_accuracy - 0.5) <= 0.1


# ---------------------------------------------------------------------------------------------- Hub push


def test_checkpoint_push_uploads_the_remote_code_processor_and_model_card(tmp_path, hub_repo_id):
    from huggingface_hub import HfApi

    repo_id = hub_repo_id()
    pushes = HubPushCallback(strategy="checkpoint", repo_id=repo_id)
    trainer = make_trainer(tmp_path / "out", synthetic_rows(8, seed=0), max_steps=2, save_strategy="steps",
                           save_steps=2, callbacks=[pushes])
    trainer.train()
    pushes.wait_until_done()
    files = set(HfApi().list_repo_files(repo_id))
    for name in ("modeling_unimse.py", "configuration_unimse.py", "processing_unimse.py", "processor_config.json",
                 "model.safetensors", "config.json", "README.md", "last-checkpoint/modeling_unimse.py"):
        assert name in files, (name, sorted(files))
    config = json.loads(Path(HfApi().hf_hub_download(repo_id, "config.json", cache_dir=tmp_path / "cache")).read_text())
    assert config["auto_map"]["AutoModelForSeq2SeqLM"] == "modeling_unimse.UniMSEForConditionalGeneration"


# ---------------------------------------------------------------------------------------------- DDP

DDP_WORKER = textwrap.dedent("""
    import hashlib, json, os, sys
    import torch
    from transformers import TrainerCallback
    sys.path.insert(0, {examples!r})
    import train_unimse
    from unimse_hf.trainer_unimse import UniMSETrainer

    class FirstStepGradients(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            if state.global_step == 0:
                gradients = {{n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}}
                torch.save(gradients, os.path.join({output_dir!r}, f"rank{{args.process_index}}_gradients.pt"))

    trainer_init = UniMSETrainer.__init__
    def init_with_gradient_recorder(self, *args, **kwargs):
        trainer_init(self, *args, **kwargs)
        self.add_callback(FirstStepGradients())
    UniMSETrainer.__init__ = init_with_gradient_recorder

    trainer = train_unimse.main({argv!r})
    rank = trainer.args.process_index
    state = trainer.accelerator.unwrap_model(trainer.model).state_dict()
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode()); digest.update(state[name].detach().float().cpu().numpy().tobytes())
    eval_metrics = [entry for entry in trainer.state.log_history if "eval_mosi_num_samples" in entry][-1]
    with open(os.path.join({output_dir!r}, f"rank{{rank}}.json"), "w") as handle:
        json.dump({{"rank": rank, "world_size": trainer.args.world_size,
                   "distributed_type": str(trainer.accelerator.distributed_type),
                   "wrapped": type(trainer.model_wrapped).__name__, "checksum": digest.hexdigest(),
                   "global_step": trainer.state.global_step,
                   "eval_num_samples": eval_metrics["eval_mosi_num_samples"]}}, handle)
""")


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> tuple[Path, list[str]]:
    """Launch examples/train_unimse.py on 2 CPU processes (3 steps of batch 4 per rank, dropout off, then
    evaluation of 7 rows); each rank writes its report and its first-step gradients. Returns the output
    folder and the script arguments shared by both ranks."""
    root = tmp_path_factory.mktemp("ddp")
    data_dir, output_dir = root / "data", root / "out"
    data_dir.mkdir()
    output_dir.mkdir()
    Dataset.from_list(synthetic_rows(16, seed=12)).to_parquet(str(data_dir / "train.parquet"))
    Dataset.from_list(synthetic_rows(7, seed=13)).to_parquet(str(data_dir / "validation.parquet"))
    argv = ["--tiny", "--config_overrides", "dropout_rate=0.0,modality_dropout=0.0", "--dataset_dir", str(data_dir),
            "--use_cpu", "--tokenizer_dir", str(REPO_ROOT / "data" / "t5"), "--do_train", "--do_eval",
            "--max_steps", "3", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "2",
            "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true", "--seed", "0",
            ]
    worker = root / "worker.py"
    worker.write_text(DDP_WORKER.format(examples=str(REPO_ROOT / "examples"),
                                        argv=argv + ["--output_dir", str(output_dir)], output_dir=str(output_dir)))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO_ROOT)]))}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(REPO_ROOT / "examples" / "accelerate" / "ddp_cpu_2proc.yaml"), str(worker)]
    result = subprocess.run(command, cwd=str(REPO_ROOT), env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return output_dir, argv


def test_two_cpu_processes_train_with_ddp_and_end_with_identical_parameters(ddp_run):
    output_dir, _ = ddp_run
    reports = [json.loads((output_dir / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    print(f"DDP reports: {reports}")
    for rank, report in enumerate(reports):
        assert report["rank"] == rank and report["world_size"] == 2
        assert report["distributed_type"] == "DistributedType.MULTI_CPU"
        assert report["wrapped"] == "DistributedDataParallel" and report["global_step"] == 3
        assert report["eval_num_samples"] == 7  # the padding duplicates of the 2-rank gather were dropped
    assert reports[0]["checksum"] == reports[1]["checksum"]


def test_ddp_gradients_equal_single_process_gradient_accumulation(ddp_run, tmp_path, monkeypatch):
    """2 ranks x batch 4 give the gradients of 1 process x batch 4 x 2 accumulation steps (the same 8 samples):
    the LM term's global token normalisation and the per-rank contrastive terms are scaled alike."""
    output_dir, argv = ddp_run
    recorder = GradientRecorder()
    trainer_init = UniMSETrainer.__init__

    def init_with_recorder(self, *args, **kwargs):
        trainer_init(self, *args, **kwargs)
        self.add_callback(recorder)

    monkeypatch.setattr(UniMSETrainer, "__init__", init_with_recorder)
    sys.path.insert(0, str(REPO_ROOT / "examples"))
    import train_unimse

    single = [a for a in argv if a not in ("--do_eval",)]
    single[single.index("--max_steps") + 1] = "1"
    train_unimse.main(single + ["--gradient_accumulation_steps", "2", "--output_dir", str(tmp_path)])
    reference = recorder.gradients[0]
    for rank in (0, 1):
        distributed = torch.load(output_dir / f"rank{rank}_gradients.pt", weights_only=True)
        assert distributed.keys() == reference.keys()
        difference = max((distributed[k] - reference[k]).abs().max().item() for k in reference)
        print(f"rank {rank}: max |DDP - single-process GA=2 gradient| = {difference:.3g}")
        assert difference <= 1e-5
