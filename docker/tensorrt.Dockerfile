# llem worker image for the TensorRT-LLM engine (NVIDIA's release image brings TensorRT-LLM).
#   docker build -f docker/tensorrt.Dockerfile -t ghcr.io/llem/tensorrt:v$(python -c 'import llem; print(llem.__version__)') .
FROM nvcr.io/nvidia/tensorrt-llm/release:1.0.0

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_DISABLE_TELEMETRY=1

WORKDIR /opt/llem
COPY pyproject.toml README.md ./
COPY conf ./conf
COPY src ./src
RUN pip install ".[zeus]" && python3 -c "import llem.worker, tensorrt_llm"

ENTRYPOINT ["python3", "-m", "llem.worker"]
