# llem worker image for the vLLM engine (vLLM's own image brings CUDA, torch and vLLM 0.32).
#   docker build -f docker/vllm.Dockerfile -t ghcr.io/llem/vllm:v$(python -c 'import llem; print(llem.__version__)') .
FROM vllm/vllm-openai:v0.32.0

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_DISABLE_TELEMETRY=1

WORKDIR /opt/llem
COPY pyproject.toml README.md ./
COPY conf ./conf
COPY src ./src
# Keep the torch, transformers and vLLM the base image pins; llem's other dependencies install around them.
RUN pip freeze | grep -iE '^(torch|transformers|tokenizers|vllm)==' > /tmp/base-pins.txt \
    && pip install ".[zeus]" --constraint /tmp/base-pins.txt \
    && python3 -c "import llem.worker, vllm"

# The base image's entrypoint is vLLM's API server: replace it with llem's worker.
ENTRYPOINT ["python3", "-m", "llem.worker"]
