"""The benchmark harness's choice of configurations (no benchmark runs here)."""

import pytest

from peregrine.bench.__main__ import build_parser, select


def chosen(*argv):
    parser = build_parser()
    options = parser.parse_args(list(argv))

    def error(message):
        raise ValueError(message)

    _, configurations = select(options, error)
    return configurations


def test_threshold_sweep_adds_one_baseline_configuration_per_threshold_beside_stock():
    configurations = chosen("--baseline-thresholds", "50,200")
    assert [c.name for c in configurations] == ["stock", "baseline@50", "baseline@200"]
    assert configurations[2].env == {
        "PEREGRINE": "1",
        "PEREGRINE_BASELINE_THRESHOLD": "200",
        "PEREGRINE_OPTIMIZE_THRESHOLD": "off",
    }


def test_threshold_sweep_keeps_configurations_asked_for():
    names = [c.name for c in chosen("--configs", "hook", "--baseline-thresholds", "0")]
    assert names == ["stock", "hook", "baseline@0"]


@pytest.mark.parametrize("bad", ["-1", "x", "1.5"])
def test_threshold_sweep_rejects_what_is_not_a_threshold(bad):
    with pytest.raises(ValueError, match="not a non-negative integer"):
        chosen("--baseline-thresholds", bad)
