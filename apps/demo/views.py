from datetime import timedelta

from django.conf import settings
from django.shortcuts import redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_http_methods

from apps.core.clients import client_network

from .forms import UploadForm
from .uploads import UploadRefused, upload_list, upload_save
from .visits import visit_record, visit_remember

# How long browsers and nginx (which micro-caches public responses, see
# nginx/default.conf.template) may reuse the about page without asking Django.
ABOUT_MAX_AGE = 60


@require_http_methods(["GET", "POST"])
def home(request):
    """The page, and the upload form it posts to itself: a file that is saved
    is followed by a redirect (so a reload does not send it again); one that
    is refused shows the page again with the reason: a 400 for the file
    itself, a 429 past its sender's quota, a 413 when the store is full."""
    status = 200
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        status = 400
        if form.is_valid():
            try:
                upload_save(
                    session=request.session,
                    file=form.cleaned_data["file"],
                    client=client_network(request.META.get("REMOTE_ADDR")),
                    account=request.user if request.user.is_authenticated else None,
                )
                return redirect("home")
            except UploadRefused as refused:
                form.add_error("file", refused.message)
                status = refused.status
    else:
        form = UploadForm()
    visits = visit_record(request=request)
    uploads = upload_list(session=request.session)
    context = {
        "visits": visits,
        "form": form,
        "uploads": uploads,
        "upload_max_bytes": settings.UPLOAD_MAX_BYTES,
        "upload_quota_bytes": settings.DEMO_UPLOAD_QUOTA_BYTES,
        "uploads_keep_hours": settings.DEMO_UPLOADS_KEEP // timedelta(hours=1),
    }
    response = render(request, "demo/home.html", context, status=status)
    visit_remember(response, visits=visits)
    return response


@cache_control(public=True, max_age=ABOUT_MAX_AGE)
def about(request):
    """The same for every visitor: no session, no cookie, so any cache may keep it."""
    return render(request, "demo/about.html")
