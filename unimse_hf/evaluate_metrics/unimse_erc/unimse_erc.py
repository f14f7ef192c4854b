# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""UniMSE emotion recognition in conversation (MELD/IEMOCAP) metrics as an `evaluate` module.

The computation lives in ``unimse_hf.metrics`` (imported absolutely, so ``unimse-hf`` must be installed);
this file only adapts it to ``evaluate.load``. The configuration name selects the dataset.
"""

import datasets
import evaluate
from unimse_hf.metrics import ERC_DATASETS, erc_generation_metrics

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
Emotion-recognition metrics of UniMSE generated labels (`polarity,score,MELD-emotion,IEMOCAP-emotion`):
accuracy and support-weighted F1 of the dataset's emotion slot (the `meld` configuration reads slot 3,
`iemocap` slot 4; an unreadable slot is a wrong prediction), plus the fraction of generated texts that are
not a complete universal label.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): generated universal labels, e.g. `"positive,1.0,joy,excited"`.
    references (`list` of `str`): gold emotions as words (`"joy"`), IEMOCAP abbreviations (`"hap"`) or
        universal label strings.
Returns:
    accuracy (`float`): fraction of correct emotions.
    weighted_f1 (`float`): per-class F1 weighted by gold support (scikit-learn `average="weighted"`).
    parse_failure_rate (`float`): fraction of predictions that are not a valid universal label.
    num_samples (`int`): number of samples.
Examples:
    >>> erc = evaluate.load("unimse_hf/evaluate_metrics/unimse_erc", "meld")
    >>> results = erc.compute(predictions=["positive,1.0,joy,excited", "negative,-1.0,anger"], references=["joy", "anger"])
    >>> results["accuracy"], results["parse_failure_rate"]
    (1.0, 0.5)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class UnimseErc(evaluate.Metric):
    """ERC metrics of generated UniMSE labels for the dataset named by the configuration."""

    def _info(self) -> evaluate.MetricInfo:
        if self.config_name not in ERC_DATASETS:
            raise KeyError(f"the configuration name must be one of {ERC_DATASETS}, got {self.config_name!r}")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            codebase_urls=["https://github.com/LeMei/UniMSE"],
            reference_urls=["https://arxiv.org/abs/2211.11256"],
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        return erc_generation_metrics(predictions, references, self.config_name)
