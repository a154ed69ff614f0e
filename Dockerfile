# The gateway image: FastAPI, the intake rules, and guideline retrieval (a small CPU embedder
# for queries, FAISS, BM25). It never runs the chat model itself; point it at GPU vLLM
# workers with CLINSERVE_WORKERS (see deploy/compose.yaml). Build from the repository root:
#   docker build -t clinserve-gateway .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cli ./cli
COPY server ./server
COPY weights ./weights
COPY perturbation ./perturbation
COPY retrieval ./retrieval
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 clinserve
COPY --from=build /wheels /wheels
# CPU torch first (PyPI's default torch is a CUDA build of several GB).
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install --no-cache-dir "$(ls /wheels/clinserve-*.whl)[retrieval]" && rm -rf /wheels
COPY data/guidelines /opt/clinserve/guidelines
# The alembic migrations live beside the packages, not inside the wheel.
COPY migrations /opt/clinserve/migrations
USER clinserve
ENV CLINSERVE_HOST=0.0.0.0 \
    CLINSERVE_PORT=8000 \
    CLINSERVE_DATA_DIR=/home/clinserve/data \
    CLINSERVE_RETRIEVAL__CORPUS=/opt/clinserve/guidelines \
    CLINSERVE_MIGRATIONS_DIR=/opt/clinserve/migrations
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/health')" || exit 1
# SIGTERM drains in-flight requests (CLINSERVE_DRAIN_TIMEOUT_S) before exiting.
STOPSIGNAL SIGTERM
ENTRYPOINT ["clinserve", "serve"]
