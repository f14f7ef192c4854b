"""UniMSEProcessor and UniMSEFeatureExtractor: prefix, padding, alignment, labels, save/load."""

import numpy as np
import pytest
import torch

from unimse_hf import UniMSEProcessor, UniversalLabel
from unimse_hf.alignment_unimse import WordLayout, frame_ranges_of_spans, segment_means
from unimse_testing import random_frames, tiny_processor


def test_task_prefix_is_prepended():
    processor = tiny_processor()
    ids = processor("anyhow it was really good", return_tensors=None)["input_ids"][0]
    # "sst2 sentence: " tokenises as ▁ s s t 2 ▁sentence : (ids 3 7 7 17 357 7142 10), as for the original T5
    assert ids[:7] == [3, 7, 7, 17, 357, 7142, 10] and ids[-1] == 1


def test_frames_are_padded_with_attention_masks():
    rng = np.random.default_rng(0)
    batch = tiny_processor()(["a", "b c"], acoustic=random_frames(rng, [5, 3], 8), visual=[None, rng.standard_normal((2, 6))])
    assert batch["acoustic_features"].shape == (2, 5, 8)
    assert batch["acoustic_attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert batch["visual_attention_mask"].tolist() == [[0, 0], [1, 1]]
    assert torch.all(batch["acoustic_features"][1, 3:] == 0)


def test_word_timestamps_average_frames_per_word_and_copy_to_sub_tokens():
    processor = tiny_processor()
    # 10 acoustic frames at 100 Hz: frame i holds the value i in every dimension.
    frames = np.repeat(np.arange(10, dtype=np.float32)[:, None], 8, axis=1)
    text = "anyhow it good"  # tokens: ▁any how ▁it ▁good
    batch = processor(text, acoustic=[frames], word_timestamps=[[(0.0, 0.04), (0.04, 0.05), (0.05, 0.10)]])
    tokens = processor.tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    assert tokens[7:] == ["▁any", "how", "▁it", "▁good", "</s>"]
    values = batch["acoustic_features"][0, :, 0].tolist()
    mask = batch["acoustic_attention_mask"][0].tolist()
    # "anyhow" covers frames 0-3 (mean 1.5) for both of its pieces; "it" frame 4; "good" frames 5-9 (mean 7).
    assert values[7:11] == [1.5, 1.5, 4.0, 7.0]
    assert mask == [0] * 7 + [1, 1, 1, 1, 0]  # prefix and </s> masked


def test_visual_frames_align_with_their_own_frame_rate():
    processor = tiny_processor()
    frames = np.repeat(np.arange(6, dtype=np.float32)[:, None], 6, axis=1)  # 30 Hz: frame i spans [i/30, (i+1)/30)
    batch = processor("yes no", visual=[frames], word_timestamps=[[(0.0, 0.1), (0.1, 0.2)]])
    values = batch["visual_features"][0, :, 0].tolist()
    assert values[7:9] == [1.0, 4.0]  # frames 0,1,2 -> 1.0 ; frames 3,4,5 -> 4.0


def test_without_timestamps_words_are_spread_in_proportion_to_their_length():
    processor = tiny_processor()
    frames = np.repeat(np.arange(8, dtype=np.float32)[:, None], 8, axis=1)
    batch = processor("it good", acoustic=[frames], align_to_tokens=True)  # 2 + 4 characters over 8 frames
    values = batch["acoustic_features"][0, 7:9, 0].tolist()
    # "it" spans frames [0, 2.67): centres 0.5, 1.5, 2.5 -> frames 0,1,2 (mean 1); "good" frames 3..7 (mean 5)
    assert values == [1.0, 5.0]


def test_a_word_between_frame_centres_takes_the_nearest_frame():
    frames = np.arange(4, dtype=np.float32)[:, None]
    low, high = frame_ranges_of_spans(np.array([[2.1, 2.2]]), np.array([4]))
    assert (low.tolist(), high.tolist()) == ([2], [3])
    assert segment_means(frames, low, high)[0, 0] == 2.0


def test_proportional_spans_split_each_clip_by_word_length():
    layout = WordLayout([[0, 1], [0, 1, 2]], word_timestamps=None, words=[["a", "bcd"], ["ab", "cd", "efgh"]])
    assert layout.spans.tolist() == [[0.0, 0.25], [0.25, 1.0], [0.0, 0.25], [0.25, 0.5], [0.5, 1.0]]
    assert layout.token_words.tolist() == [[0, 1, -1], [2, 3, 4]]


def test_labels_are_encoded_with_minus_100_padding_and_parsed_back():
    processor = tiny_processor()
    batch = processor(["a", "b"], labels=["positive,2.4,joy,excited", UniversalLabel("negative", -1.0, "anger", "sad")])
    labels = batch["labels"]
    assert (labels == -100).any() and labels.shape[0] == 2
    texts = processor.batch_decode(torch.where(labels == -100, 0, labels))
    parsed = processor.post_process_generation(texts)
    assert [p.to_label() for p in parsed] == [UniversalLabel("positive", 2.4, "joy", "excited"),
                                              UniversalLabel("negative", -1.0, "anger", "sadness")]


def test_labels_are_written_in_canonical_form_at_the_processors_decimals():
    processor = tiny_processor()
    assert processor.score_decimals == 4
    assert processor.format_label(UniversalLabel("negative", -0.6666666865348816, "anger", "sad")) == "negative,-0.6667,anger,sadness"
    assert processor.format_label("negative,-0.6666666865348816,anger,sadness") == "negative,-0.6667,anger,sadness"


def test_label_case_spaces_and_iemocap_abbreviations_are_normalised():
    assert tiny_processor().format_label("POSITIVE , 1.0 , JOY , EXC") == "positive,1.0000,joy,excited"


def test_every_encoded_label_is_a_string_the_grammar_emits():
    processor = tiny_processor()
    grammar = processor.label_constraint().grammar
    for label in ["positive,2.99999,joy,excited", "neutral,-0.0,neutral,neu", "negative,-3,fear,fru", "positive,1e-3,joy,hap"]:
        assert grammar.accepts(processor.format_label(label)), label


def test_a_nonzero_score_that_rounds_to_zero_is_refused():
    with pytest.raises(ValueError, match="rounds to 0 at 4 decimals"):
        tiny_processor().format_label("positive,0.00001,joy,excited")


def test_generation_kwargs_constrain_decoding_at_the_processors_decimals():
    processor = tiny_processor()
    kwargs = processor.generation_kwargs()
    (constraint,) = kwargs["logits_processor"]
    assert constraint.grammar.score_decimals == processor.score_decimals
    assert kwargs["max_new_tokens"] == constraint.max_label_tokens == 38
    assert processor.generation_kwargs()["logits_processor"][0] is constraint  # built once per processor


def test_generation_kwargs_unstructured_and_with_a_token_budget():
    assert tiny_processor().generation_kwargs(structured=False, max_new_tokens=5) == {"max_new_tokens": 5}


@pytest.mark.parametrize("decimals", [None, -1, 7, 2.0, True, "4"])
def test_score_decimals_must_be_an_int_from_0_to_6(decimals):
    processor = tiny_processor()
    with pytest.raises(ValueError, match="score_decimals"):
        UniMSEProcessor(processor.feature_extractor, processor.tokenizer, score_decimals=decimals)


def test_malformed_generations_parse_as_invalid_without_raising():
    parsed = tiny_processor().post_process_generation(["positive,1.0,joy", "", "x,y,z,w", "positive,abc,joy,excited"])
    assert [p.valid for p in parsed] == [False, False, False, False]
    assert parsed[3].score_or_default == 0.0 and parsed[3].meld_emotion == "joy"


def test_processor_round_trips_through_processor_config(tmp_path):
    processor = tiny_processor()
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "processor_config.json").is_file()
    loaded = UniMSEProcessor.from_pretrained(tmp_path)
    assert loaded.task_prefix == processor.task_prefix
    assert loaded.feature_extractor.to_dict() == processor.feature_extractor.to_dict()
    rng = np.random.default_rng(1)
    args = dict(text=["it was good"], acoustic=random_frames(rng, [12], 8), word_timestamps=[[(0, .03), (.03, .06), (.06, .12)]])
    for key, value in processor(**args).items():
        assert torch.equal(value, loaded(**args)[key])


def test_feature_kind_mismatch_is_refused(tmp_path):
    processor = tiny_processor()
    processor.feature_extractor.acoustic_feature_kind = "librosa-25"
    try:
        with pytest.raises(ValueError, match="acoustic"):
            processor("hi", acoustic=[np.zeros((3, 8))], acoustic_feature_kind="covarep-74")
        processor("hi", acoustic=[np.zeros((3, 8))], acoustic_feature_kind="librosa-25")
    finally:
        processor.feature_extractor.acoustic_feature_kind = "unspecified"


def test_segment_means_equal_a_loop_for_disjoint_and_overlapping_ranges():
    rng = np.random.default_rng(1)
    for _ in range(200):
        frames = rng.standard_normal((int(rng.integers(1, 60)), 3)).astype(np.float32)
        count = len(frames)
        low = np.sort(rng.integers(0, count, int(rng.integers(1, 8))))
        high = np.maximum(np.minimum(low + rng.integers(1, 6, len(low)), count), low + 1)
        expected = np.stack([frames[a:b].mean(axis=0) for a, b in zip(low, high)])
        np.testing.assert_allclose(segment_means(frames, low, high), expected, atol=1e-5)


def test_whisper_style_start_end_mappings_align_like_pairs():
    processor = tiny_processor()
    frames = [np.repeat(np.arange(10, dtype=np.float32)[:, None], 8, axis=1)]
    pairs = [(0.0, 0.04), (0.04, 0.05), (0.05, 0.10)]
    mappings = [{"word": w, "start": s, "end": e, "probability": 0.9} for w, (s, e) in zip("anyhow it good".split(), pairs)]
    expected = processor("anyhow it good", acoustic=frames, word_timestamps=[pairs])
    aligned = processor("anyhow it good", acoustic=frames, word_timestamps=[mappings])
    assert torch.equal(aligned["acoustic_features"], expected["acoustic_features"])


def test_a_word_may_end_within_the_tolerance_after_the_clip():
    from unimse_hf.alignment_unimse import CLIP_END_TOLERANCE_SECONDS

    frames = [np.ones((10, 8), dtype=np.float32)]  # 0.1 s at 100 Hz
    batch = tiny_processor()("it good", acoustic=frames, word_timestamps=[[(0.0, 0.05), (0.05, 0.1 + CLIP_END_TOLERANCE_SECONDS)]])
    assert batch["acoustic_attention_mask"][0].sum() == 2
    with pytest.raises(ValueError, match="past the end of the acoustic clip"):
        tiny_processor()("it good", acoustic=frames, word_timestamps=[[(0.0, 0.05), (0.05, 0.11 + CLIP_END_TOLERANCE_SECONDS)]])


def test_one_sample_of_timestamps_is_read_as_a_batch_of_one():
    processor = tiny_processor()
    frames = [np.ones((30, 8), dtype=np.float32)]
    single = processor("it was good", acoustic=frames, word_timestamps=[(0, .1), (.1, .2), (.2, .3)])
    batch = processor("it was good", acoustic=frames, word_timestamps=[[(0, .1), (.1, .2), (.2, .3)]])
    assert torch.equal(single["acoustic_features"], batch["acoustic_features"])


def test_collator_aligns_rows_with_their_word_timestamp_mappings():
    from unimse_hf.data_collator import UniMSEDataCollator

    frames = np.repeat(np.arange(10, dtype=np.float32)[:, None], 8, axis=1)
    stamps = [{"word": w, "start": s, "end": e} for w, (s, e) in zip("anyhow it good".split(), [(0.0, 0.04), (0.04, 0.05), (0.05, 0.10)])]
    row = {"id": "r", "text": "anyhow it good", "context": None, "acoustic": frames, "visual": None, "word_timestamps": stamps,
           "target": "positive,1.0,joy,excited"}
    batch = UniMSEDataCollator(tiny_processor(), use_word_timestamps=True)([row])
    assert batch["acoustic_features"][0, 7:11, 0].tolist() == [1.5, 1.5, 4.0, 7.0]


def test_collator_with_grammar_constrained_loss_adds_each_target_positions_grammar_candidates():
    from unimse_hf.data_collator import UniMSEDataCollator

    rows = [{"id": "a", "text": "it was good", "target": "positive,1.5,joy,excited"},
            {"id": "b", "text": "it was bad", "target": "negative,-2.25,anger,frustrated"}]
    plain = UniMSEDataCollator(tiny_processor())(rows)
    batch = UniMSEDataCollator(tiny_processor(), grammar_constrained_loss=True)(rows)
    assert "label_candidate_ids" not in plain
    expected = tiny_processor().label_constraint().label_candidate_ids(batch["labels"])
    assert torch.equal(batch["label_candidate_ids"], expected)
    kept = batch["labels"] != -100
    assert (batch["label_candidate_ids"] == batch["labels"].unsqueeze(-1)).any(-1)[kept].all()
