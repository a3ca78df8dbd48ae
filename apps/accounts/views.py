"""allauth's views for the links people follow from their mail, answering a
link that no longer works with a 4xx status as well as allauth's page saying
so: a forged, used or expired link is a request that cannot be done (allauth
answers 200). The rest of /accounts/ is allauth's own (urls.py)."""

from allauth.account.views import ConfirmEmailView, PasswordResetFromKeyView
from django.http import HttpResponse


class EmailConfirm(ConfirmEmailView):
    def get(self, *args, **kwargs) -> HttpResponse:
        response = super().get(*args, **kwargs)
        if self.object is None:  # no such confirmation, or no longer valid
            response.status_code = 404
        return response


class PasswordResetFromKey(PasswordResetFromKeyView):
    def dispatch(self, request, *args, **kwargs) -> HttpResponse:
        response = super().dispatch(request, *args, **kwargs)
        # allauth's page for a forged, used or expired link has token_fail.
        context = getattr(response, "context_data", None) or {}
        if context.get("token_fail"):
            response.status_code = 400
        return response
