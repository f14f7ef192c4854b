"""Token-level fusion (`fusion_granularity="token"`): each token fuses its own acoustic/visual state.

The word-locked task shows what it buys: the label is decided by an acoustic marker on one specific word,
which utterance-level fusion (one vector per clip, broadcast to every token) cannot locate in the text.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from unimse_hf import UniMSEForConditionalGeneration
from unimse_testing import REPO_ROOT, TINY, tiny_config, tiny_model, tiny_processor

pytestmark = pytest.mark.usefixtures("single_thread_torch")

DECISIVE_WORD = "not"
LABEL_WORDS = ("positive", "negative")  # label 1 (negative) = the marker is on the decisive word
FRAME_RATE = 100.0
MARKER = 3.0


# ---------------------------------------------------------------------------------------------- the word-locked task


def carrier_sentences(min_words: int = 3, max_words: int = 7) -> list[str]:
    """Real MOSI transcripts (data/mosi/label.csv) of `min_words`..`max_words` words without the decisive word."""
    with open(REPO_ROOT / "data" / "mosi" / "label.csv", newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    return [t for t in texts if min_words <= len(t.split()) <= max_words and DECISIVE_WORD not in t.split()]


def word_locked_samples(rng: np.random.Generator, carriers: list[str], count: int
                        ) -> list[tuple[str, np.ndarray, list[tuple[float, float]], int]]:
    """(text, acoustic frames, word timestamps, label) samples of the word-locked task.

    Every sample is a carrier with `not` inserted at a uniformly drawn word position, and every sample has one
    acoustic marker (+`MARKER` on feature 0 over one word's frames; the other frames are noise). In half of the
    samples (label 1) the marker lies on `not`; in the other half on another word drawn uniformly. So the marker's
    presence, its frame position and its word index have the same distribution in both classes, and so does the
    text: only *which word* carries the marker decides the label.
    """
    samples = []
    for _ in range(count):
        words = carriers[int(rng.integers(len(carriers)))].split()
        decisive = int(rng.integers(len(words) + 1))
        words.insert(decisive, DECISIVE_WORD)
        label = int(rng.integers(2))
        marked = decisive if label else int(rng.choice([w for w in range(len(words)) if w != decisive]))
        durations = rng.uniform(0.1, 0.3, len(words))
        ends = np.cumsum(durations)
        starts = ends - durations
        frames = (0.5 * rng.standard_normal((int(np.ceil(ends[-1] * FRAME_RATE)) + 1, TINY["acoustic_dim"])))
        frames[int(starts[marked] * FRAME_RATE): int(ends[marked] * FRAME_RATE), 0] += MARKER
        samples.append((" ".join(words), frames.astype(np.float32), list(zip(starts.tolist(), ends.tolist())), label))
    return samples


def token_aligned_batches(samples, batch_size: int) -> list[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """Processor batches aligned by the word timestamps, each with single-token `labels`, and the 0/1 labels."""
    processor = tiny_processor()
    label_ids = torch.tensor([processor.tokenizer.convert_tokens_to_ids("\u2581" + w) for w in LABEL_WORDS])
    batches = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start: start + batch_size]
        inputs = dict(processor([s[0] for s in chunk], acoustic=[s[1] for s in chunk],
                                word_timestamps=[s[2] for s in chunk]))
        labels = torch.tensor([s[3] for s in chunk])
        inputs["labels"] = label_ids[labels].unsqueeze(1)
        batches.append((inputs, labels))
    return batches


WORD_LOCKED_MODEL = dict(num_layers=1, num_decoder_layers=1, cl_enabled=False)
"""The tiny model of the word-locked task: 1+1 blocks (the rest as `TINY`), InfoNCE off (nothing to align)."""
STEPS, BATCH_SIZE, LEARNING_RATE = 200, 128, 1e-2
"""Training budget of the word-locked task. At 120 steps the token-level model reached the 0.90 bar on one host
(AMD EPYC) but 0.75 on another (Intel Xeon: different float round-off, same seed); at 200 it reaches 1.0 there
while utterance-level fusion stays at 0.57."""


@pytest.fixture(scope="module")
def word_locked_data() -> dict[str, list]:
    """Seeded train and held-out test batches (test carriers never appear in training)."""
    rng = np.random.default_rng(0)
    carriers = carrier_sentences()
    rng.shuffle(carriers)
    split = len(carriers) * 4 // 5
    train = word_locked_samples(rng, carriers[:split], STEPS * BATCH_SIZE // 2)
    test = word_locked_samples(rng, carriers[split:], 400)
    return {"train": token_aligned_batches(train, BATCH_SIZE), "test": token_aligned_batches(test, 200)}


def train_on(batches, granularity: str) -> UniMSEForConditionalGeneration:
    """A tiny model with `fusion_granularity=granularity` trained with Adam (seeded) for `STEPS` steps."""
    torch.manual_seed(0)
    model = UniMSEForConditionalGeneration(tiny_config(fusion_granularity=granularity, **WORD_LOCKED_MODEL))
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    model.train()
    for step in range(STEPS):
        inputs, _ = batches[step % len(batches)]
        loss = model(**inputs).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def label_accuracy(model, batches, zero_acoustic: bool = False) -> float:
    """Accuracy of the first decoding step's argmax over the two label tokens (greedy decoding restricted to
    the label set); `zero_acoustic` replaces every acoustic feature by 0 (the mask is kept)."""
    processor = tiny_processor()
    label_ids = [processor.tokenizer.convert_tokens_to_ids("\u2581" + w) for w in LABEL_WORDS]
    correct = total = 0
    for inputs, labels in batches:
        inputs = {k: v for k, v in inputs.items() if k != "labels"}
        if zero_acoustic:
            inputs["acoustic_features"] = torch.zeros_like(inputs["acoustic_features"])
        start = torch.zeros(labels.shape[0], 1, dtype=torch.long)
        logits = model(**inputs, decoder_input_ids=start).logits[:, 0, label_ids]
        correct += int((logits.argmax(dim=-1) == labels).sum())
        total += labels.shape[0]
    return correct / total


@pytest.fixture(scope="module")
def trained(word_locked_data) -> dict[str, UniMSEForConditionalGeneration]:
    """The same tiny model, data and seed, trained with token-level and with utterance-level fusion."""
    return {granularity: train_on(word_locked_data["train"], granularity) for granularity in ("token", "utterance")}


def test_word_locked_task_is_balanced_and_its_marker_position_does_not_depend_on_the_label():
    rng = np.random.default_rng(1)
    samples = word_locked_samples(rng, carrier_sentences(), 4000)
    labels = np.array([s[3] for s in samples])
    assert abs(labels.mean() - 0.5) < 0.03
    marked_word = np.array([int(np.argmax([s[1][int(a * FRAME_RATE): int(b * FRAME_RATE), 0].mean()
                                           for a, b in s[2]])) for s in samples])
    decisive_word = np.array([s[0].split().index(DECISIVE_WORD) for s in samples])
    assert np.array_equal(marked_word == decisive_word, labels == 1)
    for label in (0, 1):  # the marked word's index, relative to the sentence, is distributed alike
        assert abs(marked_word[labels == label].mean() - marked_word.mean()) < 0.15


def test_token_level_fusion_learns_the_word_locked_label(trained, word_locked_data):
    assert label_accuracy(trained["token"], word_locked_data["test"]) >= 0.90


def test_utterance_level_fusion_cannot_tell_which_word_carries_the_marker(trained, word_locked_data):
    assert label_accuracy(trained["utterance"], word_locked_data["test"]) <= 0.70


@pytest.mark.parametrize("granularity", ["token", "utterance"])
def test_with_the_acoustic_modality_zeroed_both_models_are_near_chance(trained, word_locked_data, granularity):
    assert abs(label_accuracy(trained[granularity], word_locked_data["test"], zero_acoustic=True) - 0.5) <= 0.1


# ---------------------------------------------------------------------------------------------- what each token fuses


def aligned_inputs(texts: list[str], seed: int = 0) -> dict[str, torch.Tensor]:
    """Token-aligned acoustic and visual inputs (`align_to_tokens=True`) for `texts`."""
    rng = np.random.default_rng(seed)
    acoustic = [rng.standard_normal((40, TINY["acoustic_dim"])).astype(np.float32) for _ in texts]
    visual = [rng.standard_normal((12, TINY["visual_dim"])).astype(np.float32) for _ in texts]
    return dict(tiny_processor()(texts, acoustic=acoustic, visual=visual, align_to_tokens=True))


def test_a_token_level_checkpoint_refuses_frame_level_inputs_naming_the_argument():
    model = tiny_model(fusion_granularity="token")
    processor = tiny_processor()
    inputs = processor(["it was good"], acoustic=[np.zeros((40, TINY["acoustic_dim"]), np.float32)])
    with pytest.raises(ValueError, match="`acoustic_features` must be token-aligned.*align_to_tokens"):
        model.encode(**inputs)


def test_positions_without_frames_fuse_the_missing_vector():
    model = tiny_model(fusion_granularity="token", missing_modality="learned")
    with torch.no_grad():
        model.acoustic_encoder.missing_embedding.normal_()
    inputs = aligned_inputs(["it was good", "not really what i wanted at all"])
    acoustic, _ = model.encode_modalities(
        inputs["acoustic_features"], inputs["acoustic_attention_mask"], inputs["visual_features"],
        inputs["visual_attention_mask"], batch_size=2, text_length=inputs["input_ids"].shape[1])
    without_frames = ~inputs["acoustic_attention_mask"].bool()  # task prefix, EOS and padding
    assert without_frames.any() and (~without_frames).any()
    missing = model.acoustic_encoder.missing_embedding.detach()
    torch.testing.assert_close(acoustic.token_states[without_frames], missing.expand(int(without_frames.sum()), -1))
    assert not torch.isclose(acoustic.token_states[~without_frames], missing).all(dim=-1).any()


@pytest.mark.parametrize("granularity, only_later_positions_change", [("token", True), ("utterance", False)])
def test_a_change_to_one_words_features_reaches_only_that_and_later_tokens_with_token_fusion(
        granularity, only_later_positions_change):
    """With one encoder block (its adapter after the block's attention), token fusion is position-wise and the
    LSTM is causal: earlier tokens are untouched. An utterance vector changes every token."""
    model = tiny_model(fusion_granularity=granularity, num_layers=1, num_decoder_layers=1)
    inputs = aligned_inputs(["the acting was really wonderful"])
    valid = inputs["acoustic_attention_mask"][0].nonzero().flatten()
    changed_position = int(valid[2])
    perturbed = dict(inputs, acoustic_features=inputs["acoustic_features"].clone())
    perturbed["acoustic_features"][0, changed_position] += 5.0
    before = model.encode(**inputs).last_hidden_state[0]
    after = model.encode(**perturbed).last_hidden_state[0]
    moved = (after - before).abs().amax(dim=-1) > 1e-6
    assert moved[changed_position]
    assert bool(moved[:changed_position].any()) is not only_later_positions_change


def test_the_decoder_fuses_the_utterance_vectors_and_generation_runs_on_token_aligned_inputs():
    model = tiny_model(fusion_granularity="token")
    inputs = aligned_inputs(["it was good", "not really"])
    encoded = model.encode(**inputs)
    assert encoded.acoustic_vector.shape == (2, TINY["modality_out"])
    assert encoded.visual_vector.shape == (2, TINY["modality_out"])
    generated = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    one_by_one = [model.generate(**{k: v[i: i + 1] for k, v in inputs.items()}, max_new_tokens=3, do_sample=False)
                  for i in range(2)]
    assert generated.shape[0] == 2
    for i, single in enumerate(one_by_one):
        assert torch.equal(generated[i, : single.shape[1]], single[0])


def test_a_token_level_checkpoint_round_trips_through_the_same_class(tmp_path):
    model = tiny_model(fusion_granularity="token")
    model.save_pretrained(tmp_path)
    loaded = UniMSEForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.config.fusion_granularity == "token"
    inputs = aligned_inputs(["it was good"])
    torch.testing.assert_close(loaded.encode(**inputs).last_hidden_state, model.encode(**inputs).last_hidden_state)
