"""The TensorRT-LLM engine (TensorRT-LLM 1.2 LLM API: its PyTorch backend, or a built TensorRT engine)."""
