# Runs `cutover node` with the same install steps as the README (npm ci on Node 20).
# Not built in CI: this workplace has no Docker engine. See docker-compose.yml for 3 nodes.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY bin ./bin
COPY proto ./proto
COPY src ./src
ENV CUTOVER_DATA_DIR=/data CUTOVER_LISTEN=0.0.0.0:7001
VOLUME ["/data"]
EXPOSE 7001 9101
ENTRYPOINT ["node", "bin/cutover.js", "node"]
