from django.conf import settings
from django.shortcuts import redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_http_methods

from .forms import UploadForm
from .uploads import upload_list, upload_save
from .visits import visit_record, visit_remember

# How long browsers and nginx (which micro-caches public responses, see
# nginx/default.conf.template) may reuse the about page without asking Django.
ABOUT_MAX_AGE = 60


@require_http_methods(["GET", "POST"])
def home(request):
    """The page, and the upload form it posts to itself: a file that is saved
    is followed by a redirect (so a reload does not send it again); one that
    is refused shows the page again with the reason, as a 400."""
    status = 200
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload_save(session=request.session, file=form.cleaned_data["file"])
            return redirect("home")
        status = 400
    else:
        form = UploadForm()
    visits = visit_record(request=request)
    uploads = upload_list(session=request.session)
    context = {
        "visits": visits,
        "form": form,
        "uploads": uploads,
        "upload_max_bytes": settings.UPLOAD_MAX_BYTES,
    }
    response = render(request, "demo/home.html", context, status=status)
    visit_remember(response, visits=visits)
    return response


@cache_control(public=True, max_age=ABOUT_MAX_AGE)
def about(request):
    """The same for every visitor: no session, no cookie, so any cache may keep it."""
    return render(request, "demo/about.html")
