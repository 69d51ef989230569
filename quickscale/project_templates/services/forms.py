"""Web forms of the service pages; a service names its form in ``form_class``."""

from __future__ import annotations

from django import forms

from services.validation import MAX_BATCH_CHARS, MAX_BATCH_TEXTS, MAX_TEXT_CHARS


class TextInputForm(forms.Form):
    """One text to process."""

    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        max_length=MAX_TEXT_CHARS,
        strip=False,
        help_text=f"Up to {MAX_TEXT_CHARS} characters.",
    )


class SummaryInputForm(TextInputForm):
    """A text and how many sentences to keep."""

    max_sentences = forms.IntegerField(min_value=1, max_value=10, initial=3)


class BatchTextInputForm(forms.Form):
    """Many texts, one per line."""

    texts = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12}),
        max_length=MAX_BATCH_CHARS,
        strip=False,
        help_text=f"One text per line, up to {MAX_BATCH_TEXTS} lines.",
    )


class ImageInputForm(forms.Form):
    """One image file."""

    image = forms.FileField(help_text="JPEG, PNG, GIF, WebP, BMP or TIFF, up to 10 MB.")
