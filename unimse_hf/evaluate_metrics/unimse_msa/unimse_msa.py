# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""UniMSE multimodal sentiment analysis (MOSI/MOSEI) metrics as an `evaluate` module.

The computation lives in ``unimse_hf.metrics`` (imported absolutely, so ``unimse-hf`` must be installed);
this file only adapts it to ``evaluate.load``.
"""

import datasets
import evaluate
from unimse_hf.metrics import msa_generation_metrics

_CITATION = """\
@inproceedings{hu-etal-2022-unimse,
    title = "{U}ni{MSE}: Towards Unified Multimodal Sentiment Analysis and Emotion Recognition",
    author = "Hu, Guimin and Lin, Ting-En and Zhao, Yi and Lu, Guangming and Wu, Yuchuan and Li, Yongbin",
    booktitle = "Proceedings of the 2022 Conference on Empirical Methods in Natural Language Processing",
    year = "2022",
    url = "https://arxiv.org/abs/2211.11256",
}
"""

_DESCRIPTION = """\
Sentiment-regression metrics of UniMSE generated labels (`polarity,score,MELD-emotion,IEMOCAP-emotion`),
computed from the score slot as the official UniMSE evaluation does: MAE, Pearson correlation, Acc-7,
Acc-5, and Acc-2 / weighted F1 on non-zero gold scores (non0) and on all samples (has0), plus the fraction
of generated texts that are not a complete universal label. An unreadable score counts as wrong: it is
scored as the score in [-3, 3] farthest from the gold one. `parse_failures="official"` scores it as 0.0
instead, as the official code does (which credits unreadable output on non-negative gold scores).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): generated universal labels, e.g. `"positive,1.0,joy,excited"`.
    references (`list` of `float` or `str`): gold scores in [-3, 3], as numbers, number strings (`"-1.2"`)
        or universal label strings.
    parse_failures (`str`, *optional*, defaults to `"wrong"`): how an unreadable score is scored: `"wrong"`
        (the farthest score from the gold one) or `"official"` (0.0).
Returns:
    mae (`float`): mean absolute error, no clipping.
    corr (`float`): Pearson correlation; NaN if predictions or references are constant.
    acc7 (`float`): accuracy of round-half-to-even scores clipped to [-3, 3].
    acc5 (`float`): the same clipped to [-2, 2].
    acc2_non0 (`float`), weighted_f1_non0 (`float`): positive vs negative on samples whose gold score is not 0
        (NaN if every gold score is 0).
    acc2_has0 (`float`), weighted_f1_has0 (`float`): non-negative vs negative on all samples.
    parse_failure_rate (`float`): fraction of predictions that are not a valid universal label.
    num_samples (`int`): number of samples.
Examples:
    >>> msa = evaluate.load("unimse_hf/evaluate_metrics/unimse_msa")
    >>> results = msa.compute(predictions=["positive,1.0,joy,excited", "negative,-2,anger,anger"], references=[1.4, -0.6])
    >>> results["acc2_non0"], results["acc7"]
    (1.0, 0.5)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class UnimseMsa(evaluate.Metric):
    """MSA metrics of generated UniMSE labels."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("float64")}),
            ],
            codebase_urls=["https://github.com/LeMei/UniMSE"],
            reference_urls=["https://arxiv.org/abs/2211.11256"],
        )

    def _compute(self, predictions: list[str], references: list, parse_failures: str = "wrong") -> dict[str, float]:
        return msa_generation_metrics(predictions, references, parse_failures=parse_failures)
