"""GPU model names: product strings from GPU feature discovery and DCGM, as catalog models."""

from __future__ import annotations

import re

__all__ = ["KNOWN_GPU_MODELS", "normalize_gpu_model"]

KNOWN_GPU_MODELS = (
    "B200", "H200", "H100", "A100-80GB", "A100-40GB", "L40S", "L40", "L4", "A10G", "A10",
    "T4", "V100",
)  # fmt: skip


def normalize_gpu_model(text: str | None) -> str | None:
    """Map GPU product names to the catalog's model names.

    "NVIDIA-H100-80GB-HBM3" (GPU feature discovery), "NVIDIA H100 80GB HBM3" (DCGM
    modelName), "h100" and "H100" all give "H100"; an A100 is 80GB only when the name says
    so. None when the text names no GPU costgov knows.
    """
    if not text:
        return None
    name = re.sub(r"[^A-Z0-9]", "", text.upper()).replace("NVIDIA", "").replace("TESLA", "")
    if "A100" in name:
        return "A100-80GB" if "80G" in name else "A100-40GB"
    for model in ("B200", "H200", "H100", "L40S", "A10G", "V100"):
        if model in name:
            return model
    if re.search(r"L40(?!S)", name):
        return "L40"
    if re.search(r"(^|[^0-9])L4($|[^0-9])", name) or name == "L4":
        return "L4"
    if re.search(r"A10($|[^0-9G])", name):
        return "A10"
    if re.search(r"(^|[^0-9])T4($|[^0-9])", name):
        return "T4"
    return None
