"""`return_modality_contributions`: the prediction without each given modality, from one batched extra pass."""

import functools

import numpy as np
import pytest

from unimse_hf import PIPELINE_TASK, UniMSEPipeline
from unimse_testing import tiny_model, tiny_processor

RNG = np.random.default_rng(3)
BOTH = {"text": "the acting was wonderful but the plot was thin", "acoustic": RNG.standard_normal((25, 8)),
        "visual": RNG.standard_normal((8, 6))}
ACOUSTIC_ONLY = {"text": "i did not like it at all", "acoustic": RNG.standard_normal((14, 8))}
TEXT_ONLY = "it was fine"


@pytest.fixture(scope="module")
def pipe():
    return UniMSEPipeline(model=tiny_model(seed=2), processor=tiny_processor(), task=PIPELINE_TASK)


def _without(item: dict, modality: str) -> dict:
    return {key: value for key, value in item.items() if key != modality}


def _label_fields(result: dict) -> dict:
    return {key: value for key, value in result.items() if key not in ("emotion_scores", "modality_contributions")}


@pytest.mark.parametrize("item", [BOTH, ACOUSTIC_ONLY], ids=["acoustic+visual", "acoustic"])
def test_deltas_are_the_differences_of_separate_calls_without_each_modality(pipe, item):
    batched = pipe([item, TEXT_ONLY], batch_size=2, return_modality_contributions=True)[0]
    full = pipe(item, return_emotion_scores=True)
    assert _label_fields(batched) == _label_fields(full)
    given = [m for m in ("acoustic", "visual") if m in item]
    assert list(batched["modality_contributions"]) == given
    for modality in given:
        separate = pipe(_without(item, modality), return_emotion_scores=True)
        contribution = batched["modality_contributions"][modality]
        assert _label_fields(contribution["without"]) == _label_fields(separate)
        assert contribution["without"]["emotion_scores"] == pytest.approx(separate["emotion_scores"], abs=1e-5)
        assert contribution["score_delta"] == full["score"] - separate["score"]
        emotion = full["emotion"]
        expected = full["emotion_scores"][emotion] - separate["emotion_scores"][emotion]
        assert contribution["emotion_probability_delta"] == pytest.approx(expected, abs=1e-5)


def test_text_only_inputs_have_no_contributions(pipe):
    assert pipe(TEXT_ONLY, return_modality_contributions=True)["modality_contributions"] == {}


def test_emotion_scores_are_returned_only_when_asked_for(pipe):
    result = pipe(ACOUSTIC_ONLY, return_modality_contributions=True)
    assert "emotion_scores" not in result and "emotion_scores" in result["modality_contributions"]["acoustic"]["without"]


def test_the_inputs_without_each_modality_run_in_one_generate_and_one_scoring_pass(pipe, monkeypatch):
    generate_rows, encode_calls, scoring_rows = [], [], []
    generating = []
    generate, encode, forward = pipe.model.generate, pipe.model.encode, pipe.model.forward

    def generate_spy(*args, **kwargs):
        generate_rows.append(kwargs["input_ids"].shape[0])
        generating.append(True)
        try:
            return generate(*args, **kwargs)
        finally:
            generating.pop()

    @functools.wraps(forward)
    def forward_spy(*args, **kwargs):
        if not generating:  # a scoring pass, not a decoding step
            scoring_rows.append(kwargs["decoder_input_ids"].shape[0])
        return forward(*args, **kwargs)

    monkeypatch.setattr(pipe.model, "generate", generate_spy)
    monkeypatch.setattr(pipe.model, "encode", lambda *a, **k: encode_calls.append(1) or encode(*a, **k))
    monkeypatch.setattr(pipe.model, "forward", forward_spy)
    results = pipe([BOTH, ACOUSTIC_ONLY, TEXT_ONLY], batch_size=3, return_modality_contributions=True)
    extra_rows = 3  # BOTH without acoustic, BOTH without visual, ACOUSTIC_ONLY without acoustic
    assert generate_rows == [3 + extra_rows] and encode_calls == [1]
    # one pass over the tokens the candidates share (one row per parsed label), one over all 7 candidates of each
    assert len(scoring_rows) == 2 and scoring_rows[1] == 7 * scoring_rows[0] and scoring_rows[0] <= 3 + extra_rows
    assert [list(r["modality_contributions"]) for r in results] == [["acoustic", "visual"], ["acoustic"], []]
