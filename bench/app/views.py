import time
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import render
from django.tasks import TaskResultStatus
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt
from django_tasks_db.models import DBTaskResult

from apps.core.tasks.probes import probe

# How long nginx's micro-cache (and browsers) may keep the public page.
PUBLIC_MAX_AGE = 60
# The slow view's wait: an external API call or a slow query.
SLOW_SECONDS = 0.2
# The most tasks one POST to /bench/tasks/ enqueues.
ENQUEUE_MAX = 10_000


def page(request):
    """A typical page of a site: it counts the visit in the session (a first
    visit creates one) and renders a template."""
    visits = request.session.get("visits", 0) + 1
    request.session["visits"] = visits
    return render(request, "bench/page.html", {"visits": visits})


def session_read(request):
    """A returning visitor's page (scenario 12): it reads the session its
    cookie names (the visit counter /bench/page/ stored) and renders a small
    template, and writes nothing. So the session's read is all the request
    asks of the session engine: a copy from Redis, or a PostgreSQL query."""
    return render(request, "bench/session.html", {"visits": request.session.get("visits", 0)})


def page_enqueue(request):
    """The same page, which also enqueues one task (the probe, which does
    nothing): what an enqueue adds to a request (scenario 11)."""
    probe.enqueue()
    return page(request)


@cache_control(public=True, max_age=PUBLIC_MAX_AGE)
def public(request):
    """The same for every visitor: no session, no cookie, so any cache may keep it."""
    return render(request, "bench/public.html")


def slow(request):
    """Waits on I/O for SLOW_SECONDS, holding its worker thread, and answers."""
    time.sleep(SLOW_SECONDS)
    return render(request, "bench/public.html")


@csrf_exempt
def tasks(request):
    """The probe tasks, for scenario 11 (bench/run.py talks to it; no browser).

    GET ?since=<epoch seconds>: the probes enqueued since then: how many, how
    many not finished yet, the first start and the last finish (epoch
    seconds); with &delays=1, each started one's pickup delay (enqueue to
    start, ms). "now" is the time to pass as since for what comes next.
    POST ?count=N: enqueue N probes in one transaction, so the worker finds
    them all at once. DELETE: every probe not running (those piled up while
    no worker ran, and the finished ones)."""
    probes = DBTaskResult.objects.filter(task_path=probe.module_path)
    if request.method == "POST":
        count = min(int(request.GET.get("count", 1)), ENQUEUE_MAX)
        with transaction.atomic():
            for _ in range(count):
                probe.enqueue()
        return JsonResponse({"enqueued": count, "now": time.time()})
    if request.method == "DELETE":
        deleted, _ = probes.exclude(status=TaskResultStatus.RUNNING).delete()
        return JsonResponse({"deleted": deleted})
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET", "POST", "DELETE"])
    since = datetime.fromtimestamp(float(request.GET.get("since", 0)), tz=UTC)
    finished = [TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED]
    rows = probes.filter(enqueued_at__gte=since)
    found = rows.aggregate(
        count=Count("pk"),
        unfinished=Count("pk", filter=~Q(status__in=finished)),
        failed=Count("pk", filter=Q(status=TaskResultStatus.FAILED)),
        first_started=Min("started_at"),
        last_finished=Max("finished_at"),
    )
    for key in ("first_started", "last_finished"):
        found[key] = found[key].timestamp() if found[key] else None
    if request.GET.get("delays") == "1":
        times = rows.filter(started_at__isnull=False).values_list("enqueued_at", "started_at")
        found["pickup_ms"] = [(s - e).total_seconds() * 1000 for e, s in times]
    return JsonResponse({**found, "now": time.time()})
