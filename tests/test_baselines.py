"""The demo's reference baselines: trivial predictions, TF-IDF + linear models, and their input checks."""

import pytest

from unimse_hf.baselines import TFIDF, TRIVIAL, baseline_metrics

POSITIVE = ["good", "great fun", "lovely and good", "great", "wonderful good", "lovely"]
NEGATIVE = ["bad", "awful mess", "terrible and bad", "awful", "horrible bad", "terrible"]


def _msa_rows(prefix: str, texts_scores: list[tuple[str, float]]) -> list[dict]:
    return [{"id": f"{prefix}{i}", "text": text, "score": score} for i, (text, score) in enumerate(texts_scores)]


def _corpora() -> dict:
    train = [(t, 2.0) for t in POSITIVE] + [(t, -2.0) for t in NEGATIVE] + [("good bad", 0.5)]
    test = [("good great", 1.5), ("bad awful", -1.5), ("lovely", 2.5), ("terrible", -0.5)]
    meld_train = [{"id": f"m{i}", "text": t, "meld_emotion": e} for i, (t, e) in
                  enumerate([(t, "joy") for t in POSITIVE] + [(t, "anger") for t in NEGATIVE] + [("ok", "joy")])]
    meld_test = [{"id": "t0", "text": "great", "meld_emotion": "joy"}, {"id": "t1", "text": "awful", "meld_emotion": "anger"}]
    return {"mosi": {"train": _msa_rows("r", train), "test": _msa_rows("t", test)},
            "meld": {"train": meld_train, "validation": meld_test, "test": meld_test}}


def test_trivial_baselines_predict_the_training_mean_and_majority():
    results = baseline_metrics(_corpora())
    assert results["mosi"][TRIVIAL].predictions == [pytest.approx(0.5 / 13)] * 4
    assert results["meld"][TRIVIAL].predictions == ["joy", "joy"]
    assert results["meld"][TRIVIAL].metrics["accuracy"] == 0.5


def test_tfidf_baselines_learn_the_words():
    results = baseline_metrics(_corpora())
    assert results["mosi"][TFIDF].metrics["acc2_non0"] == 1.0
    assert results["mosi"][TFIDF].metrics["mae"] < results["mosi"][TRIVIAL].metrics["mae"]
    assert results["meld"][TFIDF].predictions == ["joy", "anger"]


@pytest.mark.parametrize("corpora, message", [
    ({"sst": {"train": [], "test": []}}, "`corpora` key 'sst'"),
    ({"mosi": {"train": _msa_rows("r", [("good", 1.0)])}}, "`corpora['mosi']` has no test split"),
    ({"mosi": {"train": [{"id": "r0", "text": "good"}], "test": _msa_rows("t", [("good", 1.0)])}},
     "mosi train rows ['r0'] have no `score`"),
    ({"mosi": {"train": _msa_rows("r", [("good", 1.0), ("", -1.0)]), "test": _msa_rows("t", [("good", 1.0)])}},
     "mosi train rows ['r1'] have no `text`"),
])
def test_bad_corpora_are_refused_naming_the_argument_and_rows(corpora, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        baseline_metrics(corpora)
