"""Property tests: the label codec round-trips, the parser never raises, the feature extractor is consistent."""

import math

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from unimse_hf.feature_extraction_unimse import UniMSEFeatureExtractor
from unimse_hf.labels import (IEMOCAP_EMOTIONS, MELD_EMOTIONS, UniversalLabel, format_universal_label,
                              parse_universal_label, polarity_of_score)
from unimse_testing import tiny_processor

labels = st.builds(
    lambda score, meld, iemocap: UniversalLabel(polarity_of_score(score), score, meld, iemocap),
    st.floats(min_value=-3, max_value=3, allow_nan=False, allow_infinity=False),
    st.sampled_from(MELD_EMOTIONS),
    st.sampled_from(IEMOCAP_EMOTIONS),
)


@given(labels)
def test_parse_of_format_is_the_label(label):
    assert parse_universal_label(format_universal_label(label)).to_label() == label


@given(labels, st.integers(min_value=0, max_value=6))
def test_rounded_scores_round_trip_to_the_rounded_value(label, decimals):
    assume(label.score == 0 or round(label.score, decimals) != 0)  # a non-zero score rounded to 0 loses its polarity
    parsed = parse_universal_label(format_universal_label(label, score_decimals=decimals))
    assert parsed.valid and math.isclose(parsed.score, round(label.score, decimals), abs_tol=10 ** -decimals)


@given(st.one_of(st.text(), st.binary(), st.none(), st.integers(), st.floats()))
def test_parser_never_raises_and_reports_validity(text):
    parsed = parse_universal_label(text)
    assert isinstance(parsed.valid, bool)
    assert isinstance(parsed.score_or_default, float)


LABEL_FRAGMENTS = ["positive", "negative", "neutral", "POSITIVE", "joy", "anger", "exc", "sad", "frustrated", ",",
                   " , ", "-", ".", "0", "1", "2.5", "3", "4", "1e-3", "nan", "inf", "\u0661", "\u00b2", "+"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(LABEL_FRAGMENTS), max_size=10).map("".join))
def test_the_processor_encodes_a_label_string_exactly_when_the_parser_reads_it_as_valid(text):
    processor = tiny_processor()
    try:
        target = processor.format_label(text)
    except ValueError:
        assert not parse_universal_label(text).valid
        return
    assert parse_universal_label(text).valid
    assert parse_universal_label(target).to_label() == UniversalLabel(
        *[getattr(parse_universal_label(text), slot) if slot != "score" else float(target.split(",")[1])
          for slot in ("polarity", "score", "meld_emotion", "iemocap_emotion")])
    assert processor.label_constraint().grammar.accepts(target)


EXTRACTOR = UniMSEFeatureExtractor(acoustic_dim=3, visual_dim=2)


@settings(max_examples=60, deadline=None)
@given(st.lists(arrays(np.float64, st.tuples(st.integers(0, 6), st.integers(1, 4)),
                       elements=st.floats(allow_nan=True, allow_infinity=True, width=32)), min_size=1, max_size=4))
def test_feature_extractor_returns_consistent_shapes_or_raises_value_error(samples):
    try:
        batch = EXTRACTOR(acoustic=samples)
    except ValueError as error:
        assert "acoustic" in str(error)
        return
    features, mask = batch["acoustic_features"], batch["acoustic_attention_mask"]
    assert features.shape[:2] == mask.shape and features.shape[0] == len(samples) and features.shape[2] == 3
    assert mask.sum(axis=1).tolist() == [len(s) for s in samples]
    assert np.isfinite(features).all()
