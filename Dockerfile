# The federation redirector's image: federation-deploy installed, run as `redirector serve`.
# Built from the repository root:  docker build -t federation-deploy:dev .
# The chart (federation_deploy/charts/federation-redirect) mounts config.json from a ConfigMap
# at /etc/federation-redirect and sets the same command explicitly.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY federation_deploy ./federation_deploy
RUN pip install . \
    && rm -rf /src \
    && groupadd --system --gid 10001 redirector \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin redirector

WORKDIR /
# numeric, so Kubernetes can check runAsNonRoot against it
USER 10001:10001
EXPOSE 8080
CMD ["federation-deploy", "redirector", "serve", "--config", "/etc/federation-redirect/config.json", "--port", "8080"]
