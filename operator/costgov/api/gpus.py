"""GPU models costgov prices, and how product names from the wild map onto them.

Product names come from GPU feature discovery node labels ("NVIDIA-H100-80GB-HBM3"), DCGM's
modelName ("NVIDIA H100 80GB HBM3"), AMD's node labeller ("AMD_Instinct_MI300X_OAM") and
people ("h100", "A100-80GB"). A name is split into words at every character that is not a
letter or digit, and a model is recognised only when one of its words is exactly the model's
(so "L4X" and "GH200" are no L4 and no H200). Anything else is unknown: an error naming the
field and the closest known names, never a silent match.
"""

from __future__ import annotations

import difflib
import re
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator

__all__ = [
    "AMD_MODELS",
    "GPU_DENSE_TFLOPS",
    "GPU_MEMORY_GB",
    "GPU_RESOURCES",
    "KNOWN_GPU_MODELS",
    "MIG_MODELS",
    "MIG_RESOURCE_PREFIX",
    "NO_BF16_MODELS",
    "NVLINK_MODELS",
    "SHARED_GPU_PREFIXES",
    "GPUModelName",
    "check_gpu_model",
    "closest_gpu_models",
    "mig_share",
    "normalize_gpu_model",
    "unknown_gpu_model",
]

KNOWN_GPU_MODELS = (
    "B200", "H200", "H100", "A100-80GB", "A100-40GB", "L40S", "L40", "L4", "A10G", "A10",
    "T4", "V100", "MI300X",
)  # fmt: skip

GPU_MEMORY_GB = {
    "B200": 180, "H200": 141, "H100": 80, "A100-80GB": 80, "A100-40GB": 40, "L40S": 48,
    "L40": 48, "L4": 24, "A10G": 24, "A10": 24, "T4": 16, "V100": 16, "MI300X": 192,
}  # fmt: skip
"""Memory per GPU (GB) from the vendors' datasheets: NVIDIA HGX B200 (8 x 180 GB, as AWS
p6-b200 lists it), H200 SXM 141 GB, H100 SXM5 80 GB, A100 40/80 GB, L40S and L40 48 GB, L4
24 GB, A10G (AWS g5) and A10 24 GB, T4 16 GB, V100 16 GB (the AWS p3 part; the 32 GB one is
not told apart), AMD Instinct MI300X 192 GB. Right-sizing compares the memory a workload used
(DCGM_FI_DEV_FB_USED) with these."""
GPU_DENSE_TFLOPS = {
    "B200": 2250, "H200": 989, "H100": 989, "A100-80GB": 312, "A100-40GB": 312, "L40S": 362,
    "L40": 181, "L4": 121, "A10G": 70, "A10": 125, "T4": 65, "V100": 125, "MI300X": 1307,
}  # fmt: skip
"""Dense FP16/BF16 tensor TFLOPS per GPU from the datasheets (without sparsity): HGX B200
2.25 PF, H100/H200 SXM 989, A100 312, L40S 362, L40 181, L4 121, A10 125, T4 65 (FP16),
V100 SXM2 125, MI300X 1,307; A10G 70 (AWS publishes none: the commonly quoted figure, lower
than A10's, so that a move onto it is never overstated). Right-sizing scales a workload's
busy share by the ratio (compute-bound work; memory-bound work moves less)."""
AMD_MODELS = frozenset({"MI300X"})
"""GPUs of AMD (ROCm); the others are NVIDIA's (CUDA): right-sizing never crosses the two."""
NO_BF16_MODELS = frozenset({"T4", "V100"})
"""Pre-Ampere GPUs without BF16: never offered for work on a newer GPU."""
NVLINK_MODELS = frozenset({"B200", "H200", "H100", "A100-80GB", "A100-40GB", "MI300X"})
"""GPUs the clouds' multi-GPU instances join with NVLink (Infinity Fabric on MI300X): a
pod holding several is only offered another of these (L40S, L4, A10G servers are PCIe)."""
MIG_MODELS = frozenset({"A100-40GB", "A100-80GB", "H100", "H200", "B200"})
"""GPUs that split into seven MIG compute slices (NVIDIA MIG user guide, supported GPUs)."""

GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
"""Extended resources that count whole GPUs."""
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
"""MIG slices under the mixed strategy: nvidia.com/mig-1g.10gb, nvidia.com/mig-3g.40gb..."""
SHARED_GPU_PREFIXES = ("nvidia.com/gpu.", "nvidia.com/gpu-")
"""GPUs the NVIDIA device plugin renames when it shares them (time-slicing or MPS with
renameByDefault, or a custom rename): nvidia.com/gpu.shared... One replica is priced as a
whole GPU (the most it may use)."""

_WORDS = re.compile(r"[^A-Z0-9]+")
_VENDOR_WORDS = frozenset({"NVIDIA", "TESLA", "AMD", "INSTINCT"})
_SINGLE_WORD = ("B200", "H200", "H100", "L40S", "L40", "L4", "A10G", "A10", "T4", "V100", "MI300X")
_MIG_PROFILE = re.compile(r"^([1-7])g\.([0-9]{1,3})gb(\+me)?$")
MIG_SLICES_PER_GPU = 7
"""A100, H100, H200 and B200 split into seven compute slices; a profile "3g.40gb" holds three."""


def _words(text: str) -> list[str]:
    return [w for w in _WORDS.split(text.upper()) if w and w not in _VENDOR_WORDS]


def normalize_gpu_model(text: str | None) -> str | None:
    """The catalog's model name for a product name, or None when it names no model we know.

    "NVIDIA-H100-80GB-HBM3", "NVIDIA H100 80GB HBM3", "h100" and "H100" give "H100"; an A100
    is 80GB only when a word says 80GB ("A100-80GB", "NVIDIA-A100-SXM4-80GB").
    """
    if not text or len(text) > 128:
        return None
    words = _words(text)
    if "A100" in words:
        return "A100-80GB" if {"80GB", "80G"} & set(words) else "A100-40GB"
    for model in _SINGLE_WORD:
        if model in words:
            return model
    return None


def closest_gpu_models(text: str) -> list[str]:
    """Up to three known models whose names look most like `text` (for error messages)."""
    wanted = "-".join(_words(text[:128])) or text[:128].upper()
    return difflib.get_close_matches(wanted, KNOWN_GPU_MODELS, n=3, cutoff=0.4)


def unknown_gpu_model(text: str, where: str = "") -> str:
    """The message for a GPU model name costgov does not know, naming the field (`where`,
    unless the caller names it, as pydantic does)."""
    close = closest_gpu_models(text)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    shown = text if len(text) <= 64 else text[:61] + "..."
    prefix = f"{where}: " if where else ""
    return (
        f"{prefix}{shown!r} is not a GPU model costgov knows{hint} "
        f"(known: {', '.join(KNOWN_GPU_MODELS)})"
    )


_QUALIFIERS = re.compile(r"^(\d+GB?|SXM\d*|PCIE|HBM\d*E?|NVL|OAM|GPU)$")
"""Words a product name may carry besides its model: memory, form factor, memory kind."""


def check_gpu_model(text: str) -> str:
    """A GPU model field's value, unchanged when it names a known model; else ValueError.

    Strict for what people write: every word must belong to the model or be a qualifier
    (memory, form factor), so "l40-s" is not silently an L40; an A100 must say its memory
    (the 40GB and 80GB are priced differently)."""
    model = normalize_gpu_model(text)
    words = _words(text) if model else []
    own = set(model.split("-")) if model else set()
    if model is None or any(w not in own and not _QUALIFIERS.match(w) for w in words):
        raise ValueError(unknown_gpu_model(text))
    if model.startswith("A100") and not {"40GB", "40G", "80GB", "80G"} & set(words):
        raise ValueError(f"{text!r} is ambiguous: A100-40GB or A100-80GB?")
    return text


GPUModelName = Annotated[str, AfterValidator(check_gpu_model)]
"""A user-written GPU model (budget hints, allowed models, a model server's GPU)."""


def mig_share(resource: str) -> Decimal | None:
    """The share of one GPU a MIG slice resource holds (nvidia.com/mig-3g.40gb: 3/7), or None
    when `resource` is no MIG resource name."""
    if not resource.startswith(MIG_RESOURCE_PREFIX):
        return None
    found = _MIG_PROFILE.match(resource[len(MIG_RESOURCE_PREFIX) :])
    if found is None:
        return None
    return Decimal(int(found.group(1))) / MIG_SLICES_PER_GPU
