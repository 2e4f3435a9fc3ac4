"""Public pages: thin adapters between HTTP and the services. GET renders, POST changes; every link from an email
lands on a page with a button, because mail scanners follow links."""

import json

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from engagement.services.consent import reader_tracking_choices, reader_tracking_set
from newsletter.conf import app_settings
from newsletter.models import Newsletter

from .forms import PreferencesForm, SignupForm, consent_text
from .models import ConsentEvent, Subscriber
from .ratelimits import over_limit
from .services.addresses import address_masked
from .services.confirmation import ConfirmOutcome, subscriber_confirm
from .services.ledger import RequestMeta
from .services.preferences import subscriber_newsletter_ids, subscriber_preferences_update
from .services.privacy import subscriber_erase, subscriber_erase_request, subscriber_export, subscriber_export_request
from .services.signup import subscriber_signup_later
from .services.unsubscribe import subscriber_unsubscribe
from .tokens import BadToken, Purpose, make_token, read_token


class LinkProblem(Exception):
    def __init__(self, status: int):
        self.status = status


def _from_token(purpose: Purpose, token: str) -> tuple[Subscriber, Newsletter | None]:
    """The subscriber (and newsletter, if the link names one) a link is for. Raises LinkProblem(400) for a forged
    or cross-purpose token, LinkProblem(410) for an expired one or a person no longer on file (erased)."""
    try:
        data = read_token(purpose, token)
    except BadToken as exc:
        raise LinkProblem(410 if exc.expired else 400) from exc
    subscriber = Subscriber.objects.filter(token=data.subscriber_token).first()
    if subscriber is None:
        raise LinkProblem(410)
    # A newsletter deleted since the email was sent: act on the subscriber as a whole.
    newsletter = Newsletter.objects.filter(slug=data.newsletter).first() if data.newsletter else None
    return subscriber, newsletter


def _link_problem(request: HttpRequest, status: int) -> HttpResponse:
    return render(request, "subscribers/bad_link.html", {"expired": status == 410}, status=status)


def _too_many(request: HttpRequest) -> HttpResponse:
    response = render(request, "subscribers/ratelimited.html", status=429)
    response["Retry-After"] = "600"
    return response


def _link_view(purpose: Purpose):
    """Decorator: resolve the token in the URL into (subscriber, newsletter); rate-limit POSTs per IP and link."""

    def decorate(view):
        def wrapper(request: HttpRequest, token: str):
            try:
                subscriber, newsletter = _from_token(purpose, token)
            except LinkProblem as problem:
                return _link_problem(request, problem.status)
            if over_limit(request, "link", {"link_ip": "ip", "link_token": str(subscriber.token)}):
                return _too_many(request)
            return view(request, token, subscriber, newsletter)

        wrapper.__name__ = view.__name__
        wrapper.__doc__ = view.__doc__
        return wrapper

    return decorate


# --- Signup ----------------------------------------------------------------------------------------------------


def _signup(request: HttpRequest, newsletter: Newsletter, source: str) -> HttpResponse:
    form = SignupForm(request.POST, newsletter=newsletter)
    address = request.POST.get("email", "").strip().lower()[:254]
    if over_limit(request, "signup", {"signup_ip": "ip", "signup_address": address}):
        return _too_many(request)
    if not form.is_valid():
        return render(request, "subscribers/signup.html", {"form": form, "newsletter": newsletter}, status=400)
    if not form.is_bot:
        meta = RequestMeta.from_request(request)
        # Decided in a task: every address costs the request the same (no timing oracle).
        subscriber_signup_later(
            form.cleaned_data["email"],
            form.cleaned_data["name"],
            newsletter,
            consent_text(newsletter),
            newsletter_policy_version(),
            source,
            meta.ip,
            meta.user_agent,
            language=get_language() or "",
            measure=bool(form.cleaned_data.get("measure")),
            # Filled in by the page's script from the browser (Intl); checked against the IANA names.
            time_zone=request.POST.get("time_zone", "")[:64],
        )
    # The same page whatever happened: known, unknown, throttled or suppressed addresses look alike.
    return redirect("subscribers:signup_done", slug=newsletter.slug)


def newsletter_policy_version() -> str:
    return app_settings.POLICY_VERSION


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest, slug: str) -> HttpResponse:
    newsletter = get_object_or_404(Newsletter, slug=slug)
    if request.method == "POST":
        return _signup(request, newsletter, ConsentEvent.Source.FORM)
    form = SignupForm(newsletter=newsletter)
    return render(request, "subscribers/signup.html", {"form": form, "newsletter": newsletter})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def embed(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the copy-paste form for other sites. POST: where that form submits.

    CSRF-exempt by design, because a pasted form on another site can't carry our CSRF token. It is safe: the POST
    uses no ambient authority (no cookie or session is read), an anonymous signup never changes an active
    subscription, and its only effect is one rate-limited, throttled confirmation email to the address, which
    is exactly what anyone may cause by filling in the form themselves. Invalid input lands on our own signup
    page (with CSRF) to be corrected there."""
    newsletter = get_object_or_404(Newsletter, slug=slug)
    if request.method == "POST":
        return _signup(request, newsletter, ConsentEvent.Source.EMBED)
    form = SignupForm(newsletter=newsletter)
    context = {"form": form, "newsletter": newsletter, "site_url": settings.SITE_URL}
    snippet = render(request, "subscribers/embed_snippet.html", context).content
    return render(request, "subscribers/embed.html", {"newsletter": newsletter, "snippet": snippet.decode().strip()})


def signup_done(request: HttpRequest, slug: str) -> HttpResponse:
    newsletter = get_object_or_404(Newsletter, slug=slug)
    return render(request, "subscribers/signup_done.html", {"newsletter": newsletter})


# --- Confirm, unsubscribe, preferences -------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@_link_view(Purpose.CONFIRM)
def confirm(request, token, subscriber, newsletter):
    if newsletter is None:
        # Consent is to one newsletter: a link naming none (or one deleted since) has nothing to confirm.
        return _link_problem(request, 410)
    if request.method == "POST":
        outcome = subscriber_confirm(subscriber, newsletter, meta=RequestMeta.from_request(request))
        refused = outcome == ConfirmOutcome.REFUSED
        template = "subscribers/confirm_refused.html" if refused else "subscribers/confirmed.html"
        context = {"newsletter": newsletter, "preferences_token": make_token(Purpose.PREFERENCES, subscriber.token)}
        return render(request, template, context)
    return render(request, "subscribers/confirm.html", {"newsletter": newsletter, "token": token})


@require_http_methods(["GET", "POST"])
@_link_view(Purpose.UNSUBSCRIBE)
def unsubscribe(request, token, subscriber, newsletter):
    preferences_token = make_token(Purpose.PREFERENCES, subscriber.token)
    context = {"newsletter": newsletter, "token": token, "preferences_token": preferences_token}
    if request.method == "POST":
        subscriber_unsubscribe(
            subscriber, newsletter, source=ConsentEvent.Source.LINK, meta=RequestMeta.from_request(request)
        )
        return render(request, "subscribers/unsubscribed.html", context)
    return render(request, "subscribers/unsubscribe.html", context)


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def one_click(request: HttpRequest, token: str) -> HttpResponse:
    """RFC 8058 List-Unsubscribe-Post target. A mailbox provider POSTs `List-Unsubscribe=One-Click`; the signed
    token is the authentication, so no CSRF token or cookie is involved. Answers 200 with a short text, never a
    redirect, and sets no cookie. Idempotent. A GET (a person or a scanner following the URL) changes nothing:
    it shows the usual page with the Unsubscribe button."""
    if request.method == "GET":
        return unsubscribe(request, token)
    try:
        subscriber, newsletter = _from_token(Purpose.UNSUBSCRIBE, token)
    except LinkProblem as problem:
        return HttpResponse(_("This unsubscribe link is not valid."), status=problem.status, content_type="text/plain")
    if request.POST.get("List-Unsubscribe") != "One-Click":
        return HttpResponse(
            _("Expected a POST with the body List-Unsubscribe=One-Click (RFC 8058)."),
            status=400,
            content_type="text/plain",
        )
    subscriber_unsubscribe(
        subscriber, newsletter, source=ConsentEvent.Source.ONE_CLICK, meta=RequestMeta.from_request(request)
    )
    return HttpResponse(_("You have been unsubscribed."), content_type="text/plain; charset=utf-8")


@require_http_methods(["GET", "POST"])
@_link_view(Purpose.PREFERENCES)
def preferences(request, token, subscriber, newsletter):
    initial = {"newsletters": subscriber_newsletter_ids(subscriber), "name": subscriber.name}
    form = PreferencesForm(request.POST or None, initial=initial)
    if request.method == "POST":
        meta = RequestMeta.from_request(request)
        if "leave" in request.POST:
            subscriber_unsubscribe(subscriber, None, source=ConsentEvent.Source.LINK, meta=meta)
            messages.success(request, _("You have left every newsletter. We won't email you again."))
            return redirect("subscribers:preferences", token=token)
        if "measurement" in request.POST:
            agreed = {int(pk) for pk in request.POST.getlist("measure") if pk.isdigit()}
            if reader_tracking_set(subscriber, agreed, ConsentEvent.Source.LINK, meta=meta):
                messages.success(request, _("Your choice about measuring your reading is saved."))
            return redirect("subscribers:preferences", token=token)
        if form.is_valid():
            changes = subscriber_preferences_update(
                subscriber,
                form.cleaned_data["newsletters"],
                form.cleaned_data["name"],
                consent_text=_("Chose newsletters on the preferences page."),
                policy_version=newsletter_policy_version(),
                meta=meta,
            )
            if subscriber.status == Subscriber.Status.SUPPRESSED and form.cleaned_data["newsletters"]:
                messages.warning(request, _("We can't send email to this address (it bounced or was blocked)."))
            elif changes:
                messages.success(request, _("Your preferences are saved."))
            else:
                messages.info(request, _("Nothing changed."))
            return redirect("subscribers:preferences", token=token)
    subscriber.refresh_from_db()
    return render(
        request,
        "subscribers/preferences.html",
        {
            "form": form,
            "subscriber": subscriber,
            # A link can leak (forwarded, logged): the page shows enough of the address to recognise it, no more.
            "masked_email": address_masked(subscriber.email),
            "token": token,
            "measurement": reader_tracking_choices(subscriber),
        },
        status=400 if form.errors else 200,
    )


# --- Privacy ---------------------------------------------------------------------------------------------------


@require_POST
@_link_view(Purpose.PREFERENCES)
def export_request(request, token, subscriber, newsletter):
    if over_limit(request, "export", {"export_token": str(subscriber.token)}):
        return _too_many(request)
    subscriber_export_request(subscriber)
    messages.success(request, _("We have emailed you a link to download your data. It works for 48 hours."))
    return redirect("subscribers:preferences", token=token)


@require_POST
@_link_view(Purpose.PREFERENCES)
def erase_request(request, token, subscriber, newsletter):
    """Erasure is confirmed from the mailbox: this only emails the link to the page that erases."""
    if over_limit(request, "export", {"export_token": str(subscriber.token)}):
        return _too_many(request)
    subscriber_erase_request(subscriber)
    messages.success(request, _("We have emailed you a link to confirm the erasure. It works for 48 hours."))
    return redirect("subscribers:preferences", token=token)


@never_cache
@_link_view(Purpose.EXPORT)
def export_download(request, token, subscriber, newsletter):
    body = json.dumps(subscriber_export(subscriber), indent=2, ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="my-newsletter-data.json"'
    response["Cache-Control"] = "no-store, private"
    return response


@require_http_methods(["GET", "POST"])
@_link_view(Purpose.ERASE)
def erase(request, token, subscriber, newsletter):
    if request.method == "POST":
        subscriber_erase(subscriber, source=ConsentEvent.Source.LINK)
        return render(request, "subscribers/erased.html")
    return render(request, "subscribers/erase.html", {"token": token})
