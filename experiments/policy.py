"""The promoter's default policy for facade-ads (docs/architecture.md#promotion), re-stated here only to check that
the bundled versions play the roles the promotion scenarios expect (the promoter's own code is the
authority). "Beats": within every hard limit, no objective worse than the champion by more than
its tolerance, and at least one objective better by at least its minimum improvement."""
from __future__ import annotations

import math

OBJECTIVES = [  # metric, direction, tolerance, relative
    ("miou", "higher", 0.005, False),
    ("latency_ms_p95", "lower", 0.05, True),
    ("peak_rss_mb", "lower", 0.05, True),
]
LIMITS = {"latency_ms_p95": 500.0, "peak_rss_mb": 400.0, "miou_min": 0.75}
MIN_IMPROVEMENT = {"miou": (0.002, False), "latency_ms_p95": (0.05, True), "peak_rss_mb": (0.05, True)}


def verdict(candidate: dict, champion: dict, miou_min: float = LIMITS["miou_min"]) -> tuple[bool, str]:
    for m, *_ in OBJECTIVES:
        v = candidate.get(m)
        if v is None or not math.isfinite(v):
            return False, f"missing {m}"
    if candidate["latency_ms_p95"] > LIMITS["latency_ms_p95"]:
        return False, "latency over the limit"
    if candidate["peak_rss_mb"] > LIMITS["peak_rss_mb"]:
        return False, "RSS over the limit"
    if candidate["miou"] < miou_min:
        return False, "mIoU under miou_min"
    for m, better, tol, rel in OBJECTIVES:
        c, b = candidate[m], champion[m]
        worse = (b - c) if better == "higher" else (c - b)
        allowed = tol * b if rel else tol
        if worse > allowed:
            return False, f"{m} worse ({c} vs {b})"
    for m, (need, rel) in MIN_IMPROVEMENT.items():
        c, b = candidate[m], champion[m]
        gain = (c - b) if m == "miou" else (b - c)
        if gain >= (need * b if rel else need):
            return True, f"{m} better ({c} vs {b})"
    return False, "no objective better by its minimum improvement"
