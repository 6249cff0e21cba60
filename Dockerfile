# ecocase API image: the runtime lock (requirements/main.lock) and the project, non-root.
#   docker build -t ecocase .   |   docker compose up --build   (see compose.yaml)

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
RUN pip install uv==0.13.9
WORKDIR /src
# Dependencies first, so that a code change does not re-install them.
COPY requirements/main.lock requirements/dev.lock requirements/
RUN uv venv --python /usr/local/bin/python3 /opt/venv \
 && uv pip sync --python /opt/venv/bin/python requirements/main.lock
COPY pyproject.toml README.md ./
COPY domain/ domain/
COPY application/ application/
COPY interfaces/ interfaces/
COPY workers/ workers/
# hatchling is not a runtime dependency: build in an isolated env pinned by dev.lock.
RUN uv pip install --python /opt/venv/bin/python --no-deps \
      --build-constraints requirements/dev.lock .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/ecocase ecocase \
 && mkdir -p /app/var \
 && chown ecocase:ecocase /app/var
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER ecocase
EXPOSE 8000
CMD ["ecocase", "serve", "--host", "0.0.0.0", "--port", "8000"]
