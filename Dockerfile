# trellis-slack: the bot in Socket Mode (it connects out to Slack and Trellis; nothing connects in
# except the optional health/metrics port).
#   docker build -t trellis-slack .
#   docker run --env-file .env -v trellis-data:/data trellis-slack

# Build stage: the project as a wheel, so the runtime image gets neither the source tree nor the
# build's leftovers.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY trellis_slack ./trellis_slack
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The runtime dependencies only (no dev extras).
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels

# A non-root user that owns the state volume. VOLUME comes after the chown: changes made to a
# volume's path after it is declared would be thrown away.
RUN groupadd --system --gid 10001 trellis \
    && useradd --system --uid 10001 --gid trellis --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin trellis \
    && mkdir /data \
    && chown trellis:trellis /data
VOLUME /data

ENV TRELLIS_SLACK_DB=/data/trellis-slack.db \
    MPLCONFIGDIR=/tmp/matplotlib \
    HEALTH_PORT=8080
EXPOSE 8080

# Numeric so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /data
# Build matplotlib's font cache now, as the user, so the first chart does not wait for it.
RUN python -c "import matplotlib.font_manager"

# Healthy while the bot's /healthz answers 200 (Slack socket connected, Trellis reachable).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HEALTH_PORT', '8080'), timeout=3)"]

# Exec form: the bot is PID 1 and receives SIGTERM from `docker stop` itself, so it finishes the
# answers in progress (up to 10 s) before it exits. Give it time: `docker stop -t 30`.
ENTRYPOINT ["trellis-slack"]
CMD ["run"]
