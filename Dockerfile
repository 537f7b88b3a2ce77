# The Onceflow binary users deploy: worker, api, send, status, cancel, ping.
# Built with -tags nodev: no embedded Temporal server or Web UI (those are
# `onceflow dev`, for a workstation), and no chaos harness (its own command).
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Pure Go, so the binary is static.
RUN CGO_ENABLED=0 go build -tags nodev -trimpath -ldflags="-s -w" -o /out/onceflow ./cmd/onceflow

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/onceflow /onceflow
USER nonroot:nonroot
ENTRYPOINT ["/onceflow"]
CMD ["worker"]
