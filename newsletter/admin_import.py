"""The article admin's import page: an RSS/Atom feed (URL or file) or a JSON file, through the importing service.

GET shows the form; POST imports and needs the add-article permission (403 without it)."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _

from .services.importing import FORMATS, ImportSourceError, articles_import, format_guess, source_read

MAX_UPLOAD_BYTES = 10 * 1024 * 1024


class ArticleImportForm(forms.Form):
    url = forms.URLField(label=_("Feed URL"), required=False, assume_scheme="https")
    file = forms.FileField(label=_("or a file"), required=False, help_text=_("RSS, Atom or JSON."))
    format = forms.ChoiceField(
        choices=[("", _("Guess from the source")), *[(f, f.upper()) for f in FORMATS]], required=False
    )

    def clean(self):
        data = super().clean()
        if bool(data.get("url")) == bool(data.get("file")):
            raise forms.ValidationError(_("Give either a feed URL or a file, not both and not neither."))
        upload = data.get("file")
        if upload and upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than 10 MB."))
        return data


class ArticleImportAdminMixin:
    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name=f"{prefix}_import"),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "POST"):
            return HttpResponse(status=405, headers={"Allow": "GET, POST"})
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ArticleImportForm(request.POST or None, request.FILES or None)
        report = None
        if request.method == "POST" and form.is_valid():
            try:
                if form.cleaned_data["url"]:
                    data, name = source_read(form.cleaned_data["url"])
                else:
                    upload = form.cleaned_data["file"]
                    data, name = upload.read(), upload.name
                report = articles_import(data, form.cleaned_data["format"] or format_guess(name, data), name=name)
            except ImportSourceError as exc:
                form.add_error(None, str(exc))
            else:
                level = messages.WARNING if report.errors else messages.SUCCESS
                self.message_user(request, report.summary(), level)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Import articles"),
            "form": form,
            "report": report,
        }
        return TemplateResponse(request, "admin/newsletter/article/import.html", context)
