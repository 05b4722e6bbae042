# syntax=docker/dockerfile:1
# One image with the registry's binaries: the three services and cimctl. Kubernetes picks the
# binary with the container's command (deploy/k8s); `docker run IMAGE cimctl ...` works too.
#
#   docker build -t cim-registry:dev .

FROM --platform=$BUILDPLATFORM golang:1.26-alpine AS build
WORKDIR /src
# Modules first, so that a change of code alone reuses the downloaded modules.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
# Static binaries (no cgo): the final image has no libc.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/ \
      ./cmd/command-service ./cmd/projector-metrics ./cmd/projector-neo4j ./cmd/query-service ./cmd/cimctl

# distroless static: CA certificates, tzdata, /etc/passwd with nonroot (65532); no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
# No entrypoint: the command names the binary (they are on PATH), as the manifests do.
USER 65532:65532
