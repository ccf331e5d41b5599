# pgradar container image: `docker build -t pgradar:0.1.0 .`
# Build stage: build the wheel and install it into a virtual environment.
# Final stage: the same slim Python with only that environment copied in;
# no compiler, no pip, a numeric non-root user, nothing written at run time
# (works with a read-only root filesystem).
# PYTHON_IMAGE may be any Debian-like base with python3 (3.11+) and its venv
# module; tests/integration/test_image.py builds on one made of Debian's packages.
ARG PYTHON_IMAGE=python:3.12-slim-trixie

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY agent ./agent
COPY commands ./commands
COPY exporters ./exporters
COPY dashboards ./dashboards
COPY alerts ./alerts
COPY scripts/image_install.sh ./scripts/image_install.sh
RUN sh scripts/image_install.sh /src /opt/pgradar

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 pgradar \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin pgradar
COPY --from=build /opt/pgradar /opt/pgradar
ENV PATH=/opt/pgradar/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:10001
EXPOSE 9188
ENTRYPOINT ["pgradar", "run"]
