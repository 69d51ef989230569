from django import forms


class APIKeyCreateForm(forms.Form):
    """Name a new API key (so you recognise it when revoking)."""

    name = forms.CharField(max_length=100, help_text="For example: laptop, CI, my app.")
