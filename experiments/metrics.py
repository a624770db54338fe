"""Segmentation metrics over a whole set: the confusion matrix is summed over every pixel of every
image, then IoU per class = TP / (TP + FP + FN) and mIoU = their mean (the protocol of
``segserve eval``)."""
from __future__ import annotations

import numpy as np
import torch


class Confusion:
    def __init__(self, classes: int) -> None:
        self.classes = classes
        self.m = np.zeros((classes, classes), np.int64)  # rows: truth, columns: prediction

    def add(self, pred, truth) -> None:
        p = pred.numpy() if isinstance(pred, torch.Tensor) else np.asarray(pred)
        t = truth.numpy() if isinstance(truth, torch.Tensor) else np.asarray(truth)
        if p.shape != t.shape:
            raise ValueError(f"prediction {p.shape} and truth {t.shape} differ in size")
        idx = t.astype(np.int64).ravel() * self.classes + p.astype(np.int64).ravel()
        self.m += np.bincount(idx, minlength=self.classes ** 2).reshape(self.classes, self.classes)

    def iou(self) -> list[float]:
        tp = np.diag(self.m).astype(np.float64)
        union = self.m.sum(0) + self.m.sum(1) - tp
        return [float(tp[c] / union[c]) if union[c] > 0 else float("nan") for c in range(self.classes)]

    def miou(self) -> float:
        return float(np.nanmean(self.iou()))

    def pixel_accuracy(self) -> float:
        return float(np.trace(self.m) / max(1, self.m.sum()))
