"""Which open model a name means: family, generation and size in billions of parameters,
read from the names model hubs and hosting providers use (Hugging Face
`meta-llama/Llama-3.1-8B-Instruct`, Groq `llama-3.1-8b-instant`, Fireworks
`llama-v3p1-8b-instruct`, Together `Qwen/Qwen1.5-14B`, `mistralai/Mixtral-8x7B-v0.1`), and
which hosted models are nearest to a self-hosted one (build versus buy, when the
InferenceDeployment names none).

Nearest: the same family and the same other words (a fine-tune, merge or line such as
openhermes, coder, nemotron, distill, free is only compared with its own kind); then the
closest size (by ratio: 8B is as far from 4B as from 16B), at most 1.5 times apart; then the
same generation. Guard, embedding, vision, audio and reranking models (including names such
as shieldgemma or paligemma) are never taken for a text model, nor the reverse.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["ModelIdentity", "identify", "nearest"]

FAMILIES = (
    "codellama", "llama", "mixtral", "ministral", "codestral", "devstral", "magistral",
    "mistral", "qwq", "qwen", "gemma", "phi", "deepseek", "falcon", "granite", "nemotron",
    "olmo", "command", "gpt-oss", "yi",
)  # fmt: skip
"""Longer names first where one contains another (codellama holds llama)."""
_SPECIAL = frozenset({"guard", "guardian", "shield", "embed", "embedding", "vision", "vl",
                      "audio", "whisper", "tts", "rerank", "reranker", "moderation", "omni",
                      "ocr", "pixtral"})  # fmt: skip
MAX_SIZE_RATIO = 1.5
"""A hosted model more than 1.5 times bigger or smaller is no comparison."""
_WORD = re.compile(r"[a-z0-9]+")
VARIANTS = frozenset({
    "instruct", "chat", "it", "hf", "turbo", "instant", "versatile", "specdec", "fast", "fp8",
    "fp16", "bf16", "awq", "gptq", "int4", "int8", "meta", "preview", "latest", "base",
    "text", "model", "ai", "quantized", "quantised", "dynamic", "bnb", "gguf", "exl", "mlx",
    "nf", "q",
})  # fmt: skip
"""Words a hosting provider or a quantised checkpoint adds to a model's name without making
it another model (quantized.w4a16, FP8-dynamic, bnb-4bit, GGUF)."""
_SHAPES = frozenset({"", "v", "b", "k", "e", "a", "x", "p", "r", "m", "ab", "xb", "vp", "bf",
                     "fp", "int", "wa", "bit"})  # fmt: skip
"""What is left of versions, sizes, context lengths and quantisations without their digits
(v0.2, 8b, 32k, 1m, 128e, a22b, 8x7b, v3p1, bf16, r1, w4a16, 4bit)."""
_GENERATION = re.compile(r"^[-_ ]?v?(\d+(?:[.p]\d+)?)(?![0-9.]*[bx])")
_MOE = re.compile(r"(?<![a-z0-9.])(\d+)x(\d+(?:\.\d+)?)b(?![a-z0-9])")
_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)b(?![a-z0-9])")


@dataclass(frozen=True)
class ModelIdentity:
    family: str
    generation: str | None
    billions: float | None
    special: frozenset[str]
    """Words marking a non-text or auxiliary model (guard, embed, vision...)."""
    words: frozenset[str]
    """The name's other words (fine-tunes and merges are told apart by them)."""

    def describe(self) -> str:
        size = "" if self.billions is None else f", {self.billions:g}B"
        return f"{self.family} {self.generation or ''}".strip() + size


@lru_cache(maxsize=16384)
def identify(name: str) -> ModelIdentity | None:
    """The family, generation and size a model name says, or None for no known family."""
    text = name.lower().rsplit("/", 1)[-1] if "/" in name else name.lower()
    found = [(text.find(f), f) for f in FAMILIES if f in text]
    if not found:
        return None
    at, family = min(found)  # the earliest family named (deepseek-r1-distill-llama: deepseek)
    rest = text[at + len(family) :]
    gen = _GENERATION.match(rest)
    generation = gen.group(1).replace("p", ".") if gen else None
    after = rest[gen.end() :] if gen else rest
    moe = _MOE.search(after)
    size = _SIZE.search(after)
    billions = None
    if moe:
        billions = int(moe.group(1)) * float(moe.group(2))
    elif size:
        billions = float(size.group(1))
    words = frozenset(_WORD.findall(text))
    letters = frozenset(re.sub(r"\d+", "", w) for w in words)  # typhoon2 -> typhoon
    special = frozenset(w for w in letters if w in _SPECIAL or (w != family and family in w))
    plain = letters - VARIANTS - _SHAPES - {family, *family.split("-")} - special
    return ModelIdentity(family, generation, billions, special, plain)


def nearest(served: ModelIdentity, candidates: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (provider, model) candidates nearest to `served`, all equally near (the caller
    picks among them, e.g. the cheapest); empty when none is of its family and size."""
    if served.billions is None or served.billions <= 0:
        return []
    ranked: list[tuple[tuple[float, int], tuple[str, str]]] = []
    for provider, model in candidates:
        other = identify(model)
        if other is None or other.family != served.family or not other.billions:
            continue
        if other.special != served.special or other.words != served.words:
            continue  # another kind of model, or a fine-tune or merge (of either)
        distance = round(abs(math.log(other.billions / served.billions)), 3)
        if distance > math.log(MAX_SIZE_RATIO) + 1e-9:
            continue
        ranked.append(((distance, int(other.generation != served.generation)), (provider, model)))
    if not ranked:
        return []
    best = min(key for key, _ in ranked)
    return [c for key, c in ranked if key == best]
