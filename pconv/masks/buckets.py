"""Hole-ratio buckets and the border property of the paper's test masks (SPEC §5).

Functions here take ``hole``: a boolean array ``(H, W)``, True = hole (the complement
of the internal ``mask``, 1 = known).
"""

from __future__ import annotations

import numpy as np

__all__ = ["BORDER_MARGIN", "BUCKETS", "bucket_of", "hole_ratio", "touches_border"]

#: Bucket ``k`` (1–6) holds hole ratios in the half-open interval ``BUCKETS[k]``.
BUCKETS: dict[int, tuple[float, float]] = {
    1: (0.01, 0.1),
    2: (0.1, 0.2),
    3: (0.2, 0.3),
    4: (0.3, 0.4),
    5: (0.4, 0.5),
    6: (0.5, 0.6),
}

#: A mask "touches the border" if a hole pixel lies within this many pixels of an edge.
BORDER_MARGIN = 16


def hole_ratio(hole: np.ndarray) -> float:
    """Fraction of pixels that are hole."""
    return float(np.count_nonzero(hole)) / hole.size


def bucket_of(ratio: float) -> int | None:
    """The bucket ``k`` with ``lo < ratio <= hi``, or None outside (0.01, 0.6]."""
    for bucket, (low, high) in BUCKETS.items():
        if low < ratio <= high:
            return bucket
    return None


def touches_border(hole: np.ndarray, margin: int = BORDER_MARGIN) -> bool:
    """Whether any hole pixel lies within ``margin`` pixels of the image edge."""
    return bool(
        hole[:margin].any() or hole[-margin:].any() or hole[:, :margin].any() or hole[:, -margin:].any()
    )
