# Opsroom: the bot (python -m bot serve) on port 3978, as a non-root user.
#
#   docker build -t opsroom .
#   docker run --rm --env-file opsroom.env opsroom python -m bot db upgrade    # migrations: a separate step
#   docker run -d -p 3978:3978 --env-file opsroom.env \
#       -v /run/secrets/opsroom/audit-signing-key.pem:/run/secrets/audit-signing-key.pem:ro opsroom
#
# docs/DEPLOY.md says what goes in opsroom.env (nothing secret is baked into the image) and how to run
# it in Azure. PostgreSQL is the production store; var/ (SQLite, the local-mode signing key) is for
# trying it out only.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=3978

RUN groupadd --system --gid 10001 opsroom \
    && useradd --system --uid 10001 --gid opsroom --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin opsroom

WORKDIR /app

# The pinned versions `make setup` installs (constraints.txt), without the dev extras. Installed in
# place (-e), as make setup does: the shipped templates/ and policies/oversight.toml are found beside
# the code. The sources stay root's: the bot cannot change its own code or policy.
COPY . .
RUN pip install -c constraints.txt -e . \
    && python -m compileall -q bot core dialogs policies \
    && install -d -o opsroom -g opsroom -m 0700 /app/var

USER 10001:10001

EXPOSE 3978

# /healthz answers while the process lives (no curl in slim images: Python asks).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3978'), timeout=4)"]

CMD ["python", "-m", "bot", "serve"]
