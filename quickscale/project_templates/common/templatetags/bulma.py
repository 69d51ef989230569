"""Render Django form fields with Bulma's classes without forking form classes."""

from django import forms, template
from django.utils.safestring import SafeString

register = template.Library()


def _bulma_class(widget: forms.Widget) -> str:
    if isinstance(widget, forms.Textarea):
        return "textarea"
    if isinstance(widget, forms.CheckboxInput | forms.Select | forms.RadioSelect):
        # Bulma styles these through their wrapper (label.checkbox, div.select).
        return ""
    return "input"


@register.filter
def bulma_widget(field: forms.BoundField) -> SafeString:
    """Render ``field``'s widget with Bulma's control class (and is-danger on errors)."""
    classes = [field.field.widget.attrs.get("class", ""), _bulma_class(field.field.widget)]
    if field.errors:
        classes.append("is-danger")
    return field.as_widget(attrs={"class": " ".join(c for c in classes if c)})


@register.filter
def is_checkbox(field: forms.BoundField) -> bool:
    """Return True for single checkboxes, which Bulma lays out label-after-box."""
    return isinstance(field.field.widget, forms.CheckboxInput)
