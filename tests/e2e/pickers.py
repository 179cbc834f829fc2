"""The admin's compact tag pickers (select2 autocompletes), as a person uses them."""

import re

from playwright.sync_api import expect


def pick(page, field_id: str, term: str) -> None:
    """Choose `term`: open the picker, type, click the option that names `term` (as a
    word), and check the form holds it. (Enter on the highlighted option raced select2's
    search answer: the page could save without the tag.)"""
    named = re.compile(rf"\b{re.escape(term)}\b", re.IGNORECASE)
    chosen = page.locator(f"#{field_id} option:checked")
    page.locator(f"#{field_id}").locator(
        "xpath=following-sibling::span[contains(@class,'select2')]").first.click()
    page.locator(".select2-container--open .select2-search__field").fill(term)
    page.locator(".select2-container--open .select2-results__option",
                 has_text=named).first.click()
    expect(chosen.filter(has_text=named)).to_have_count(1)
