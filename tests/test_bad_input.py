"""Bad input to the processor and the model raises ValueError/TypeError naming the argument."""

import numpy as np
import pytest
import torch

from unimse_testing import TINY, tiny_model, tiny_processor

RNG = np.random.default_rng(0)
A = lambda n: RNG.standard_normal((n, TINY["acoustic_dim"])).astype(np.float32)  # noqa: E731


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        (dict(text="hi", acoustic=[np.zeros((4, 5))]), ValueError, "acoustic"),  # wrong feature dimension
        (dict(text="hi", visual=[np.zeros((4, 7))]), ValueError, "visual"),
        (dict(text=["a", "b"], acoustic=[A(3)] * 3), ValueError, "acoustic"),  # batch mismatch with text
        (dict(text="hi", acoustic=[np.full((3, 8), np.nan)]), ValueError, "acoustic"),  # NaN
        (dict(text="hi", visual=[np.full((3, 6), np.inf)]), ValueError, "visual"),  # inf
        (dict(text="", acoustic=[A(3)]), ValueError, "text"),  # empty text
        (dict(text="   "), ValueError, "text"),
        (dict(text=None), ValueError, "text"),
        (dict(text=[3]), TypeError, "text"),
        (dict(text="it was good", acoustic=[A(20)], word_timestamps=[[(0.1, 0.2), (0.0, 0.1), (0.2, 0.3)]]), ValueError, "word_timestamps"),
        (dict(text="it was good", acoustic=[A(20)], word_timestamps=[[(0.1, 0.05), (0.1, 0.2), (0.2, 0.3)]]), ValueError, "word_timestamps"),
        (dict(text="it was good", acoustic=[A(20)], word_timestamps=[[(-1.0, 0.1), (0.1, 0.2), (0.2, 0.3)]]), ValueError, "word_timestamps"),
        (dict(text="it was good", acoustic=[A(20)], word_timestamps=[[(0.0, 0.1), (0.1, 0.2)]]), ValueError, "word_timestamps"),
        (dict(text="hi", acoustic=[np.array([["a"] * 8])]), TypeError, "acoustic"),
        (dict(text="hi", labels=["positive,1.0,joy"]), ValueError, "labels"),
        (dict(text=["a", "b"], labels=["positive,1.0,joy,excited"]), ValueError, "labels"),
    ],
)
def test_processor_rejects_bad_input_naming_the_argument(kwargs, error, name):
    with pytest.raises(error, match=name):
        tiny_processor()(**kwargs)


def _inputs():
    g = torch.Generator().manual_seed(0)
    return dict(input_ids=torch.randint(3, 100, (2, 5), generator=g),
                acoustic_features=torch.randn(2, 4, TINY["acoustic_dim"], generator=g),
                visual_features=torch.randn(2, 3, TINY["visual_dim"], generator=g))


@pytest.mark.parametrize(
    "change, error, name",
    [
        (dict(acoustic_features=torch.randn(2, 4, 5)), ValueError, "acoustic_features"),  # wrong dimension
        (dict(visual_features=torch.randn(3, 3, TINY["visual_dim"])), ValueError, "visual_features"),  # batch
        (dict(acoustic_attention_mask=torch.ones(2, 7)), ValueError, "acoustic_attention_mask"),  # mask length
        (dict(visual_attention_mask=torch.ones(2, 3), visual_features=None), ValueError, "visual_attention_mask"),
        (dict(acoustic_features=torch.full((2, 4, TINY["acoustic_dim"]), float("nan"))), ValueError, "acoustic_features"),
        (dict(visual_features=torch.full((2, 3, TINY["visual_dim"]), float("inf"))), ValueError, "visual_features"),
        (dict(acoustic_features=torch.ones(2, 4, TINY["acoustic_dim"], dtype=torch.long)), TypeError, "acoustic_features"),
        (dict(attention_mask=torch.ones(2, 9)), ValueError, "attention_mask"),
    ],
)
def test_model_rejects_bad_input_naming_the_argument(change, error, name):
    model = tiny_model()
    inputs = {**_inputs(), **change}
    with pytest.raises(error, match=name):
        model(**inputs, decoder_input_ids=torch.zeros(2, 1, dtype=torch.long))
    with pytest.raises(error, match=name):
        model.generate(**inputs, max_new_tokens=2)
