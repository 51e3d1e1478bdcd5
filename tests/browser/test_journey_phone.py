"""The same journey on a 360 px wide phone, against a system of its own."""
from support.browser import artifacts_folder
from support.journey import ana_journey, bruno_journey, carla_journey, new_buyer_page

PHONE = {"width": 360, "height": 740}


def test_the_whole_journey_on_a_360_px_phone(system, chromium):
    folder = artifacts_folder("phone")
    ana = new_buyer_page(chromium, system, folder / "ana", PHONE)
    ana_journey(ana)
    # Nothing is wider than the phone: no sideways scrolling on any page.
    assert ana.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    bruno = bruno_journey(new_buyer_page(chromium, system, folder / "bruno", PHONE))
    assert bruno.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    carla = carla_journey(new_buyer_page(chromium, system, folder / "carla", PHONE))
    assert carla.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
