"""alignment_unimse: the vectorised word-to-token alignment against plain loops, and the ways timestamps are read."""

import numpy as np
import pytest

from unimse_hf.alignment_unimse import WordLayout, align_to_tokens, range_sums


def loop_token_features(samples, layout, rate, dim, padding_value):
    """Per token, the float64 mean of the frames whose centre lies in its word's span, by plain loops."""
    batch, tokens = layout.token_words.shape
    features = np.full((batch, tokens, dim), padding_value, dtype=np.float64)
    mask = np.zeros((batch, tokens), dtype=np.int64)
    for i in range(batch):
        frames = samples[i]
        for t in range(tokens):
            word = layout.token_words[i, t]
            if word < 0 or frames is None or len(frames) == 0:
                continue
            scale = len(frames) if layout.proportional[word] else rate
            start, end = layout.spans[word] * scale
            inside = [f for f in range(len(frames)) if start <= f + 0.5 < end]
            if not inside:  # no frame centre in the span: the frame nearest its midpoint
                inside = [min(max(int(np.floor((start + end) / 2)), 0), len(frames) - 1)]
            features[i, t] = frames[inside].astype(np.float64).mean(axis=0)
            mask[i, t] = 1
    return features, mask


def test_token_features_equal_a_per_word_loop_on_a_mixed_batch():
    rng = np.random.default_rng(7)
    words = [["w"] * n for n in (5, 3, 4, 6)]
    # Sample 0: gaps between words and a word between two frame centres; 1: no frames; 2: no timestamps
    # (spread by length); 3: back-to-back words, the last ending a little past the clip.
    stamps = [[(0.01, 0.05), (0.08, 0.081), (0.1, 0.2), (0.2, 0.21), (0.3, 0.33)], [(0.0, 0.1)] * 3, None,
              [(0.0, 0.02), (0.02, 0.05), (0.05, 0.1), (0.1, 0.15), (0.15, 0.2), (0.2, 0.42)]]
    token_ids = np.array([[-1, 0, 1, 1, 2, 3, 4, -1], [-1, 0, 1, 2, -1, -1, -1, -1],
                          [-1, 0, 0, 1, 2, 3, -1, -1], [-1, 0, 1, 2, 3, 4, 5, 5]])
    layout = WordLayout(token_ids, stamps, words)
    samples = [rng.standard_normal((34, 8)).astype(np.float32), None,
               rng.standard_normal((13, 8)).astype(np.float32), rng.standard_normal((40, 8)).astype(np.float32)]
    features, mask, finite = align_to_tokens(samples, layout, 100.0, 8, -1.0, "acoustic")
    expected, expected_mask = loop_token_features(samples, layout, 100.0, 8, -1.0)
    assert finite and features.dtype == np.float32
    np.testing.assert_array_equal(mask, expected_mask)
    np.testing.assert_allclose(features, expected, rtol=1e-6, atol=1e-6)


PLAIN = [[(0.0, 0.1), (0.1, 0.25), (0.3, 0.5)], [(0.0, 0.2), (0.25, 1.0), (1.0, 1.5)]]


@pytest.mark.parametrize("form", [
    pytest.param([[list(pair) for pair in sample] for sample in PLAIN], id="lists of lists"),
    pytest.param([tuple(sample) for sample in PLAIN], id="tuples of tuples"),
    pytest.param([np.array(sample) for sample in PLAIN], id="one array per sample"),
    pytest.param([[(np.float32(s), np.float64(e)) for s, e in sample] for sample in PLAIN], id="numpy scalars"),
    pytest.param([[{"word": "w", "start": s, "end": e} for s, e in sample] for sample in PLAIN], id="mappings"),
])
def test_every_accepted_form_of_timestamps_reads_like_pairs_of_floats(form):
    token_ids = [[0, 1, 2], [0, 1, 2]]
    expected = WordLayout(token_ids, PLAIN, [["a", "b", "c"]] * 2).spans
    np.testing.assert_allclose(WordLayout(token_ids, form, [["a", "b", "c"]] * 2).spans, expected, rtol=1e-6)


def test_integer_seconds_read_like_floats():
    layout = WordLayout([[0, 1]], [[(0, 1), (1, 2.5)]], [["a", "b"]])
    assert layout.spans.dtype == np.float64 and layout.spans.tolist() == [[0.0, 1.0], [1.0, 2.5]]


@pytest.mark.parametrize("low, high", [([1, 4], [3, 7]), ([1, 2], [5, 4])], ids=["disjoint ranges", "overlapping ranges"])
def test_range_sums_equal_a_loop_and_flag_a_non_finite_frame_inside_or_outside_the_ranges(low, high):
    rng = np.random.default_rng(3)
    clips = [rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((4, 4)).astype(np.float32)]
    frames = np.concatenate(clips)
    low, high = np.array(low), np.array(high)
    sums, finite = range_sums(clips, low, high)
    assert finite
    np.testing.assert_allclose(sums, [frames[a:b].sum(axis=0) for a, b in zip(low, high)], rtol=1e-6, atol=1e-6)
    for frame in (0, 2, 8):  # before the first range, inside one, after the last
        for value in (np.nan, np.inf, -np.inf):
            broken = [clip.copy() for clip in clips]
            broken[frame // 5][frame % 5, 1] = value
            assert not range_sums(broken, low, high)[1], (frame, value)
