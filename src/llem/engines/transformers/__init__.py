"""The Hugging Face Transformers engine (``engine=transformers``)."""
