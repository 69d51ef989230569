"""Colours in a real Chromium: dark mode follows the system setting, links wear the brand.

Colours are read with getComputedStyle and compared as WCAG contrast ratios, so
the tests fail when a page stays light under a dark system setting, when a
light patch (a light button, section or soft notification) keeps dark-on-white
or white-on-dark text there, or when links lose the brand hue.
"""

import colorsys
import re
from typing import Any

import pytest
from django.core.management import call_command

from common.testing.browser import log_in
from stripe_manager.models import UserSubscription
from stripe_manager.tests.factories import make_catalog
from users.tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Bulma's primary colour, the brand: hsl(171deg, 100%, 41%), the favicon's #00d1b2.
BRAND_HUE = 171

# The colours of an element and of the first ancestor (itself included) that paints a background.
COLOURS_JS = """(element) => {
  const clear = (node) =>
    /rgba\\(.*, 0\\)$|transparent/.test(getComputedStyle(node).backgroundColor);
  let painted = element;
  while (painted.parentElement && clear(painted)) {
    painted = painted.parentElement;
  }
  return [getComputedStyle(element).color, getComputedStyle(painted).backgroundColor];
}"""


def rgb(css: str) -> tuple[float, float, float]:
    red, green, blue = (float(part) for part in re.findall(r"[\d.]+", css)[:3])
    return red, green, blue


def luminance(css: str) -> float:
    def channel(value: float) -> float:
        value /= 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = rgb(css)
    return 0.2126 * channel(red) + 0.7152 * channel(green) + 0.0722 * channel(blue)


def contrast(first: str, second: str) -> float:
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def hue(css: str) -> float:
    red, green, blue = rgb(css)
    return colorsys.rgb_to_hls(red / 255, green / 255, blue / 255)[0] * 360


def colours(page: Any, selector: str) -> tuple[str, str]:
    text, background = page.locator(selector).first.evaluate(COLOURS_JS)
    return text, background


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_page_follows_the_system_colour_scheme_with_readable_text(page, scheme):
    call_command("seed_demo_catalog", stdout=None)
    page.emulate_media(color_scheme=scheme)
    page.goto("/")

    page_background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    text, background = colours(page, "#features-title")
    for painted in (page_background, background):
        if scheme == "dark":
            assert luminance(painted) < 0.05, painted
        else:
            assert luminance(painted) > 0.8, painted
    assert contrast(text, background) >= 7, (text, background)
    text, box = colours(page, "main .box p")
    assert contrast(text, box) >= 7, (text, box)
    # The call-to-action band (has-background-light) and the light "Log in" button
    # turn dark with light text in dark mode instead of staying white patches.
    for selector in ("#cta-title", "nav .button.is-light"):
        text, patch = colours(page, selector)
        assert contrast(text, patch) >= 4.5, (selector, text, patch)
        assert (luminance(patch) < 0.1) == (scheme == "dark"), (selector, patch)


def test_soft_notifications_and_tags_are_dark_in_dark_mode(page):
    user = make_user("plan@example.com")
    UserSubscription.objects.create(
        user=user,
        stripe_subscription_id="sub_theme",
        price_id="price_pro",
        product=make_catalog()["pro"],
        status="active",
    )
    page.emulate_media(color_scheme="dark")
    log_in(page, "plan@example.com", PASSWORD)
    page.goto("/pricing/")

    for selector in (".notification.is-light", ".navbar .tag"):
        text, background = colours(page, selector)
        assert luminance(background) < 0.1, (selector, background)
        assert contrast(text, background) >= 4.5, (selector, text, background)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_links_take_the_brand_colour_and_stay_readable(page, scheme):
    page.emulate_media(color_scheme=scheme)
    page.goto("/about/")

    text, background = colours(page, "footer a")
    assert abs(hue(text) - BRAND_HUE) < 3, text
    assert contrast(text, background) >= 4.5, (text, background)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_bulmas_link_coloured_components_take_the_brand_colour_too(page, scheme):
    page.emulate_media(color_scheme=scheme)
    page.goto("/accounts/login/")

    passkey = page.get_by_role("button", name="Sign in with a passkey")
    border = passkey.evaluate("e => getComputedStyle(e).borderColor")
    assert abs(hue(border) - BRAND_HUE) < 3, border
    text, background = colours(page, "button.is-link")
    assert contrast(text, background) >= 4.5, (text, background)
