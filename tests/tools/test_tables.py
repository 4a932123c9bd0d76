"""The machine a benchmark ran on: CPU model and the flags that decide its speed."""

from __future__ import annotations

import pytest
import torch

from gcnseg.runtime import cpu_features
from gcnseg.tools.bench.tables import describe_cpu

CPUINFO = """processor\t: 0
model name\t: {model}
flags\t\t: fpu sse2 {flags}

processor\t: 1
model name\t: Another CPU
flags\t\t: fpu
"""


@pytest.mark.parametrize(
    ("flags", "avx512_bf16", "amx", "native"),
    [
        ("avx2", False, False, False),  # Zen 2/3, older Xeons: bf16 is emulated
        ("avx2 avx512f avx512_bf16", True, False, True),  # Zen 4, Cooper Lake
        ("avx2 avx512f amx_tile amx_bf16", False, True, True),  # AMX without the AVX-512 flag
        ("avx2 avx512f amx_tile", False, False, False),  # tiles alone do no bf16
    ],
)
def test_cpu_features_from_cpuinfo(flags: str, avx512_bf16: bool, amx: bool, native: bool) -> None:
    features = cpu_features(CPUINFO.format(model="Test CPU 9000", flags=flags))
    assert features["model"] == "Test CPU 9000"  # the first processor's
    assert features["avx2"] is True
    assert features["avx512f"] is ("avx512f" in flags)
    assert (features["avx512_bf16"], features["amx"], features["native_bf16"]) == (
        avx512_bf16,
        amx,
        native,
    )


@pytest.mark.parametrize(
    ("flags", "vnni"),
    [
        ("avx2", False),  # Zen 2/3: int8 pair sums saturate in ONNX Runtime's fast kernels
        ("avx2 avx_vnni", True),  # Alder Lake
        ("avx2 avx512f avx512_vnni", True),  # Cascade Lake, Zen 4
        ("avx2 avx512f amx_tile amx_int8", True),
    ],
)
def test_cpu_features_know_int8_dot_products(flags: str, vnni: bool) -> None:
    assert cpu_features(CPUINFO.format(model="Test CPU", flags=flags))["vnni"] is vnni


def test_cpu_features_of_this_machine_agree_with_torch() -> None:
    features = cpu_features()
    assert isinstance(features["model"], str) and features["model"]
    assert features["capability"] == torch.backends.cpu.get_cpu_capability()
    if features["capability"] == "AVX512":  # torch dispatches AVX-512 kernels only where present
        assert features["avx512f"] and features["avx2"]


def test_cpu_description_names_model_flags_and_bf16() -> None:
    xeon = cpu_features(CPUINFO.format(model="Xeon", flags="avx2 avx512f amx_tile amx_bf16"))
    assert describe_cpu(xeon) == "Xeon (avx2, avx512f, amx; native bf16)"
    old = cpu_features(CPUINFO.format(model="Old", flags="sse4_2"))
    assert describe_cpu(old) == "Old (no avx2; bf16 emulated)"
