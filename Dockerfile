# One image with every Slipway binary under /usr/local/bin; WorkflowTemplates
# pick the binary by `command`, and an init container puts a step into the
# app's own image with `<step> --install DIR` (there is no shell or cp here).
#   make image         docker or buildah, whichever is present
#   make image-check   this file's final stage built with buildah on the
#                      binaries built here, then every binary run in it
# Base images are build arguments without a registry host: the builder's own
# registries (or a mirror) resolve them.
ARG GO_IMAGE=golang:1.26-bookworm
ARG BASE_IMAGE=scratch

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The Makefile is the one place that knows how each binary is built
# statically (-trimpath; migrate's PostgreSQL parser linked with -static):
# /rootfs gets the binaries, the CA certificates and the user 8737.
RUN make rootfs ROOTFS=/rootfs

# Everything the final stage holds comes from /rootfs of the build stage
# (hack/image-check.sh stands a local folder in for that stage).
FROM ${BASE_IMAGE}
COPY --from=build /rootfs/ /
ENV PATH=/usr/local/bin
# uid 8737 is the one that can read Argo's agent token (the promoter plugin).
USER 8737:8737
