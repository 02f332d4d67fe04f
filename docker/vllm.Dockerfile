# llem worker image for the vLLM engine (vLLM's own image brings CUDA, torch and vLLM).
#   docker build -f docker/vllm.Dockerfile -t ghcr.io/llem/vllm:v$(python -c 'import llem; print(llem.__version__)') .
FROM vllm/vllm-openai:v0.11.0

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_DISABLE_TELEMETRY=1

WORKDIR /opt/llem
COPY pyproject.toml README.md ./
COPY conf ./conf
COPY src ./src
# Keep the torch and vLLM the base image pins; llem's other dependencies install around them.
RUN pip install ".[zeus]" && python -c "import llem.worker, vllm"

# The base image's entrypoint is vLLM's API server: replace it with llem's worker.
ENTRYPOINT ["python3", "-m", "llem.worker"]
