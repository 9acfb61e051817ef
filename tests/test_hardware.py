"""Device and precision selection (harness.models.hardware): what a GPU run relies on, on a CPU."""

import pytest
import torch

from harness.models import hardware
from harness.models.hardware import (
    HardwareError,
    Precision,
    bytes_per_token,
    cpu_flags,
    cpu_has_native_bf16,
    resolve_device,
    resolve_precision,
    scoring_batch_tokens,
)
from harness.models.loading import load_model, resolve_model

CPU = torch.device("cpu")
CUDA = torch.device("cuda")


def test_device_choice():
    assert resolve_device("cpu") == CPU
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(HardwareError, match="not a device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(HardwareError, match="no CUDA device"):
            resolve_device("cuda")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n")
    assert {"avx512_bf16", "amx_tile"} <= cpu_flags(info)
    assert cpu_flags(tmp_path / "missing") == set()
    assert cpu_has_native_bf16({"avx512_bf16"}) and cpu_has_native_bf16({"amx_bf16"})


@pytest.mark.parametrize(("device", "native", "expected"), [
    (CPU, True, "bf16"), (CPU, False, "fp32"), (CUDA, True, "bf16"), (CUDA, False, "fp16"),
])
def test_auto_precision_follows_the_hardware(monkeypatch, device, native, expected):
    monkeypatch.setattr(hardware, "native_bf16", lambda d: native)
    assert resolve_precision("auto", device).name == expected


def test_forced_precisions(monkeypatch):
    monkeypatch.setattr(hardware, "native_bf16", lambda d: False)
    assert resolve_precision("fp32", CUDA).compute_dtype == torch.float32
    with pytest.warns(UserWarning, match="no native bf16"):
        assert resolve_precision("bf16", CPU).name == "bf16"
    with pytest.raises(HardwareError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", CPU)
    with pytest.raises(HardwareError, match="use one of auto, fp32, bf16, fp16"):
        resolve_precision("int8", CPU)


def test_mixed_precision_keeps_trained_weights_in_fp32():
    gpu, cpu = Precision("bf16", CUDA), Precision("bf16", CPU)
    assert gpu.weights_dtype(trainable=True) == torch.float32
    assert gpu.weights_dtype() == torch.bfloat16  # a frozen base on a GPU: half the memory
    assert cpu.weights_dtype() == torch.float32  # then only linear layers: store_frozen
    assert Precision("fp32", CUDA).weights_dtype() == torch.float32
    assert cpu.trainer_flags() == {"bf16": True, "fp16": False}
    assert Precision("fp16", CUDA).trainer_flags() == {"bf16": False, "fp16": True}
    assert Precision("fp32", CPU).trainer_flags() == {"bf16": False, "fp16": False}


def test_autocast_runs_matmuls_in_the_compute_dtype():
    weight, x = torch.randn(8, 8), torch.randn(2, 8)
    with Precision("bf16", CPU).autocast():
        assert (x @ weight).dtype == torch.bfloat16
    with Precision("fp32", CPU).autocast():
        assert (x @ weight).dtype == torch.float32


def test_scoring_batches_scale_with_free_gpu_memory():
    config = type("Config", (), {"hidden_size": 4096, "num_hidden_layers": 32,
                                 "intermediate_size": 14336, "num_attention_heads": 32,
                                 "num_key_value_heads": 8})()
    per_token = bytes_per_token(config, torch.bfloat16)
    assert per_token == (2 * 32 * 1024 + 4 * 4096 + 2 * 14336) * 2
    small = scoring_batch_tokens(CUDA, free_bytes=2 * 1024**3, bytes_per_token=per_token)
    large = scoring_batch_tokens(CUDA, free_bytes=40 * 1024**3, bytes_per_token=per_token)
    assert hardware.DEFAULT_BATCH_TOKENS <= small < large <= hardware.MAX_GPU_BATCH_TOKENS
    assert scoring_batch_tokens(CPU, bytes_per_token=per_token) == hardware.DEFAULT_BATCH_TOKENS
    assert scoring_batch_tokens(CUDA, free_bytes=1, bytes_per_token=1, configured=512) == 512


def test_a_forced_precision_is_used_and_recorded(tiny_model_dir, tmp_path):
    from harness.runner.session import ExperimentSession, SessionOptions

    session = ExperimentSession(SessionOptions(
        approaches=["zero-shot"], model=str(tiny_model_dir), budget="smoke",
        results=tmp_path / "r.db", precision="bf16"))
    with session.open_run("zero-shot") as run:
        assert run.candidate.precision.name == "bf16"
        with run.candidate.autocast():
            logits = run.candidate.model(torch.tensor([[1, 2, 3]])).logits
        assert logits.dtype == torch.bfloat16  # the model computed in bf16
        assert run.candidate.model.dtype == torch.float32  # weights kept in fp32 on a CPU
    recorded = session.store.query("SELECT precision FROM runs")
    assert [row["precision"] for row in recorded] == ["bf16"]
    session.close()


def test_inference_weights_stored_in_bf16_score_as_autocast_did(tiny_model_dir):
    """A ready candidate's linear weights are stored in bf16 once instead of being cast at
    every forward pass; the scores stay those of fp32 weights under autocast, and the tied
    embeddings stay fp32."""
    from harness.models.lm_candidate import LMCandidate

    model, tokenizer = load_model(resolve_model(str(tiny_model_dir)), CPU, torch.float32)
    prompts = [[{"role": "user", "content": f"Review {i}: fine."}] for i in range(3)]
    choices = [["positive", "negative", "not sure"]] * 3
    candidate = LMCandidate(model, tokenizer)
    candidate.precision = Precision("bf16", CPU)  # autocast over fp32 weights
    before = candidate.score_choices(prompts, choices)
    generated = candidate.generate(prompts, max_new_tokens=5)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight

    candidate.set_precision(Precision("bf16", CPU))
    assert model.get_input_embeddings().weight.dtype == torch.float32
    assert model.get_output_embeddings().weight.dtype == torch.bfloat16
    assert model.model.layers[0].self_attn.q_proj.weight.dtype == torch.bfloat16
    assert model.model.norm.weight.dtype == torch.float32
    assert candidate.score_choices(prompts, choices) == before
    assert candidate.generate(prompts, max_new_tokens=5) == generated
    assert hardware.store_linear_weights(model, torch.bfloat16) == 0  # already stored


def test_fp32_sessions_keep_fp32_weights(tiny_model_dir):
    from harness.models.lm_candidate import LMCandidate

    model, tokenizer = load_model(resolve_model(str(tiny_model_dir)), CPU, torch.float32)
    LMCandidate(model, tokenizer).set_precision(Precision("fp32", CPU))
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_one_row_products_give_the_same_result_as_a_plain_linear():
    """The output layer sees one row sliced out of a sequence at batch size 1; the stored
    layer multiplies it as a matrix and returns the shape and values ``nn.Linear`` would."""
    layer = torch.nn.Linear(16, 8)
    reference = torch.nn.Linear(16, 8)
    reference.load_state_dict(layer.state_dict())
    assert hardware.store_linear_weights(layer, torch.bfloat16) == 1
    assert isinstance(layer, torch.nn.Linear) and type(layer) is hardware.OneRowLinear
    reference.to(torch.bfloat16)
    sequence = torch.randn(1, 5, 16)
    with Precision("bf16", CPU).autocast():
        for x in (sequence[:, -1:, :], sequence, torch.randn(3, 1, 16), torch.randn(16)):
            out = layer(x)
            assert out.shape == (*x.shape[:-1], 8)
            assert torch.equal(out, reference(x))


def test_4bit_layers_hand_their_products_over_in_the_compute_dtype_under_autocast():
    """A bitsandbytes 4-bit layer, once stored, returns its product in bf16 under bf16
    autocast (as ``nn.Linear`` does) instead of casting it back to the fp32 input's dtype;
    the values are bitsandbytes' own, and outside autocast nothing changes."""
    bnb = pytest.importorskip("bitsandbytes")
    from harness.models.quantized import AutocastLinear4bit

    torch.manual_seed(0)
    layer = bnb.nn.Linear4bit(64, 96, bias=False, compute_dtype=torch.bfloat16,
                              quant_type="nf4")
    layer.weight = bnb.nn.Params4bit(torch.randn(96, 64), requires_grad=False,
                                     quant_type="nf4", compress_statistics=True)
    layer = layer.to("cpu").eval()
    x = torch.randn(2, 16, 64)
    with torch.inference_mode():
        with Precision("bf16", CPU).autocast():
            before = layer(x)
        plain = layer(x)
        assert before.dtype == torch.float32  # bitsandbytes casts back to the input's dtype
        assert hardware.store_linear_weights(layer, torch.bfloat16) == 1
        assert type(layer) is AutocastLinear4bit
        with Precision("bf16", CPU).autocast():
            after = layer(x)
        assert after.dtype == torch.bfloat16
        assert torch.equal(after.float(), before)
        assert torch.equal(layer(x), plain)
    assert hardware.store_linear_weights(layer, torch.bfloat16) == 0  # already stored
