# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Specification of unimse_hf.label_grammar: the label automaton, the logits processor built from the real
T5 vocabulary, and constrained generation with an untrained tiny T5."""

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import LogitsProcessorList, T5Config, T5ForConditionalGeneration, T5Tokenizer

from unimse_hf.label_grammar import UniversalLabelGrammar, UniversalLabelLogitsProcessor
from unimse_hf.labels import IEMOCAP_EMOTIONS, MELD_EMOTIONS, POLARITIES, parse_universal_label

T5_DIR = Path(__file__).resolve().parents[1] / "data" / "t5"
DECODER_START = 0  # T5 starts decoding with the pad id
EOS = 1
PAD = 0


@pytest.fixture(scope="module")
def tokenizer() -> T5Tokenizer:
    return T5Tokenizer.from_pretrained(T5_DIR)


@pytest.fixture(scope="module")
def processor(tokenizer) -> UniversalLabelLogitsProcessor:
    return UniversalLabelLogitsProcessor(tokenizer)


@pytest.fixture(scope="module")
def tiny_t5() -> T5ForConditionalGeneration:
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=32128, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
        decoder_start_token_id=DECODER_START, pad_token_id=PAD, eos_token_id=EOS,
    )  # fmt: skip
    return T5ForConditionalGeneration(config).eval()


@pytest.fixture(scope="module")
def encoder_inputs() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(3, 32000, (4, 10), generator=generator)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


def label_ids(tokenizer: T5Tokenizer, text: str) -> list[int]:
    """Decoder ids of `text` as the model generates them: start token, pieces, EOS."""
    return [DECODER_START] + tokenizer(text).input_ids


# ---------------------------------------------------------------- the character automaton


@pytest.mark.parametrize(
    "label",
    [
        "positive,1.0,joy,excited",
        "negative,-0.6667,anger,sadness",
        "neutral,0,neutral,neutral",
        "positive,3,surprise,frustrated",
        "negative,-3.0000,disgust,anger",
        "neutral,-0,fear,joy",
        "\u2581positive,2.9999,sadness,sadness",
    ],
)
def test_grammar_accepts_canonical_labels(label):
    assert UniversalLabelGrammar().accepts(label)


@pytest.mark.parametrize(
    "label",
    [
        "positive,3.01,joy,excited",  # above 3
        "negative,-4,anger,sadness",  # below -3
        "positive,0.12345,joy,joy",  # five decimals
        "positive,+1,joy,joy",
        "positive,.5,joy,joy",
        "positive,1.,joy,joy",
        "positive,12,joy,joy",
        "Positive,1.0,joy,joy",  # upper case
        "positive,1.0,joy,hap",  # abbreviation
        "positive,-1.0,joy,joy",  # polarity contradicts the score
        "negative,0.5,anger,anger",
        "neutral,0.5,neutral,neutral",
        "positive,0.000,joy,joy",  # positive needs a non-zero score
        "negative,-0,anger,anger",
        "positive,1.0,excited,joy",  # IEMOCAP emotion in the MELD slot
        "positive, 1.0,joy,joy",  # inner space
        "\u2581\u2581positive,1.0,joy,joy",  # two word starts
        "positive,1.0,joy",  # missing slot
        "positive,1.0,joy,joy,",  # trailing separator
    ],
)
def test_grammar_rejects_non_canonical_or_out_of_range_labels(label):
    assert not UniversalLabelGrammar().accepts(label)


@pytest.mark.parametrize(
    ("prefix", "viable"),
    [
        ("", True),
        ("\u2581", True),
        ("neu", True),
        ("neutral,", True),
        ("neutral,-", True),
        ("neutral,0.0", True),
        ("neutral,2", False),
        ("positive,2.", True),
        ("positive,3.000", True),
        ("positive,3.1", False),
        ("positive,-", False),
        ("positive,0.00", True),
        ("positive,0.000,", False),
        ("negative,-0.000", True),
        ("negative,1", False),
        ("positive,2.5,sur", True),
        ("positive,2.5,surprise,", True),
        ("positive,2.5,surprise,excite", True),
        ("neutral,,", False),
        ("negative,-,", False),
        ("positive,2.,", False),
        ("x", False),
    ],
)
def test_grammar_tells_viable_prefixes(prefix, viable):
    assert UniversalLabelGrammar().is_viable_prefix(prefix) is viable


def test_grammar_with_more_decimals_accepts_official_float_strings():
    label = "negative,-0.6666666865348816,anger,sadness"
    assert UniversalLabelGrammar(score_decimals=16).accepts(label)
    assert not UniversalLabelGrammar(score_decimals=4).accepts(label)


def test_grammar_without_decimals_accepts_only_integer_scores():
    grammar = UniversalLabelGrammar(score_decimals=0)
    assert grammar.accepts("positive,2,joy,joy") and not grammar.is_viable_prefix("positive,2.")
    assert grammar.accepts("neutral,0,joy,joy") and not grammar.is_viable_prefix("positive,0")


def test_grammar_max_label_length_is_the_longest_label():
    # "▁" + "negative" + "," + "-2.9999" + "," + "surprise" + "," + "frustrated"
    assert UniversalLabelGrammar().max_label_length() == 1 + 8 + 1 + 7 + 1 + 8 + 1 + 10


@pytest.mark.parametrize("score_decimals", [-1, 2.0, True])
def test_grammar_rejects_invalid_score_decimals(score_decimals):
    with pytest.raises(ValueError, match="`score_decimals` must be an int >= 0"):
        UniversalLabelGrammar(score_decimals)


FRAGMENTS = ["positive", "negative", "neutral", "neu", "joy", "anger", "fear", "excited", "frustrated", "sadness"]
FRAGMENTS += [",", "-", ".", "+", "0", "1", "2", "3", "4", "9", "00", "\u2581", " "]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
def test_grammar_accepts_only_text_the_parser_reads_as_a_bounded_label(text):
    if UniversalLabelGrammar().accepts(text):
        parsed = parse_universal_label(text)
        assert parsed.valid and -3 <= parsed.score <= 3
        assert len(text.split(",")[1].partition(".")[2]) <= 4


@st.composite
def valid_labels(draw: st.DrawFn, score_decimals: int = 4) -> str:
    """Canonical labels: any emotions, a score in [-3, 3] with at most `score_decimals` decimals, its polarity."""
    integer = draw(st.integers(0, 3))
    if integer == 3:
        fraction = "0" * draw(st.integers(0, score_decimals))
    else:
        fraction = draw(st.text("0123456789", max_size=score_decimals))
    sign = draw(st.sampled_from(["", "-"]))
    score = sign + str(integer) + ("." + fraction if fraction else "")
    polarity = "neutral" if float(score) == 0 else "negative" if sign else "positive"
    slots = [polarity, score, draw(st.sampled_from(MELD_EMOTIONS)), draw(st.sampled_from(IEMOCAP_EMOTIONS))]
    return ",".join(slots)


# ---------------------------------------------------------------- the processor on the T5 vocabulary


def allowed_pieces(processor, tokenizer, ids) -> set[str]:
    return set(tokenizer.convert_ids_to_tokens(processor.allowed_token_ids(ids)))


def test_processor_allows_only_polarity_pieces_and_a_word_start_first(processor, tokenizer):
    pieces = allowed_pieces(processor, tokenizer, [DECODER_START])
    assert {"\u2581positive", "\u2581negative", "\u2581neutral", "\u2581"} <= pieces
    assert "\u2581the" not in pieces and "</s>" not in pieces
    assert all(processor.grammar.is_viable_prefix(piece) for piece in pieces)


def test_processor_allows_score_pieces_after_the_polarity(processor, tokenizer):
    pieces = allowed_pieces(processor, tokenizer, label_ids(tokenizer, "positive,")[:-1])
    assert {"1.0", "0.6", "3", "3.000"} <= pieces
    assert not {"4", "\u25811", ",", "</s>", "3.5", "-", "-3"} & pieces
    assert {"-", "-3"} <= allowed_pieces(processor, tokenizer, label_ids(tokenizer, "negative,")[:-1])


def test_processor_allows_pieces_that_cross_a_separator(processor, tokenizer):
    # T5 tokenizes "...816,anger" with the piece "6,": digit and separator in one token.
    prefix = label_ids(tokenizer, "negative,-0.66")[:-1]
    assert {"6,", "6"} <= allowed_pieces(processor, tokenizer, prefix)


def test_processor_allows_only_eos_after_a_complete_label(processor, tokenizer):
    prefix = label_ids(tokenizer, "positive,1.0,joy,excited")[:-1]
    assert processor.allowed_token_ids(prefix) == [EOS]


def test_processor_allows_only_pad_or_eos_after_eos(processor, tokenizer):
    finished = label_ids(tokenizer, "positive,1.0,joy,excited") + [PAD, PAD]
    assert sorted(processor.allowed_token_ids(finished)) == sorted({PAD, EOS})


def test_processor_ends_a_row_that_left_the_grammar(processor, tokenizer):
    assert processor.allowed_token_ids([DECODER_START] + tokenizer("the").input_ids[:-1]) == [EOS]


def test_processor_keeps_allowed_scores_and_sets_all_others_to_minus_infinity(processor, tokenizer):
    prefix = torch.tensor([label_ids(tokenizer, "positive,1.0,jo")[:-1]])
    scores = torch.randn(1, 32128)
    constrained = processor(prefix, scores)
    allowed = processor.allowed_token_ids(prefix[0])
    assert torch.equal(constrained[0, allowed], scores[0, allowed])
    assert torch.isinf(constrained).sum() == 32128 - len(allowed)
    assert torch.isinf(constrained[0, 32100:]).all()  # the model's padding columns past the tokenizer


def test_processor_tracks_each_row_of_a_batch_separately(processor, tokenizer):
    pieces = {
        "finished": ["\u2581neutral", ",", "0", ",", "jo", "y", ",", "jo", "y", "</s>"],
        "left the grammar": ["\u2581neutral", ",", "\u2581the", "\u2581the", "\u2581the", "y", ",", "jo", "y", ","],
        "after a MELD word": ["\u2581positive", ",", "2", ".", "5", ",", "f", "e", "a", "r"],
    }
    rows = torch.tensor([[DECODER_START] + tokenizer.convert_tokens_to_ids(row) for row in pieces.values()])
    constrained = processor(rows, torch.zeros(3, 32128))
    finite = [set(torch.isfinite(row).nonzero().flatten().tolist()) for row in constrained]
    assert finite[0] == {PAD, EOS}
    assert finite[1] == {EOS}
    assert finite[2] == set(processor.allowed_token_ids(rows[2])) and tokenizer.convert_tokens_to_ids(",") in finite[2]


def grammar_states(processor, tokenizer, rows: torch.Tensor) -> torch.Tensor:
    """The automaton state of each row (no EOS), walked character by character over its pieces."""
    texts = ["".join(tokenizer.convert_ids_to_tokens(row[1:].tolist())) for row in rows]
    return torch.tensor([processor.grammar.walk(processor.grammar.initial_state, text) for text in texts])


TWO_LABELS = ["positive,1.0,joy,excited", "neutral,0.0,neutral,neutral"]


def test_processor_states_after_one_more_id_equal_the_automaton_states(processor, tokenizer):
    rows = torch.tensor([label_ids(tokenizer, label)[:9] for label in TWO_LABELS])
    for length in range(1, rows.shape[1] + 1):  # each call extends the previous one by one id, as greedy search does
        assert torch.equal(processor.states(rows[:, :length]), grammar_states(processor, tokenizer, rows[:, :length]))


def test_processor_states_after_rows_are_reordered_equal_the_automaton_states(processor, tokenizer):
    rows = torch.tensor([label_ids(tokenizer, label)[:6] for label in TWO_LABELS])
    processor.states(rows[:, :5])
    reordered = torch.cat([rows[[1, 0], :5], rows[:, 5:]], dim=1)  # as beam search reorders beams
    assert torch.equal(processor.states(reordered), grammar_states(processor, tokenizer, reordered))


def test_processor_rejects_scores_with_another_number_of_rows(processor):
    with pytest.raises(ValueError, match="`input_ids` has 2 rows but `scores` has 1"):
        processor(torch.zeros(2, 1, dtype=torch.long), torch.zeros(1, 32128))


def test_processor_max_label_tokens_is_the_longest_label_plus_eos(processor):
    assert processor.max_label_tokens == processor.grammar.max_label_length() + 1 == 38


@settings(max_examples=100, deadline=None)
@given(valid_labels())
def test_processor_accepts_the_tokenization_of_every_valid_label_step_by_step(label):
    tokenizer, processor = _shared_tokenizer_and_processor()
    ids = label_ids(tokenizer, label)
    assert tokenizer.decode(ids, skip_special_tokens=True) == label
    for position in range(1, len(ids)):
        scores = processor(torch.tensor([ids[:position]]), torch.zeros(1, 32128))
        assert torch.isfinite(scores[0, ids[position]]), (label, tokenizer.convert_ids_to_tokens(ids[1 : position + 1]))


@settings(max_examples=100, deadline=None)
@given(valid_labels(), st.data())
def test_processor_accepts_every_segmentation_of_a_valid_label_into_vocabulary_pieces(label, data):
    tokenizer, processor = _shared_tokenizer_and_processor()
    vocabulary = _SHARED["vocabulary"]
    text = data.draw(st.sampled_from(["", "\u2581"])) + label
    ids = [DECODER_START]
    while text:
        candidates = [text[:end] for end in range(1, len(text) + 1) if text[:end] in vocabulary]
        piece = data.draw(st.sampled_from(candidates))
        assert vocabulary[piece] in processor.allowed_token_ids(ids), (label, piece)
        ids.append(vocabulary[piece])
        text = text[len(piece) :]
    assert EOS in processor.allowed_token_ids(ids)
    assert tokenizer.decode(ids, skip_special_tokens=True) == label


_SHARED: dict[str, object] = {}


def _shared_tokenizer_and_processor() -> tuple[T5Tokenizer, UniversalLabelLogitsProcessor]:
    """A tokenizer, processor and vocabulary built once for the hypothesis tests (which take no fixtures)."""
    if not _SHARED:
        _SHARED["tokenizer"] = T5Tokenizer.from_pretrained(T5_DIR)
        _SHARED["processor"] = UniversalLabelLogitsProcessor(_SHARED["tokenizer"])
        _SHARED["vocabulary"] = _SHARED["tokenizer"].get_vocab()
    return _SHARED["tokenizer"], _SHARED["processor"]


# ---------------------------------------------------------------- constrained generation with an untrained model


def generate_texts(model, tokenizer, encoder_inputs, max_new_tokens, **kwargs) -> list[str]:
    with torch.no_grad():
        output = model.generate(**encoder_inputs, max_new_tokens=max_new_tokens, do_sample=False, **kwargs)
    return tokenizer.batch_decode(output, skip_special_tokens=True)


def test_greedy_generation_with_the_processor_yields_valid_labels(tiny_t5, tokenizer, encoder_inputs, processor):
    texts = generate_texts(
        tiny_t5, tokenizer, encoder_inputs, processor.max_label_tokens, logits_processor=LogitsProcessorList([processor])
    )
    assert all(parse_universal_label(text).valid and processor.grammar.accepts(text) for text in texts), texts


def test_beam_search_with_the_processor_yields_valid_labels(tiny_t5, tokenizer, encoder_inputs, processor):
    texts = generate_texts(
        tiny_t5, tokenizer, encoder_inputs, processor.max_label_tokens,
        logits_processor=LogitsProcessorList([processor]), num_beams=4, num_return_sequences=2,
    )  # fmt: skip
    assert len(texts) == 8
    assert all(parse_universal_label(text).valid and processor.grammar.accepts(text) for text in texts), texts


def test_generation_without_the_processor_yields_invalid_text(tiny_t5, tokenizer, encoder_inputs, processor):
    for num_beams in (1, 4):
        texts = generate_texts(tiny_t5, tokenizer, encoder_inputs, processor.max_label_tokens, num_beams=num_beams)
        assert not any(parse_universal_label(text).valid for text in texts), texts


def test_prefix_allowed_tokens_fn_constrains_generation_like_the_processor(tiny_t5, tokenizer, encoder_inputs, processor):
    two_rows = {name: tensor[:2] for name, tensor in encoder_inputs.items()}
    with_processor = generate_texts(
        tiny_t5, tokenizer, two_rows, processor.max_label_tokens, logits_processor=LogitsProcessorList([processor])
    )
    with_callback = generate_texts(
        tiny_t5, tokenizer, two_rows, processor.max_label_tokens, prefix_allowed_tokens_fn=processor.prefix_allowed_tokens_fn
    )
    assert with_callback == with_processor


def test_generated_scores_respect_the_decimal_limit(tiny_t5, tokenizer, encoder_inputs):
    one_decimal = UniversalLabelLogitsProcessor(tokenizer, score_decimals=1)
    texts = generate_texts(
        tiny_t5, tokenizer, encoder_inputs, one_decimal.max_label_tokens, logits_processor=LogitsProcessorList([one_decimal])
    )
    assert all(len(text.split(",")[1].partition(".")[2]) <= 1 for text in texts), texts
    assert all(parse_universal_label(text).valid for text in texts), texts


# ---------------------------------------------------------------- candidates for the grammar-constrained loss


def teacher_forced_labels(tokenizer: T5Tokenizer, texts: list[str]) -> torch.Tensor:
    """Target ids as the collator builds them: pieces and EOS, -100 after."""
    labels = tokenizer(texts, padding=True, return_tensors="pt").input_ids
    return labels.masked_fill(labels == PAD, -100)


def test_label_candidates_are_the_ids_the_processor_allows_after_each_prefix(processor, tokenizer):
    texts = ["positive,1.8,joy,excited", "negative,-0.25,anger,frustrated", "neutral,0,neutral,neutral"]
    labels = teacher_forced_labels(tokenizer, texts)
    candidates = processor.label_candidate_ids(labels)
    assert candidates.shape[:2] == labels.shape
    for row, text in enumerate(texts):
        ids = label_ids(tokenizer, text)
        for position in range(len(ids) - 1):
            expected = sorted(processor.allowed_token_ids(ids[:position + 1]))
            got = sorted(int(i) for i in candidates[row, position] if i >= 0)
            assert got == expected, (text, position)
            assert ids[position + 1] in got


def test_label_candidates_of_ignored_positions_are_the_pad_id_alone(processor, tokenizer):
    labels = teacher_forced_labels(tokenizer, ["negative,-0.25,anger,frustrated", "neutral,0,neutral,neutral"])
    candidates = processor.label_candidate_ids(labels)
    ignored = candidates[labels == -100]
    assert ignored.shape[0] > 0
    assert (ignored[:, 0] == PAD).all() and (ignored[:, 1:] == -1).all()


def test_label_candidates_reject_a_target_the_grammar_does_not_accept_naming_row_and_position(processor, tokenizer):
    labels = teacher_forced_labels(tokenizer, ["positive,1.8,joy,excited", "positive,1.8,joy,excited"])
    labels[1, 2] = tokenizer.convert_tokens_to_ids("\u2581positive")
    with pytest.raises(ValueError, match=r"row 1, position 2: token id \d+ is not allowed"):
        processor.label_candidate_ids(labels)
