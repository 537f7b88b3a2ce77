# The one Onceflow binary: worker, api, dev, send, status, cancel, ping.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Pure Go (the embedded dev server's SQLite too), so the binary is static.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/onceflow ./cmd/onceflow

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/onceflow /onceflow
USER nonroot:nonroot
ENTRYPOINT ["/onceflow"]
CMD ["worker"]
