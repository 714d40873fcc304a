# The pipeline binary in a small image. Build: docker build -t domainflow/pipeline .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# pipeline version reports these (the build has no .git):
#   docker build --build-arg REVISION=$(git rev-parse HEAD) --build-arg VERSION=$(git describe --tags --always) .
ARG VERSION=
ARG REVISION=
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.ldVersion=${VERSION} -X main.ldRevision=${REVISION}" -o /out/pipeline ./cmd/pipeline

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pipeline /usr/local/bin/pipeline
COPY --from=build /src/testdata/mixed-small.jsonl.gz /data/mixed-small.jsonl.gz
ENTRYPOINT ["/usr/local/bin/pipeline"]
CMD ["--help"]
