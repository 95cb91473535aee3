import re

import pytest

from embedloop.app.reference import DOCS, PAGES


@pytest.mark.parametrize("name", sorted(PAGES))
def test_generated_reference_pages_are_current(name):
    assert (DOCS / name).read_text() == PAGES[name](), "stale: run `python -m embedloop.app.reference`"


def test_every_setting_and_metric_is_documented():
    from embedloop.core.settings import Settings

    configuration = (DOCS / "configuration.md").read_text()
    for group, field in Settings.model_fields.items():
        for name in getattr(field.annotation, "model_fields", {}):
            assert f"`{group}.{name}`" in configuration
    assert "`embedloop_drift_share`" in (DOCS / "metrics.md").read_text()


def test_links_from_the_readme_and_docs_resolve():
    for page in [DOCS.parent / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#]+\.md)\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} links to a missing {target}"
