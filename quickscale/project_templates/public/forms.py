from django import forms
from django.conf import settings


class ContactForm(forms.Form):
    """The contact form; ``website`` is a honeypot people never see or fill."""

    NAME_MAX_LENGTH = 100

    name = forms.CharField(label="Your name", max_length=NAME_MAX_LENGTH)
    email = forms.EmailField(label="Your email")
    subject = forms.CharField(label="Subject", max_length=150)
    message = forms.CharField(
        label="Message",
        max_length=settings.CONTACT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=f"Up to {settings.CONTACT_MAX_LENGTH} characters.",
    )
    website = forms.CharField(
        label="Leave this field empty",
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )

    def is_spam(self) -> bool:
        """Return True when the honeypot was filled (call after is_valid)."""
        return bool(self.cleaned_data.get("website"))
