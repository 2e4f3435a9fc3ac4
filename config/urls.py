from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from engagement import admin as engagement_admin
from newsletter.conf import app_settings

admin.site.site_header = "Masthead"
admin.site.site_title = "Masthead"
admin.site.index_title = "Newsroom"

_policy = {"version": app_settings.POLICY_VERSION}

urlpatterns = [
    path("privacy/", TemplateView.as_view(template_name="site/privacy.html", extra_context=_policy), name="privacy"),
    path("terms/", TemplateView.as_view(template_name="site/terms.html", extra_context=_policy), name="terms"),
    path("admin/engagement/", include((engagement_admin.urlpatterns, "engagement_admin"))),
    path("admin/", admin.site.urls),
    path("", include("api.urls")),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the language switch in site/base.html
    path("", include("newsletter.urls")),
    path("", include("subscribers.urls")),
    path("", include("engagement.urls")),
]

if app_settings.SERVE_MEDIA and not settings.MEDIA_URL.startswith(("http://", "https://")):
    from newsletter.media import media_file

    urlpatterns += [path(f"{settings.MEDIA_URL.strip('/')}/<path:name>", media_file, name="media")]

if settings.DEBUG:
    from newsletter import devmail

    urlpatterns += [
        path("dev/mail/", devmail.inbox, name="devmail"),
        path("dev/mail/<str:name>", devmail.message, name="devmail-message"),
    ]
