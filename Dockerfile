# One image for every paysaga part; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY domain domain
COPY settings settings
COPY db db
COPY activities activities
COPY workflows workflows
COPY worker worker
COPY api api
COPY fakegateway fakegateway
COPY devstack devstack
RUN pip install .
RUN useradd --create-home paysaga
USER paysaga
CMD ["python", "-m", "api"]
