# chatload's image: the same for the master (chatload run --master) and the workers
# (chatload worker). It holds no scenario and no secret: workers take both from the master,
# the master from its mounted scenario and the CODER_SESSION_TOKEN of a Kubernetes Secret.
#
#   docker build -t chatload:0.1.0 .
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/chatload
COPY pyproject.toml README.md ./
COPY loadtest ./loadtest
COPY scenarios ./scenarios
RUN pip install --quiet . && useradd --create-home --uid 10001 chatload

USER chatload
WORKDIR /home/chatload
# 5557: the master's port for its workers; 21112: --prometheus; 8089: --web.
EXPOSE 5557 21112 8089
ENTRYPOINT ["chatload"]
CMD ["--help"]
