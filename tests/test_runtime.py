"""`train.amp: auto` follows the hardware: bf16 only where it runs natively."""

from __future__ import annotations

import pytest
import torch

from gcnseg import runtime

CPU = torch.device("cpu")


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "none")])
def test_auto_amp_follows_native_bf16(monkeypatch, native: bool, expected: str) -> None:
    monkeypatch.setattr(runtime, "cpu_features", lambda: {"native_bf16": native})
    amp, why = runtime.resolve_amp("auto", CPU)
    assert amp == expected
    assert ("native bf16" in why) and (("no native" in why) != native)


def test_auto_amp_on_a_gpu_prefers_bf16_then_fp16(monkeypatch) -> None:
    cuda = torch.device("cuda")
    for supported, expected in ((True, "bf16"), (False, "fp16")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda s=supported: s)
        assert runtime.resolve_amp("auto", cuda)[0] == expected


@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
def test_an_explicit_amp_is_kept(monkeypatch, amp: str) -> None:
    monkeypatch.setattr(runtime, "cpu_features", lambda: {"native_bf16": amp != "bf16"})
    amp_used, why = runtime.resolve_amp(amp, CPU)
    assert amp_used == amp
    # bf16 asked for on a CPU that would emulate it is kept, with the cost said
    assert why.startswith("asked for") and ("emulated" in why) == (amp == "bf16")
