"""Bad input to the processor, the feature extractor, the collator and label encoding: each case raises the
named error type, the message names the argument (and the sample index or row id), and nothing is changed."""

import copy
import json
import re

import numpy as np
import pytest

from unimse_hf import UniMSEProcessor, UniversalLabel
from unimse_hf.data_collator import UniMSEDataCollator
from unimse_hf.feature_extraction_unimse import UniMSEFeatureExtractor
from unimse_testing import TINY, tiny_processor

A_DIM, V_DIM = TINY["acoustic_dim"], TINY["visual_dim"]


def frames(count: int, dim: int = A_DIM) -> np.ndarray:
    return np.zeros((count, dim), dtype=np.float32)


THREE_WORDS = "it was good"
GOOD_STAMPS = [(0.0, 0.1), (0.1, 0.2), (0.2, 0.3)]

# (case id, processor kwargs, error type, text the message must contain: argument [and sample index])
PROCESSOR_CASES = [
    ("timestamps in milliseconds", dict(text=THREE_WORDS, acoustic=[frames(30)],
                                        word_timestamps=[[(0, 100), (100, 200), (200, 300)]]),
     ValueError, "`word_timestamps[0]` word 0 ('it') ends at 100 s"),
    ("second sample past its clip", dict(text=["yes", THREE_WORDS], acoustic=[frames(30), frames(30)],
                                         word_timestamps=[[(0.0, 0.1)], [(0.0, 0.1), (0.1, 0.2), (0.2, 9.0)]]),
     ValueError, "`word_timestamps[1]` word 2 ('good')"),
    ("visual clip shorter than the words", dict(text=THREE_WORDS, visual=[frames(3, V_DIM)], word_timestamps=[[(0, 1), (1, 2), (2, 3)]]),
     ValueError, "past the end of the visual clip"),
    ("triples", dict(text=THREE_WORDS, acoustic=[frames(30)],
                     word_timestamps=[[("it", 0.0, 0.1), ("was", 0.1, 0.2), ("good", 0.2, 0.3)]]),
     ValueError, "`word_timestamps[0]` must hold one (start, end) pair per word, got shape (3, 3)"),
    ("numeric triples", dict(text=THREE_WORDS, acoustic=[frames(30)], word_timestamps=[[(0, 0.0, 0.1)] * 3]),
     ValueError, "`word_timestamps[0]` must hold one (start, end) pair"),
    ("pairs of different lengths", dict(text=THREE_WORDS, acoustic=[frames(30)], word_timestamps=[[(0.0, 0.1), (0.1,), (0.2, 0.3)]]),
     ValueError, "`word_timestamps[0]`"),
    ("mapping without end", dict(text=THREE_WORDS, acoustic=[frames(30)],
                                 word_timestamps=[[{"start": 0.0, "end": 0.1}, {"start": 0.1}, {"start": 0.2, "end": 0.3}]]),
     ValueError, "`word_timestamps[0][1]` is a mapping without 'start' and 'end'"),
    ("mappings mixed with pairs", dict(text=THREE_WORDS, acoustic=[frames(30)],
                                       word_timestamps=[[{"start": 0.0, "end": 0.1}, (0.1, 0.2), (0.2, 0.3)]]),
     TypeError, "`word_timestamps[0]` mixes mappings and pairs"),
    ("string seconds", dict(text=THREE_WORDS, acoustic=[frames(30)], word_timestamps=[[("0", "0.1")] * 3]),
     TypeError, "`word_timestamps[0]` must hold real numbers"),
    ("complex seconds", dict(text=THREE_WORDS, acoustic=[frames(30)], word_timestamps=[[(0j, 0.1)] * 3]),
     TypeError, "`word_timestamps[0]` must hold real numbers"),
    ("timestamps as a dict", dict(text=THREE_WORDS, acoustic=[frames(30)], word_timestamps={"start": 0, "end": 1}),
     TypeError, "`word_timestamps` must be a list"),
    ("a sample that is a string", dict(text=["a", "b"], acoustic=[frames(30)] * 2, word_timestamps=["0-1", None]),
     TypeError, "`word_timestamps[0]` must be a list"),
    ("one timestamp too few", dict(text=["yes", THREE_WORDS], acoustic=[frames(30)] * 2,
                                   word_timestamps=[[(0.0, 0.1)], GOOD_STAMPS[:2]]),
     ValueError, "`word_timestamps[1]` has 2 spans but `text[1]` has 3 words"),
    ("one timestamp too many", dict(text=THREE_WORDS, acoustic=[frames(30)], word_timestamps=[GOOD_STAMPS + [(0.3, 0.4)]]),
     ValueError, "`word_timestamps[0]` has 4 spans but `text[0]` has 3 words"),
    ("NaN timestamp", dict(text=THREE_WORDS, acoustic=[frames(30)], word_timestamps=[[(0.0, 0.1), (0.1, float("nan")), (0.2, 0.3)]]),
     ValueError, "`word_timestamps[0]` word 1 ('was') is NaN"),
    ("timestamps without frames", dict(text=THREE_WORDS, word_timestamps=[GOOD_STAMPS]), ValueError, "`word_timestamps`"),
    ("timestamps for another batch size", dict(text=["a", "b"], acoustic=[frames(30)] * 2, word_timestamps=[[(0, 0.1)]] * 3),
     ValueError, "`word_timestamps` has 3 samples"),
    ("NaN in a frame no word covers", dict(text=["yes", "it was"], acoustic=[frames(30), np.where(np.arange(30)[:, None] == 25, np.nan, frames(30))],
                                            word_timestamps=[[(0.0, 0.1)], [(0.0, 0.05), (0.05, 0.1)]]),
     ValueError, "`acoustic[1]` contains NaN or infinite values"),
    ("zero-width text", dict(text="\u200b\u200c\u2060"), ValueError, "`text[0]` is empty"),
    ("byte-order mark and spaces", dict(text=["fine", " \ufeff \u200b "]), ValueError, "`text[1]` is empty"),
    ("text as a dict", dict(text={"text": "it was good"}), TypeError, "`text` must be a string or a list of strings"),
    ("text as a set", dict(text={"it was good"}), TypeError, "`text` must be a string or a list of strings"),
    ("text entry is bytes", dict(text=["ok", b"it was good"]), TypeError, "`text[1]` must be a string"),
    ("complex acoustic", dict(text="hi", acoustic=[frames(3).astype(np.complex64) + 1j]), TypeError, "`acoustic[0]` must hold real numbers"),
    ("complex visual in a 3-D array", dict(text=["a", "b"], visual=np.ones((2, 3, V_DIM), dtype=np.complex128)),
     TypeError, "`visual[0]` must hold real numbers"),
    ("string frames", dict(text="hi", acoustic=[np.full((2, A_DIM), "x")]), TypeError, "`acoustic[0]` must hold real numbers"),
    ("max_length zero", dict(text="hi", max_length=0), ValueError, "`max_length` must be a positive integer, got 0"),
    ("max_length negative", dict(text="hi", max_length=-5), ValueError, "`max_length` must be a positive integer, got -5"),
    ("max_length float", dict(text="hi", max_length=12.5), ValueError, "`max_length` must be a positive integer"),
    ("max_length bool", dict(text="hi", max_length=True), ValueError, "`max_length` must be a positive integer"),
    ("label with an Arabic-Indic digit", dict(text="hi", labels=["positive,\u0661.0,joy,excited"]),
     ValueError, "`labels[0]` = 'positive,\u0661.0,joy,excited'"),
    ("label score above 3", dict(text=["a", "b"], labels=["positive,1.0,joy,joy", "positive,3.5,joy,joy"]),
     ValueError, "`labels[1]` = 'positive,3.5,joy,joy' is not a universal label"),
    ("label score below -3", dict(text="hi", labels=["negative,-7,anger,anger"]), ValueError, "outside [-3, 3]"),
    ("polarity contradicts a negative score", dict(text="hi", labels=["positive,-1.0,joy,excited"]),
     ValueError, "`labels[0]` = 'positive,-1.0,joy,excited' is not a universal label 'polarity,score,meld,iemocap': polarity 'positive' contradicts"),
    ("neutral with a non-zero score", dict(text="hi", labels=["neutral,0.5,neutral,neutral"]), ValueError, "polarity 'neutral' contradicts"),
    ("NaN score", dict(text="hi", labels=["positive,nan,joy,joy"]), ValueError, "`labels[0]` = 'positive,nan,joy,joy'"),
    ("infinite score", dict(text="hi", labels=["positive,inf,joy,joy"]), ValueError, "`labels[0]` = 'positive,inf,joy,joy'"),
    ("five slots", dict(text="hi", labels=["positive,1.0,joy,joy,joy"]), ValueError, "`labels[0]`"),
    ("unknown emotion", dict(text="hi", labels=["positive,1.0,happy,joy"]), ValueError, "MELD emotion 'happy'"),
    ("UniversalLabel contradicting its score", dict(text="hi", labels=[UniversalLabel("negative", 2.0, "joy", "joy")]),
     ValueError, "`labels[0]`"),
    ("score rounding to 0 at the decimals", dict(text="hi", labels=["negative,-0.00001,anger,anger"]),
     ValueError, "`labels[0]`"),
    ("label that is a number", dict(text="hi", labels=[1.0]), TypeError, "`labels[0]` must be a string or a UniversalLabel"),
    ("labels as a dict", dict(text="hi", labels={"label": "positive,1.0,joy,joy"}), TypeError, "`labels` must be a label or a list"),
]


@pytest.mark.parametrize("kwargs, error, message", [case[1:] for case in PROCESSOR_CASES], ids=[case[0] for case in PROCESSOR_CASES])
def test_processor_refuses_bad_input_naming_the_argument_and_sample(kwargs, error, message):
    processor = tiny_processor()
    before = copy.deepcopy(processor.to_dict())
    with pytest.raises(error, match=re.escape(message)):
        processor(**kwargs)
    assert processor.to_dict() == before


def test_sample_errors_carry_the_sample_index():
    with pytest.raises(ValueError) as raised:
        tiny_processor()(text=["yes", THREE_WORDS], acoustic=[frames(30)] * 2, word_timestamps=[[(0.0, 0.1)], GOOD_STAMPS[:2]])
    assert raised.value.sample_index == 1


# ------------------------------------------------------------------ the feature extractor on its own

EXTRACTOR_CASES = [
    ("token ids need more words than timestamped", dict(acoustic=[frames(30)], token_word_ids=[[-1, 0, 1, 2]],
                                                        word_timestamps=[[(0.0, 0.1), (0.1, 0.2)]]),
     ValueError, "`word_timestamps[0]` has 2 spans but the tokens need 3 words"),
    ("timestamps without a frame rate", dict(acoustic=[frames(30)], token_word_ids=[[0]], word_timestamps=[[(0.0, 0.1)]]),
     ValueError, "`acoustic_frame_rate`"),
    ("complex frames", dict(acoustic=[np.ones((2, A_DIM), dtype=np.complex64)]), TypeError, "`acoustic[0]` must hold real numbers"),
    ("token ids that are floats", dict(acoustic=[frames(3)], token_word_ids=np.zeros((1, 2))), ValueError,
     "`token_word_ids` must be a 2-D integer array"),
]


@pytest.mark.parametrize("kwargs, error, message", [case[1:] for case in EXTRACTOR_CASES], ids=[case[0] for case in EXTRACTOR_CASES])
def test_feature_extractor_refuses_bad_input_naming_the_argument(kwargs, error, message):
    extractor = UniMSEFeatureExtractor(acoustic_dim=A_DIM, visual_dim=V_DIM)
    before = extractor.to_dict()
    with pytest.raises(error, match=re.escape(message)):
        extractor(**kwargs)
    assert extractor.to_dict() == before


# ------------------------------------------------------------------ the collator


def row(**changes):
    base = {"id": "mosi/train/clip_1", "text": THREE_WORDS, "context": None, "acoustic": frames(30), "visual": None,
            "word_timestamps": [{"word": w, "start": s, "end": e} for w, (s, e) in zip(THREE_WORDS.split(), GOOD_STAMPS)],
            "target": "positive,1.0,joy,excited"}
    return {**base, **changes}


COLLATOR_CASES = [
    ("timestamps that do not number the words", dict(word_timestamps=[{"word": "it", "start": 0.0, "end": 0.1}]),
     ValueError, "row 'mosi/train/bad' (batch position 1): `word_timestamps[1]` has 1 spans but `text[1]` has 3 words"),
    ("timestamps in milliseconds", dict(word_timestamps=[{"start": 100 * i, "end": 100 * i + 90} for i in range(3)]),
     ValueError, "row 'mosi/train/bad' (batch position 1): `word_timestamps[1]` word 0 ('it') ends at 90 s"),
    ("a late row with another feature width", dict(acoustic=frames(30, A_DIM + 1)),
     ValueError, "row 'mosi/train/bad' (batch position 1): `acoustic[1]` must have shape"),
    ("NaN frames", dict(acoustic=np.full((30, A_DIM), np.nan, dtype=np.float32)), ValueError, "row 'mosi/train/bad' (batch position 1)"),
    ("complex frames", dict(acoustic=frames(30).astype(np.complex64)), TypeError, "row 'mosi/train/bad' (batch position 1)"),
    ("frames that are not 2-D", dict(acoustic=np.zeros((2, 3, 4))), ValueError, "row 'mosi/train/bad': `acoustic`"),
    ("target with a contradicting polarity", dict(target="negative,2.0,joy,excited"), ValueError,
     "row 'mosi/train/bad' (batch position 1): `labels[1]`"),
    ("zero-width text", dict(text="\u200b"), ValueError, "row 'mosi/train/bad' (batch position 1): `text[1]` is empty"),
]


@pytest.mark.parametrize("change, error, message", [case[1:] for case in COLLATOR_CASES], ids=[case[0] for case in COLLATOR_CASES])
def test_collator_refuses_bad_rows_naming_the_row_id(change, error, message):
    rows = [row(), row(id="mosi/train/bad", **change)]
    before = copy.deepcopy(rows)
    with pytest.raises(error, match=re.escape(message)):
        UniMSEDataCollator(tiny_processor(), use_word_timestamps=True)(rows)
    assert all(a.keys() == b.keys() for a, b in zip(rows, before)) and rows[1]["id"] == "mosi/train/bad"


def test_collator_spreads_rows_that_read_context_without_their_timestamps():
    # An ERC row's timestamps describe its utterance, not the context the model reads: the documented exception.
    rows = [row(), row(id="meld/train/1", context="A: hello there. B: it was good", word_timestamps=row()["word_timestamps"][:1])]
    batch = UniMSEDataCollator(tiny_processor(), use_word_timestamps=True)(rows)
    assert batch["acoustic_attention_mask"][1].sum() > 0


# ------------------------------------------------------------------ processor_config.json at load


@pytest.mark.parametrize(
    "field, value",
    [("max_length", -1), ("max_length", 0), ("max_length", "512"), ("score_decimals", 9), ("score_decimals", None),
     ("score_decimals", 2.5)],
)
def test_a_bad_processor_config_fails_at_load_naming_the_field(tmp_path, field, value):
    tiny_processor().save_pretrained(tmp_path)
    path = tmp_path / "processor_config.json"
    config = json.loads(path.read_text())
    config[field] = value
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=f"`{field}`"):
        UniMSEProcessor.from_pretrained(tmp_path)
