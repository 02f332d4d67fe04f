# llem worker image for the Hugging Face Transformers engine.
#   docker build -f docker/transformers.Dockerfile -t ghcr.io/llem/transformers:v$(python -c 'import llem; print(llem.__version__)') .
# The container runs one job: `docker run ... IMAGE /path/to/job_dir` (llem's docker runner builds the command).
FROM pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_DISABLE_TELEMETRY=1

WORKDIR /opt/llem
COPY pyproject.toml README.md ./
COPY conf ./conf
COPY src ./src
# torch comes from the base image; the extras add the energy samplers and quantisation.
RUN pip install ".[zeus,bitsandbytes]" && python -c "import llem.worker"

ENTRYPOINT ["python", "-m", "llem.worker"]
