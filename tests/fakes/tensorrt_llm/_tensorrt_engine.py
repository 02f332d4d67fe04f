"""Fake ``tensorrt_llm._tensorrt_engine``: the LLM class that builds a TensorRT engine."""

from tests.fakes.tensorrt_llm import TrtLLM as LLM

__all__ = ["LLM"]
