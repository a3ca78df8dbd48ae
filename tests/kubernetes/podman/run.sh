#!/usr/bin/env bash
# `make test`'s Kubernetes run: the local overlay, rendered, started by
# `podman kube play` with the images `make test` built, checked through the
# nginx pod and by the tasks the worker pods run, and removed (play.py says
# what podman can and cannot do).
#
#   tests/kubernetes/podman/run.sh TEST_PROJECT [--drain]
#
# TEST_PROJECT is the compose project `make test` built its images under
# (<project>-web, <project>-nginx, <project>-tests). The overlay is rendered by
# kubectl in the tests image, with secrets made for this run only.
set -o errexit -o nounset -o pipefail

project=${1:?usage: $0 TEST_PROJECT [--drain]}
shift
here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF="$here/containers.conf"

if ! command -v podman >/dev/null || ! command -v catatonit >/dev/null \
    && [ ! -x /usr/libexec/podman/catatonit ]; then
    echo "podman (4.3 or newer) and catatonit are needed for the Kubernetes run." >&2
    echo "On Debian or Ubuntu: sudo apt-get install podman catatonit python3-yaml" >&2
    exit 1
fi
if ! python3 -c 'import yaml' 2>/dev/null; then
    echo "PyYAML is needed for the Kubernetes run: sudo apt-get install python3-yaml" >&2
    exit 1
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

echo "--> rendering the local overlay (kubectl kustomize, in $project-tests)"
docker run --rm --user 10001 "$project-tests" sh -c '
    cp -r deploy/kubernetes /tmp/kubernetes
    deploy/kubernetes/overlays/local/make-secrets.sh /tmp/kubernetes/overlays/local >/dev/null
    kubectl kustomize /tmp/kubernetes/overlays/local' > "$scratch/local.yaml"

echo "--> copying the images into podman's store"
for image in "$project-web" "$project-nginx" postgres:17 redis:8.0; do
    id=$(docker image inspect --format '{{.Id}}' "$image")
    # podman keeps Docker's image ID: copy only what changed, and remove the
    # copy it replaces, which would otherwise pile up run after run.
    old=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
    if [ "$old" != "${id#sha256:}" ]; then
        docker save "$image" | podman load --quiet >/dev/null
        if [ -n "$old" ]; then podman rmi --force "$old" >/dev/null 2>&1 || true; fi
    fi
done

echo "--> podman kube play"
python3 "$here/play.py" "$scratch/local.yaml" "$project-k8s" \
    "localhost/$project-web:latest" "localhost/$project-nginx:latest" "$@"
