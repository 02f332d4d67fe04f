"""The vLLM engine (vLLM 0.32's offline ``LLM`` API): :class:`llem.engines.vllm.engine.VllmEngine`."""
