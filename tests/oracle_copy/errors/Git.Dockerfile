ARG BASE=127.0.0.1:5000/library/busybox:latest
FROM ${BASE}
ADD https://github.com/moby/buildkit.git#v0.10.1 /src
