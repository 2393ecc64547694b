"""docs/cuda-kernels.md's table: each kernel's global reads worked out by hand equal the observed count.

The hand formulas below follow each kernel's source (see the doc's second column); the observed counts come from
numbacnn.trace.cuda_check on cuda-check's default input. The doc's numbers must match both.
"""
import re
from pathlib import Path

import numpy as np
import pytest

from numbacnn.trace.cuda_check import Sizes, check

pytestmark = pytest.mark.cudasim

DOC = Path(__file__).resolve().parents[2] / "docs" / "cuda-kernels.md"
S = Sizes()
N, C, O = S.batch, S.channels, S.out_channels
H, W = S.size
INSIDE = sum(min(H, i + 2) - max(0, i - 1) for i in range(H)) ** 2  # 3x3 window taps inside a 7x7 plane, padding 1
OUT = N * O * H * W  # conv outputs (same size)


def _patch_cells_inside(T=4, K=3, pad=1):
    """conv2d kernel 2: patch cells inside the image, summed over the tiles of one plane."""
    tiles = range(0, H, T)
    per_axis = [min(H, t0 - pad + T + K - 1) - max(0, t0 - pad) for t0 in tiles]
    return sum(a * b for a in per_axis for b in per_axis)


def _non_negative():
    x = np.random.default_rng(0).standard_normal((N, C, H, W))
    return int((x.astype(np.float32) >= 0).sum())


fin, fout = S.features
BY_HAND = {  # (op, kernel): global reads
    ("conv2d", 1): OUT + 2 * (N * O * C) * INSIDE,
    ("conv2d", 2): N * O * C * _patch_cells_inside() + N * O * 4 * C * 9 + N * O * 4 * 16,
    ("linear", 1): (N * 4 * fout) * (2 * fin + 1),
    ("linear", 2): (3 * 2) * (fin // 4) * 32 + N * 4 * fout,
    ("max_pool2d", 1): N * C * INSIDE,
    ("avg_pool2d", 1): N * C * INSIDE,
    ("relu", 1): N * C * H * W + _non_negative(),
    ("sgd", 1): 57 * 3 + 57 * 4,
    ("cross_entropy_backward", 1): (N * 8 * S.classes) * (2 * S.classes + 4) + N * 8,
}


def _doc_rows():
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\| (\w+) (\d) \|[^|]*\| [^|]*= ([\d,]+) \| ([\d,]+) \|", line)
        if m:
            rows[(m.group(1), int(m.group(2)))] = (int(m.group(3).replace(",", "")),
                                                   int(m.group(4).replace(",", "")))
    return rows


def test_the_doc_lists_every_counted_kernel():
    assert set(_doc_rows()) == set(BY_HAND)


@pytest.mark.parametrize("op,kernel", sorted(BY_HAND))
def test_hand_count_equals_observed_and_the_doc(op, kernel):
    report = check(op, kernel)
    assert report.ok
    observed = report.counts["global reads"]
    assert observed == BY_HAND[(op, kernel)], f"{op} kernel {kernel}: by hand {BY_HAND[(op, kernel)]}, seen {observed}"
    assert _doc_rows()[(op, kernel)] == (observed, observed)
