import pytest

from automations.services.stats import rate, two_proportion_test


def test_a_clear_difference_is_significant():
    result = two_proportion_test(120, 1000, 60, 1000)
    assert (result.rate_a, result.rate_b) == (0.12, 0.06)
    assert result.significant and result.p_value < 1e-5


def test_a_small_difference_on_small_numbers_is_not():
    result = two_proportion_test(11, 100, 9, 100)
    assert not result.significant
    assert result.p_value == pytest.approx(0.6374, abs=1e-3)  # z = 0.4714


def test_degenerate_inputs_are_never_significant():
    assert two_proportion_test(0, 0, 5, 10).p_value == 1.0
    assert two_proportion_test(0, 100, 0, 100).p_value == 1.0
    assert two_proportion_test(100, 100, 100, 100).p_value == 1.0
    assert rate(0, 0) == 0.0
