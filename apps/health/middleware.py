from .views import liveness, readiness

PROBES = {"/healthz": liveness, "/readyz": readiness}


class HealthCheckMiddleware:
    """Answer /healthz and /readyz before anything else runs.

    Docker and Kubernetes probe a container by its own address, which is no
    allowed host, so the Host check in CommonMiddleware would answer 400. These
    two views read nothing from the request, so skipping that check is safe;
    every other path goes through the full middleware stack.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        probe = PROBES.get(request.path_info)
        if probe is not None:
            return probe(request)
        return self.get_response(request)
