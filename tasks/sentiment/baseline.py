"""Sentiment's classical baseline: TF-IDF word and character n-grams + logistic regression (scikit-learn).

Fitted on the training split; its regularisation strength is chosen on validation macro-F1; the test
split is scored once, by the same metric code as the networks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks.common.base import PreparedData, Task
from tasks.common.classification import class_predictions
from tasks.common.hooks import BaselineSkipped

MAX_TRAINING_ROWS = 500_000  # beyond this a fit takes minutes on a small machine: skipped, with the reason
STRENGTHS = (0.5, 2.0, 8.0)  # inverse regularisation, chosen on validation


def tfidf_logistic_regression(task: Task, prepared: PreparedData) -> dict[str, float]:
    """Test metrics of the TF-IDF + logistic-regression baseline.

    Raises:
        BaselineSkipped: When the training split is too large to fit in a pipeline run.
    """
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts: dict[str, list[str]] = {}
    labels: dict[str, Any] = {}
    for split in ("train", "validation", "test"):
        rows, labels[split] = task.references(prepared.splits[split], prepared.codec)
        texts[split] = [row["text"] for row in rows]
    if len(texts["train"]) > MAX_TRAINING_ROWS:
        raise BaselineSkipped(f"{len(texts['train']):,} training rows, more than {MAX_TRAINING_ROWS:,}")
    vectorizers = [
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
    ]
    features = {
        split: hstack(
            [
                v.fit_transform(texts[split]) if split == "train" else v.transform(texts[split])
                for v in vectorizers
            ]
        ).tocsr()
        for split in ("train", "validation", "test")
    }

    def predictions(model: LogisticRegression, split: str) -> list[dict[str, Any]]:
        return class_predictions(model.predict_log_proba(features[split]), prepared.codec.labels)

    fitted = [
        LogisticRegression(C=strength, max_iter=2000).fit(features["train"], labels["train"])
        for strength in STRENGTHS
    ]
    validation = [
        task.metrics(predictions(model, "validation"), labels["validation"])[task.promotion_metric]
        for model in fitted
    ]
    best = fitted[int(np.argmax(validation) if task.promotion_direction == "max" else np.argmin(validation))]
    return task.metrics(predictions(best, "test"), labels["test"])
