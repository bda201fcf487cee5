# One image for every paysaga part; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY domain domain
COPY contracts contracts
COPY settings settings
COPY db db
COPY gateway gateway
COPY bus bus
COPY activities activities
COPY workflows workflows
COPY worker worker
COPY api api
COPY fakegateway fakegateway
COPY devstack devstack
COPY codec codec
COPY deploy deploy
RUN pip install .
RUN useradd --create-home paysaga
USER paysaga
CMD ["python", "-m", "api"]
