# llem worker image for the TensorRT-LLM engine: NVIDIA's release image brings CUDA, torch, TensorRT and
# TensorRT-LLM 1.2.1 (llem's argument mapping follows it). It runs on NVIDIA GPUs only.
#   docker build -f docker/tensorrt.Dockerfile -t ghcr.io/llem/tensorrt:v$(python -c 'import llem; print(llem.__version__)') .
FROM nvcr.io/nvidia/tensorrt-llm/release:1.2.1

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_DISABLE_TELEMETRY=1

WORKDIR /opt/llem
COPY pyproject.toml README.md ./
COPY conf ./conf
COPY src ./src
# Keep the torch, transformers, TensorRT and TensorRT-LLM the base image pins; llem's other dependencies
# install around them. tensorrt_llm needs the GPU driver to import, which a build has not: only its
# presence is checked here.
RUN pip list --format=freeze \
        | grep -iE '^(torch|transformers|tokenizers|tensorrt|tensorrt[-_]llm|pydantic|nvidia-ml-py)==' \
        > /tmp/base-pins.txt \
    && pip install ".[zeus]" --constraint /tmp/base-pins.txt \
    && python3 -c "import importlib.util, llem.worker; assert importlib.util.find_spec('tensorrt_llm')"

ENTRYPOINT ["python3", "-m", "llem.worker"]
