"""Render Django form fields with Bulma's classes without forking form classes."""

from django import forms, template
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


def _bulma_class(widget: forms.Widget) -> str:
    if isinstance(widget, forms.Textarea):
        return "textarea"
    if isinstance(widget, forms.CheckboxInput | forms.Select | forms.RadioSelect | forms.FileInput):
        # Bulma styles these through their wrapper (label.checkbox, div.select).
        return ""
    return "input"


@register.filter
def bulma_widget(field: forms.BoundField) -> SafeString:
    """Render ``field``'s widget with Bulma's class, tied to its help and error text.

    The ids match ``includes/form_field.html``, so screen readers announce the help
    and the errors with the field, and ``aria-invalid`` marks a field with errors.
    """
    classes = [field.field.widget.attrs.get("class", ""), _bulma_class(field.field.widget)]
    attrs: dict[str, str | bool] = {}
    described_by = []
    if field.help_text:
        described_by.append(f"{field.auto_id}_help")
    if field.errors:
        classes.append("is-danger")
        described_by.append(f"{field.auto_id}_errors")
        attrs["aria-invalid"] = "true"
    if described_by:
        attrs["aria-describedby"] = " ".join(described_by)
    attrs["class"] = " ".join(c for c in classes if c)
    widget = field.as_widget(attrs=attrs)
    if isinstance(field.field.widget, forms.Select):
        # Bulma draws a select (its arrow, border, dark scheme) through its wrapper;
        # a bare <select> is the browser's native control.
        wrapper = ["select", "is-fullwidth"]
        if field.field.widget.allow_multiple_selected:
            wrapper.append("is-multiple")
        if field.errors:
            wrapper.append("is-danger")
        return format_html('<div class="{}">{}</div>', " ".join(wrapper), widget)
    return widget


@register.filter
def is_checkbox(field: forms.BoundField) -> bool:
    """Return True for single checkboxes, which Bulma lays out label-after-box."""
    return isinstance(field.field.widget, forms.CheckboxInput)
