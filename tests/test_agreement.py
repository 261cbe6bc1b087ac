"""Agreement statistics against published worked examples and independent computations.

The values were also cross-checked (outside the suite) against pingouin's ``intraclass_corr``
(ICC2 and its CI) and the ``krippendorff`` package on random matrices with missing values.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from psysim.analysis.agreement import icc_2_1, krippendorff_alpha, spearman, wide_matrix

NAN = np.nan

# Shrout & Fleiss (1979), Table 2: 6 targets x 4 judges; ICC(2,1) = .29.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], dtype=float
)

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders x 12 units with
# missing values; interval alpha = 0.849. Rows here are units, columns coders.
KRIPPENDORFF = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
).T


def test_icc_matches_shrout_fleiss_and_mcgraw_wong_ci():
    result = icc_2_1(SHROUT_FLEISS)
    assert result.value == pytest.approx(0.2898, abs=1e-4)
    # McGraw & Wong's interval for these data (as pingouin reports it): [0.02, 0.76].
    assert result.ci_low == pytest.approx(0.0188, abs=1e-3)
    assert result.ci_high == pytest.approx(0.7611, abs=1e-3)
    assert (result.n_items, result.n_raters, result.n_dropped) == (6, 4, 0)


def test_icc_by_hand_for_raters_with_known_offsets():
    # Rater B = rater A + 10 on every item: consistency is perfect, absolute agreement is not.
    a = np.array([10.0, 20, 30, 40, 50])
    matrix = np.column_stack([a, a + 10])
    # Two-way ANOVA by hand: MSR = 2 * var(row means), MSC = 5 * (5^2 * 2) / 1, MSE = 0.
    row_means = a + 5
    ms_rows = 2 * np.sum((row_means - row_means.mean()) ** 2) / 4
    ms_cols = 5 * (5**2 + 5**2)
    expected = ms_rows / (ms_rows + 2 * ms_cols / 5)
    offset = icc_2_1(matrix)
    assert offset.value == pytest.approx(expected)
    assert np.isnan(offset.ci_low) and "no residual variance" in offset.note
    assert icc_2_1(np.column_stack([a, a])).value == pytest.approx(1.0)


def test_icc_drops_incomplete_items_and_says_when_it_cannot_compute():
    matrix = np.vstack([SHROUT_FLEISS, [[1, NAN, 3, 4]]])
    result = icc_2_1(matrix)
    assert result.n_dropped == 1 and result.value == pytest.approx(0.2898, abs=1e-4)
    flat = icc_2_1(np.full((4, 3), 50.0))
    assert np.isnan(flat.value) and "no variance" in flat.note
    single = icc_2_1(np.array([[1.0], [2.0]]))
    assert np.isnan(single.value) and "2 raters" in single.note


def test_alpha_matches_krippendorff_worked_example():
    result = krippendorff_alpha(KRIPPENDORFF, resamples=200)
    assert result.value == pytest.approx(0.849, abs=1e-3)
    assert result.n_dropped == 1  # the unit with one value is not pairable
    assert result.ci_low <= result.value <= result.ci_high


def test_alpha_equals_one_for_identical_raters_and_is_negative_for_opposed_ones():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 101, 40).astype(float)
    assert krippendorff_alpha(np.column_stack([values, values]), resamples=50).value == pytest.approx(1.0)
    opposed = np.column_stack([values, 100 - values])
    assert krippendorff_alpha(opposed, resamples=50).value < 0


def test_alpha_bootstrap_is_reproducible_with_its_seed():
    a = krippendorff_alpha(KRIPPENDORFF, resamples=300, seed=5)
    b = krippendorff_alpha(KRIPPENDORFF, resamples=300, seed=5)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    with pytest.raises(ValueError, match="interval"):
        krippendorff_alpha(KRIPPENDORFF, level="nominal")


def test_spearman_matches_scipy_and_fisher_z_by_hand():
    rng = np.random.default_rng(1)
    x = rng.normal(size=30)
    y = x + rng.normal(size=30)
    y[3] = NAN
    result = spearman(x, y)
    keep = ~np.isnan(y)
    rho = stats.spearmanr(x[keep], y[keep]).statistic
    se = np.sqrt((1 + rho**2 / 2) / (29 - 3))
    assert result.value == pytest.approx(rho)
    assert result.ci_low == pytest.approx(np.tanh(np.arctanh(rho) - 1.959964 * se), abs=1e-6)
    assert result.ci_high == pytest.approx(np.tanh(np.arctanh(rho) + 1.959964 * se), abs=1e-6)
    assert (result.n_items, result.n_dropped) == (29, 1)
    assert np.isnan(spearman([1, 2, 3], [1, 2, 3]).value)
    assert "no variance" in spearman([5, 5, 5, 5, 5], [1, 2, 3, 4, 5]).note


def test_wide_matrix_pivots_and_rejects_repeated_pairs():
    frame = pd.DataFrame(
        {"item": ["a", "a", "b"], "rater": ["r1", "r2", "r1"], "rating": [10.0, 20.0, 30.0]}
    )
    matrix, items, raters = wide_matrix(frame, "item", "rater", "rating")
    assert items == ["a", "b"] and raters == ["r1", "r2"]
    assert matrix[0].tolist() == [10.0, 20.0] and matrix[1, 0] == 30.0 and np.isnan(matrix[1, 1])
    with pytest.raises(ValueError, match="repeat an \\(item, rater\\) pair"):
        wide_matrix(pd.concat([frame, frame.head(1)]), "item", "rater", "rating")
