# One image for both processes of a deployment: `digest web` and `digest scheduler run`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DIGEST_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY digest ./digest
COPY jobs ./jobs
COPY templates ./templates
# Editable install: the package reads templates/ from beside it, as in a checkout.
RUN pip install --no-cache-dir -e . && useradd --system --home /data digest && mkdir -p /data \
    && chown digest /data
USER digest
VOLUME ["/data"]
EXPOSE 8000
CMD ["digest", "web", "--host", "0.0.0.0", "--port", "8000"]
