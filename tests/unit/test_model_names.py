"""Model names as hubs and hosting providers write them (Hugging Face ids; the ids
genai-prices 0.2.3 lists for Groq, Fireworks, Cerebras, Together, OpenRouter, Cloudflare),
and the nearest hosted model to a self-hosted one (domain/model_names.py,
catalog/hosted.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from costgov.api import InferenceDeployment
from costgov.catalog.hosted import HostedPrices
from costgov.domain.catalogs import HostedModelPrice, PriceCatalog
from costgov.domain.model_names import identify, nearest
from costgov.services.inference_reconciling import served_model

from .helpers import CATALOG


@pytest.mark.parametrize(
    ("name", "family", "generation", "billions"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "llama", "3.1", 8),
        ("llama-3.1-8b-instant", "llama", "3.1", 8),  # groq
        ("llama-v3p1-8b-instruct", "llama", "3.1", 8),  # fireworks
        ("llama3-8b-8192", "llama", "3", 8),  # groq: 8192 is the context, not a size
        ("llama3.1-8b", "llama", "3.1", 8),  # cerebras
        ("Qwen/Qwen1.5-14B", "qwen", "1.5", 14),
        ("qwen3-235b-a22b", "qwen", "3", 235),  # total, not active, parameters
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mixtral", None, 56),
        ("google/gemma-2-9b-it", "gemma", "2", 9),
        ("deepseek-r1-distill-llama-70b", "deepseek", None, 70),  # the earliest family named
        ("microsoft/Phi-3-mini-4k-instruct", "phi", "3", None),  # no size in the name
    ],
)
def test_identify(name: str, family: str, generation: str | None, billions: float | None) -> None:
    found = identify(name)
    assert found is not None
    assert (found.family, found.generation, found.billions) == (family, generation, billions)


@pytest.mark.parametrize(
    ("served", "never"),
    [
        ("meta-llama/Llama-3.1-70B-Instruct", "llama-3.1-nemotron-70b-instruct"),  # NVIDIA's tune
        ("ibm-granite/granite-guardian-3.1-8b", "granite-3.1-8b-instruct"),  # a guard model
        ("google/shieldgemma-2b", "gemma-2b-it"),  # a safety classifier
        ("google/paligemma-3b-pt-224", "gemma-3-4b-it"),  # a vision model
        ("deepseek-ai/deepseek-llm-67b-chat", "deepseek-r1-0528-qwen3-8b"),  # another line
        ("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "deepseek-r1-distill-qwen-7b"),
        ("allenai/OLMo-2-1124-13B", "olmo-3-7b"),  # 1.9 times smaller
    ],
)
def test_never_compared(served: str, never: str) -> None:
    identity = identify(served)
    assert identity is not None
    assert nearest(identity, [("x", never)]) == []


def test_names_of_no_known_family() -> None:
    assert identify("gpt-4o-mini") is None and identify("my-own-model") is None


def test_nearest_takes_size_then_generation_and_never_a_finetune_or_another_kind() -> None:
    served = identify("meta-llama/Llama-3.1-8B-Instruct")
    assert served is not None
    candidates = [
        ("groq", "llama-3.1-8b-instant"),
        ("groq", "llama3-8b-8192"),  # same size, older generation
        ("groq", "llama-3.1-70b-versatile"),  # same generation, another size
        ("openrouter", "neversleep/llama-3.1-lumimaid-8b"),  # a fine-tune
        ("openrouter", "scb10x/llama3.1-typhoon2-8b-instruct"),  # a fine-tune
        ("groq", "llama-guard-3-8b"),  # a guard model
        ("cloudflare", "@cf/meta/llama-3.1-8b-instruct-fp8"),  # the same, quantised
        ("together", "Qwen/Qwen1.5-7B"),  # another family
    ]
    assert nearest(served, candidates) == [
        ("groq", "llama-3.1-8b-instant"),
        ("cloudflare", "@cf/meta/llama-3.1-8b-instruct-fp8"),
    ]
    assert nearest(served, [("groq", "llama3-8b-8192")]) == [("groq", "llama3-8b-8192")]
    unsized = identify("microsoft/Phi-3-mini-4k-instruct")
    assert unsized is not None and nearest(unsized, [("x", "phi-3-mini-4k")]) == []


def test_hosted_prices_pick_the_cheapest_nearest_from_genai_prices() -> None:
    # genai-prices 0.2.3: the Llama 3.1 8B Instruct offers it prices; the cheapest at 75 %
    # input is huggingface_novita's (0.02 input, 0.05 output per 1M tokens):
    # 0.75 x 0.02 + 0.25 x 0.05 = 0.0275 (groq's 0.05 / 0.08 blends to 0.0575)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    found = HostedPrices(CATALOG).nearest("meta-llama/Llama-3.1-8B-Instruct", at, Decimal("0.75"))
    assert found is not None
    price, why = found
    assert (price.provider, price.model) == (
        "huggingface_novita",
        "meta-llama/Llama-3.1-8B-Instruct",
    )
    assert (price.input, price.output) == (Decimal("0.02"), Decimal("0.05"))
    assert "llama 3.1, 8B" in why and "cheapest of" in why
    assert HostedPrices(CATALOG).nearest("gpt-4o", at, Decimal("0.75")) is None
    assert HostedPrices(CATALOG).nearest("llama-0b", at, Decimal("0.75")) is None


def test_a_candidate_is_priced_as_its_own_provider_lists_it() -> None:
    # genai-prices 0.2.3: OpenRouter lists deepseek/deepseek-r1-distill-qwen-32b at 0.12 /
    # 0.18; DeepSeek's own deepseek-reasoner (a prefix rule "deepseek-r1...") at 0.55 / 2.19
    # must not stand in for it; noon UTC, not DeepSeek's off-peak discount
    at = datetime(2026, 12, 1, tzinfo=UTC)
    prices = HostedPrices(CATALOG)
    found = prices.nearest("deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", at, Decimal("0.75"))
    assert found is not None
    assert (found[0].provider, found[0].input, found[0].output) == (
        "openrouter", Decimal("0.12"), Decimal("0.18"))  # fmt: skip
    named = prices.price("openrouter", "deepseek/deepseek-r1-distill-qwen-32b", at)
    assert named is not None and named.provider == "openrouter"
    reasoner = prices.price("deepseek", "deepseek-reasoner", at)
    assert reasoner is not None and (reasoner.input, reasoner.output) == (
        Decimal("0.55"), Decimal("2.19"))  # fmt: skip


def test_the_served_model_comes_from_spec_or_the_servers_arguments() -> None:
    def idep(spec: dict[str, object]) -> InferenceDeployment:
        return InferenceDeployment.model_validate({
            "apiVersion": "costgov.io/v1alpha1", "kind": "InferenceDeployment",
            "metadata": {"name": "m", "namespace": "ns"},
            "spec": {"image": "vllm/vllm-openai:v0.11.0", "gpu": {"model": "L4"}, **spec},
        })  # fmt: skip

    assert served_model(idep({"args": ["--model", "Qwen/Qwen3-32B", "--port", "8000"]})) == (
        "Qwen/Qwen3-32B"
    )
    assert served_model(idep({"args": ["--model=google/gemma-2-9b-it"]})) == "google/gemma-2-9b-it"
    assert served_model(idep({"args": ["serve", "mistralai/Mistral-7B-v0.1"]})) == (
        "mistralai/Mistral-7B-v0.1"
    )
    both = {"model": "meta-llama/Llama-3.1-8B-Instruct", "args": ["--model", "other"]}
    assert served_model(idep(both)) == "meta-llama/Llama-3.1-8B-Instruct"
    assert served_model(idep({"args": ["--port", "8000"]})) is None
    # the vllm/vllm-openai image's entrypoint is `vllm serve`: its args start with the model
    assert served_model(idep({"args": ["Qwen/Qwen3-8B", "--port", "8000"]})) == "Qwen/Qwen3-8B"
    # a command line in args: the flag or `serve` decides, not the first word
    assert served_model(idep({"args": ["vllm", "serve", "Qwen/Qwen3-8B"]})) == "Qwen/Qwen3-8B"
    module = ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "Qwen/Qwen3-8B"]
    assert served_model(idep({"args": module})) == "Qwen/Qwen3-8B"
    sglang = ["python3", "-m", "sglang.launch_server", "--model-path", "Qwen/Qwen3-8B"]
    assert served_model(idep({"args": sglang})) == "Qwen/Qwen3-8B"


@pytest.mark.parametrize(
    "checkpoint",
    [
        "RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w4a16",
        "RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8-dynamic",
        "unsloth/Meta-Llama-3.1-8B-Instruct-bnb-4bit",
    ],
)
def test_a_quantised_checkpoint_is_compared_like_its_base_model(checkpoint: str) -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    base = HostedPrices(CATALOG).nearest("meta-llama/Llama-3.1-8B-Instruct", at, Decimal("0.75"))
    found = HostedPrices(CATALOG).nearest(checkpoint, at, Decimal("0.75"))
    assert found is not None and base is not None and found[0] == base[0]


def test_opentelemetry_provider_names_reach_a_pricing_files_entry() -> None:
    # gen_ai.provider.name "azure.ai.openai" (older gen_ai.system "az.ai.openai") is Azure:
    # a contract rate for azure/gpt-4o applies to it, not OpenAI's list price
    contract = PriceCatalog(version="t", models=[HostedModelPrice(
        provider="azure", model="gpt-4o", input_per_m_tokens=Decimal("2.00"),
        output_per_m_tokens=Decimal("8.00"), source="contract",
        effective_date=date(2026, 1, 1))])  # fmt: skip
    prices = HostedPrices(CATALOG.merged(contract))
    at = datetime(2026, 12, 1, tzinfo=UTC)
    for provider in ("azure", "azure.ai.openai", "az.ai.openai"):
        price = prices.price(provider, "gpt-4o", at)
        assert price is not None and (price.input, price.output) == (
            Decimal("2.00"),
            Decimal("8.00"),
        )
