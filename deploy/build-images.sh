#!/bin/sh
# Build (and with --push, push) jobplane's two images with whichever OCI builder is here:
# docker, podman, nerdctl or buildah. Not run in CI (no daemon there).
#
#   deploy/build-images.sh [--push]
#   REGISTRY=europe-docker.pkg.dev/PROJECT/jobplane TAG=0.1.0 deploy/build-images.sh --push
#
# Then point the overlay at them: `images:` in knative/overlays/*/kustomization.yaml for the
# functions image, JOBPLANE_IMAGE_* in its settings.yaml for the trainer image.
set -eu

REGISTRY=${REGISTRY:-ghcr.io/jobplane}
TAG=${TAG:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
PUSH=no
[ "${1:-}" = "--push" ] && PUSH=yes

cd "$(dirname "$0")/.."

builder=${BUILDER:-}
if [ -z "$builder" ]; then
  for candidate in docker podman nerdctl buildah; do
    if command -v "$candidate" >/dev/null 2>&1; then builder=$candidate; break; fi
  done
fi
[ -n "$builder" ] || { echo "no OCI builder found (docker, podman, nerdctl or buildah)" >&2; exit 1; }

build() { # image dockerfile
  echo "$builder: building $1 from $2" >&2
  if [ "$builder" = buildah ]; then
    buildah bud --layers -f "$2" -t "$1" .
  else
    DOCKER_BUILDKIT=1 "$builder" build -f "$2" -t "$1" .
  fi
  if [ "$PUSH" = yes ]; then "$builder" push "$1"; fi
}

build "$REGISTRY/functions:$TAG" functions/Dockerfile
build "$REGISTRY/trainer:$TAG" trainer-image/Dockerfile
echo "built $REGISTRY/functions:$TAG and $REGISTRY/trainer:$TAG" >&2
