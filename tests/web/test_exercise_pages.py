"""The exercise pages a participant reads: the list, one exercise with its README, starter and editor."""

from __future__ import annotations

import re

import pytest
from factories import join
from paths import PROJECT_ROOT

from grader.exercises import load_catalog
from server.views.exercises import render_readme

CATALOG = load_catalog(PROJECT_ROOT / "exercises")


@pytest.mark.parametrize("slug", list(CATALOG))
def test_the_exercise_page_shows_title_readme_and_starter_once(client, slug):
    join(client)
    exercise = CATALOG[slug]
    page = client.get(f"/exercises/{slug}").get_data(as_text=True)
    assert len(re.findall(r"<h1[ >]", page)) == 1, "the README's own title is not repeated under the page's"
    assert "<h2>What to expect</h2>" in page
    assert 'data-editor="python"' in page and "def train(data):" in page
    assert client.get(f"/exercises/{slug}/starter.py").get_data(as_text=True) == exercise.starter
    assert exercise.title in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize(
    ("text", "expected", "absent"),
    [
        ("# Title\n\nBody *here*.", "<em>here</em>", "<h1>"),
        ("No title line\n\n## Part", "<h2>Part</h2>", "<h1>"),
        ("# Title\n\n<script>alert(1)</script>", "&lt;script&gt;", "<script>"),
    ],
)
def test_readme_rendering_drops_the_title_and_escapes_html(text, expected, absent):
    html = str(render_readme(text))
    assert expected in html and absent not in html
