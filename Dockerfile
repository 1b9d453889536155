# The fabbrica image: the simulated pilot line, the connectors and the twin's command line.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY foundation ./foundation
COPY twin ./twin
COPY twinloop ./twinloop
COPY connectors ./connectors
COPY simulations ./simulations
COPY fabbrica ./fabbrica
RUN pip install --no-cache-dir . && useradd --system --create-home fabbrica
COPY deploy ./deploy
USER fabbrica
ENTRYPOINT ["fabbrica"]
CMD ["--help"]
