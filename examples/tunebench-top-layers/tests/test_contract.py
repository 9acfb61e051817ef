"""The plugin passes tunebench's approach contract on a tiny model."""

from harness.testing import check_approach, make_tiny_model


def test_top_layers_meets_the_contract(tmp_path):
    info = check_approach("top-layers", make_tiny_model(tmp_path / "model"), tmp_path)
    assert 0 < info["trainable_percent"] < 100
