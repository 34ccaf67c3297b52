# host/api: the HTTP API links libmicrohttpd (Debian libmicrohttpd-dev, in
# scripts/deps.sh core).  Its tests: tests/unit/test_openai.c (found by the
# top-level wildcard), tests/sh/http_*.sh and tests/npm (run by tests/run.sh).
EXTRA_LIBS += -lmicrohttpd
