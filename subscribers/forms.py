"""Public forms. Validation errors name the field and what to do; the honeypot never shows an error (a bot that
fills it gets the usual "check your inbox" page and nothing happens)."""

from django import forms
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from engagement.services.consent import tracking_wording
from newsletter.conf import app_settings
from newsletter.models import Newsletter, TrackingMode

from .services.addresses import InvalidAddress, UndeliverableAddress, address_normalise, name_clean

HONEYPOT = "website"

CONSENT_WORDING = _("I agree to receive {newsletter} by email, and I accept the {privacy} and the {terms}.")


def consent_label(newsletter: Newsletter) -> str:
    """The checkbox label, with links to the policies (PRIVACY_POLICY_URL, TERMS_URL)."""
    return format_html(
        str(CONSENT_WORDING),
        newsletter=newsletter.name,
        privacy=format_html('<a href="{}">{}</a>', app_settings.PRIVACY_POLICY_URL, gettext("privacy policy")),
        terms=format_html('<a href="{}">{}</a>', app_settings.TERMS_URL, gettext("terms")),
    )


def consent_text(newsletter: Newsletter) -> str:
    """The same wording as plain text with the policy addresses, as the consent ledger records it."""
    return str(CONSENT_WORDING).format(
        newsletter=newsletter.name,
        privacy=f"{gettext('privacy policy')} <{app_settings.PRIVACY_POLICY_URL}>",
        terms=f"{gettext('terms')} <{app_settings.TERMS_URL}>",
    )


class SignupForm(forms.Form):
    email = forms.CharField(
        label=_("Email address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "inputmode": "email", "spellcheck": "false"}),
    )
    name = forms.CharField(
        label=_("Name (optional)"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    consent = forms.BooleanField(
        required=True,
        error_messages={"required": _("Please tick the box to agree, or we can't send you the newsletter.")},
    )
    # Per-reader measurement: a separate choice, never ticked for the reader; only on newsletters measured so.
    measure = forms.BooleanField(required=False)
    # Hidden from people (CSS and aria-hidden) but not from bots that fill every field.
    website = forms.CharField(
        label=_("Leave this field empty"),
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )

    def __init__(self, *args, newsletter: Newsletter, **kwargs):
        super().__init__(*args, **kwargs)
        self.newsletter = newsletter
        self.fields["consent"].label = consent_label(newsletter)
        if newsletter.tracking_mode == TrackingMode.PER_READER:
            self.fields["measure"].label = tracking_wording(newsletter)
        else:
            del self.fields["measure"]

    def clean_email(self) -> str:
        try:
            return address_normalise(self.cleaned_data["email"])
        except UndeliverableAddress as exc:
            raise forms.ValidationError(
                gettext(
                    "We can't send email to an address with letters such as ü or ñ before the @ yet. "
                    "Please use another address."
                )
            ) from exc
        except InvalidAddress as exc:
            raise forms.ValidationError(
                gettext("Please enter a valid email address (%(reason)s).") % {"reason": exc}
            ) from exc

    def clean_name(self) -> str:
        return name_clean(self.cleaned_data.get("name", ""))

    @property
    def is_bot(self) -> bool:
        return bool(self.data.get(HONEYPOT, "").strip())


class PreferencesForm(forms.Form):
    newsletters = forms.ModelMultipleChoiceField(
        label=_("Newsletters you receive"),
        queryset=Newsletter.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    name = forms.CharField(
        label=_("Name (optional)"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )

    def clean_name(self) -> str:
        return name_clean(self.cleaned_data.get("name", ""))
