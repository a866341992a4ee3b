ARG BASE=127.0.0.1:5000/library/busybox:latest
FROM ${BASE}
COPY --chown=nosuchuser present.txt /p
