# One image with every Slipway binary; WorkflowTemplates pick the binary by
# `command`. Build: docker build -t slipway . (or buildah bud --storage-driver
# vfs --isolation chroot -t slipway .)
#
# cgo is on: migrate's lint uses PostgreSQL's own parser (pg_query_go), so
# the runtime image keeps glibc.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 make build

FROM debian:bookworm-slim
# git is not needed at run time (go-git speaks the protocol); CA
# certificates are, for HTTPS remotes, S3 and Slack.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/bin/ /usr/local/bin/
# uid 8737 can read Argo's agent token file (/var/run/argo/token).
USER 8737:8737
ENTRYPOINT []
