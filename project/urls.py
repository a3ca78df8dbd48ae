from django.contrib import admin
from django.urls import include, path

# /healthz and /readyz are answered before URL routing, by
# apps.health.middleware.HealthCheckMiddleware.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("apps.demo.urls")),
]

# A database outage answers 503 "try again", not 500.
handler500 = "project.views.server_error"
