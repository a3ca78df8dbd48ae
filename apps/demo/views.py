from django.shortcuts import render

from .visits import visit_record


def home(request):
    visits = visit_record(session=request.session)
    return render(request, "demo/home.html", {"visits": visits})
