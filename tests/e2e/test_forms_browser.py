"""Forms in a real browser (issue 11): after a failed submit the error summary takes focus and
its links lead to the fields; the focus ring stands out (3:1) wherever it is."""
from __future__ import annotations

import re


def rgb(text: str) -> tuple[float, ...]:
    return tuple(int(x) / 255 for x in re.findall(r"\d+", text)[:3])


def contrast(a: str, b: str) -> float:
    def lum(c):
        c = [x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4 for x in rgb(c)]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
    la, lb = sorted((lum(a), lum(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_the_error_summary_takes_focus_and_leads_to_each_field(live_server, phone, geography):
    page = phone
    page.goto(live_server + "/report")
    page.get_by_role("button", name="送る").click()
    page.wait_for_load_state()
    assert page.title().startswith("エラー:")
    summary = page.locator(".error-summary")
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    box = summary.bounding_box()
    assert box["y"] < 780  # on the first screen of a phone
    links = summary.get_by_role("link")
    assert links.count() >= 2
    names = [links.nth(i).inner_text() for i in range(links.count())]
    assert any("気になったこと" in n for n in names)
    links.filter(has_text="気になったこと").first.click()
    assert page.evaluate("document.activeElement.id") == "body"
    page.keyboard.type("ごみがたまっています")
    assert page.get_by_label("気になったこと").input_value() == "ごみがたまっています"


def test_the_focus_ring_has_three_to_one_contrast_everywhere(live_server, phone, geography):
    page = phone
    page.goto(live_server + "/report")
    checked = 0
    for _ in range(12):
        page.keyboard.press("Tab")
        found = page.evaluate("""() => {
            const el = document.activeElement, style = getComputedStyle(el);
            let bg = 'rgba(0, 0, 0, 0)', node = el.parentElement;
            while (node && (bg === 'rgba(0, 0, 0, 0)' || bg === 'transparent')) {
                bg = getComputedStyle(node).backgroundColor; node = node.parentElement; }
            return {outline: style.outlineColor, width: style.outlineWidth,
                    shadow: style.boxShadow, background: bg, tag: el.tagName};
        }""")
        if found["tag"] == "BODY":
            continue
        assert found["width"] == "3px", found
        halo = re.search(r"rgb\([^)]*\)", found["shadow"]).group(0)
        # The dark ring against the white halo, and one of them against what is around.
        assert contrast(found["outline"], halo) >= 3, found
        assert max(contrast(found["outline"], found["background"]),
                   contrast(halo, found["background"])) >= 3, found
        checked += 1
    assert checked >= 8
