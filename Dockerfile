# One image for every service; the command chooses it: `python -m services.<name>`.
# Build: docker build -t trial-backend:$(git rev-parse --short HEAD) .

FROM python:3.11-slim-bookworm AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/venv UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /src
COPY pyproject.toml uv.lock ./
# Only the runtime dependencies, exactly as locked: no test tools, no embedded servers, and not the libraries'
# own test suites (about 55 MB of scipy's, numpy's and matplotlib's).
RUN uv sync --frozen --no-default-groups --no-install-project \
 && find /opt/venv -depth -type d -name tests -exec rm -rf {} +
COPY shared ./shared
COPY services ./services
COPY ops ./ops
COPY protocol ./protocol
RUN python -m compileall -q shared services ops

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 trial \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin trial
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROTOCOL_FILE=/app/protocol/NCT06646146.yaml
WORKDIR /app
USER 10001:10001
EXPOSE 8000 8200 8081
ENTRYPOINT ["python", "-m"]
CMD ["services.gateway"]
