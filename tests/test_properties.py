"""Property tests: the label codec round-trips, the parser never raises, the feature extractor is consistent."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from unimse_hf.feature_extraction_unimse import UniMSEFeatureExtractor
from unimse_hf.labels import (IEMOCAP_EMOTIONS, MELD_EMOTIONS, POLARITIES, UniversalLabel, format_universal_label,
                              parse_universal_label)

labels = st.builds(
    UniversalLabel,
    polarity=st.sampled_from(POLARITIES),
    score=st.floats(min_value=-3, max_value=3, allow_nan=False, allow_infinity=False),
    meld_emotion=st.sampled_from(MELD_EMOTIONS),
    iemocap_emotion=st.sampled_from(IEMOCAP_EMOTIONS),
)


@given(labels)
def test_parse_of_format_is_the_label(label):
    assert parse_universal_label(format_universal_label(label)).to_label() == label


@given(labels, st.integers(min_value=0, max_value=6))
def test_rounded_scores_round_trip_to_the_rounded_value(label, decimals):
    parsed = parse_universal_label(format_universal_label(label, score_decimals=decimals))
    assert parsed.valid and math.isclose(parsed.score, round(label.score, decimals), abs_tol=10 ** -decimals)


@given(st.one_of(st.text(), st.binary(), st.none(), st.integers(), st.floats()))
def test_parser_never_raises_and_reports_validity(text):
    parsed = parse_universal_label(text)
    assert isinstance(parsed.valid, bool)
    assert isinstance(parsed.score_or_default, float)


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
