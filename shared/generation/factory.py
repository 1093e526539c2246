"""The generator RAG_GENERATOR names, built from settings (cheap: no network)."""

from __future__ import annotations

from shared.generation.base import Generator, Timeouts
from shared.generation.ollama import OllamaGenerator
from shared.generation.openai_compat import OpenAIChatGenerator
from shared.settings import GenerationSettings


def build_generator(settings: GenerationSettings) -> Generator | None:
    """The LLM generator, or None for 'extractive' (the answerer's own, no LLM)."""
    timeouts = Timeouts.from_settings(settings)
    if settings.generator == "openai":
        assert settings.llm_base_url is not None  # the settings validator guarantees it
        return OpenAIChatGenerator(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key,
            timeouts=timeouts,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
        )
    if settings.generator == "ollama":
        assert settings.llm_model is not None
        return OllamaGenerator(
            url=settings.ollama_url,
            model=settings.llm_model,
            timeouts=timeouts,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
        )
    return None
