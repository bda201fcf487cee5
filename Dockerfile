# One image for every paysaga part; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
# the packages of release/packages.py SHIPPED, in floor order (a test checks)
COPY domain domain
COPY settings settings
COPY contracts contracts
COPY telemetry telemetry
COPY db db
COPY gateway gateway
COPY bus bus
COPY workflows workflows
COPY routing routing
COPY fakegateway fakegateway
COPY release release
COPY temporal_client temporal_client
COPY activities activities
COPY api api
COPY worker worker
COPY devstack devstack
COPY deploy deploy
RUN pip install .
RUN useradd --create-home paysaga
USER paysaga
CMD ["python", "-m", "api"]
