"""Every string a person reads is translated: no template text outside a translate tag, and every
message `makemessages` extracts has its Spanish translation, placeholders intact.

The templates are read as Django parses them: their text nodes, with the markup taken out, must
hold no words, and a literal a page shows (`{% include … with button="…" %}`, a filter's argument
such as `default:"…"`) must be `_("…")`. The catalogue is checked on a copy of the project in a
temporary directory, where `makemessages` and `compilemessages` run as `make messages` and the
image build run them: a message added to a page and not to the catalogue fails here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polib
import pytest
from django.apps import apps
from django.template import Template, engines
from django.template.base import FilterExpression, Node, TextNode, VariableNode
from django.template.defaulttags import CommentNode, IfNode
from django.template.loader_tags import IncludeNode
from django.templatetags.i18n import BlockTranslateNode, TranslateNode
from django.utils.functional import Promise

from tests.servers import PROJECT_DIR, project_env

LANGUAGES = ["es"]
# Words that are the same in every language: names (the product's, the API docs tool's).
NOT_LANGUAGE = {"dbapi", "swagger"}
# Literals a template passes that no person reads: the passkey form's WebAuthn mode.
NOT_LANGUAGE_LITERALS = {"get", "create"}
# Filters whose argument is a format, not a sentence (`date:"j M Y"`).
FORMAT_FILTERS = {"date", "time"}
# What a person reads inside markup: these attributes' values.
READ_ATTRIBUTES = re.compile(
    r"""\b(?:aria-label|title|alt|placeholder|label|value)\s*=\s*(["'])(.*?)\1""", re.S
)
MARKUP = re.compile(r"<!--.*?-->|<[^>]*>", re.S)
ENTITY = re.compile(r"&#?\w+;")
# Where the walk puts a tag or variable in the text, so that markup around it still parses.
PLACEHOLDER = "\x00"
PLACEHOLDERS = re.compile(r"%\(\w+\)[sd]|%[sd]")


def project_templates() -> list[str]:
    """The names of every template the project has (templates/ and its apps' templates/)."""
    engine = engines["django"].engine
    roots = [Path(d) for d in engine.dirs] + [
        Path(config.path) / "templates"
        for config in apps.get_app_configs()
        if Path(config.path).is_relative_to(PROJECT_DIR / "apps")
    ]
    names = set()
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and path.suffix in {".html", ".txt"}:
                names.add(path.relative_to(root).as_posix())
    return sorted(names)


def template(name: str) -> Template:
    return engines["django"].get_template(name).template


def children(node: Node) -> Iterator[Node]:
    if isinstance(node, IfNode):
        for _, nodelist in node.conditions_nodelists:
            yield from nodelist
        return
    for attribute in node.child_nodelists:
        yield from getattr(node, attribute, None) or []


def skeleton(nodes, literals: list[str]) -> str:
    """The template's text as Django parsed it, each tag and variable a placeholder; the
    untranslated literals it shows are added to `literals`."""
    parts = []
    for node in nodes:
        if isinstance(node, TextNode):
            parts.append(node.s)
            continue
        parts.append(PLACEHOLDER)
        if isinstance(node, (TranslateNode, BlockTranslateNode, CommentNode)):
            continue
        if isinstance(node, VariableNode):
            literals.extend(untranslated(node.filter_expression))
        if isinstance(node, IncludeNode):
            for value in node.extra_context.values():
                literals.extend(untranslated(value))
        parts.append(skeleton(children(node), literals))
    return "".join(parts)


def untranslated(expression: FilterExpression) -> list[str]:
    """Literal strings of the expression a person would read that are not `_("…")`."""
    found = []
    if isinstance(expression.var, str) and not isinstance(expression.var, Promise):
        found.append(expression.var)
    for function, arguments in expression.filters:
        if function.__name__ in FORMAT_FILTERS:
            continue
        for is_variable, argument in arguments:
            if not is_variable and isinstance(argument, str) and not isinstance(argument, Promise):
                found.append(argument)
    return [text for text in found if words(text) and text not in NOT_LANGUAGE_LITERALS]


def words(text: str) -> list[str]:
    return [w for w in re.findall(r"[^\W\d_]+", text) if w.lower() not in NOT_LANGUAGE]


def untranslated_text(name: str) -> list[str]:
    """What a person reads in the template that no translate tag holds."""
    literals: list[str] = []
    text = skeleton(template(name).nodelist, literals)
    found = [value for _, value in READ_ATTRIBUTES.findall(text) if words(value.strip(PLACEHOLDER))]
    outside = ENTITY.sub(" ", MARKUP.sub(" ", text))
    found += [line.strip() for line in outside.split(PLACEHOLDER) if words(line)]
    return found + literals


def test_the_walk_finds_the_templates_of_the_pages():
    names = project_templates()
    assert {"base.html", "error.html", "twofactor/login.html", "twofactor/overview.html"} <= set(
        names
    )


@pytest.mark.parametrize("name", project_templates())
def test_every_text_of_the_template_is_translated(name):
    assert untranslated_text(name) == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("<p>Hello</p>", ["Hello"]),
        ('{% load i18n %}<p>{% translate "Hello" %}</p>', []),
        ('<nav aria-label="Account"></nav>', ["Account"]),
        ("{% load i18n %}<nav aria-label=\"{% translate 'Account' %}\"></nav>", []),
        ("{% if x %}<b>Hi</b>{% endif %}", ["Hi"]),
        ('{{ x|default:"Nothing yet" }}', ["Nothing yet"]),
        ('{{ x|default:_("Nothing yet") }}', []),
        ('{% include "base.html" with button="Remove" mode="get" %}', ["Remove"]),
        ('{% include "base.html" with button=_("Remove") mode="get" %}', []),
        ('{{ when|date:"j M Y" }} · dbapi &rsaquo; 42', []),
        ("{% comment %}Only for us{% endcomment %}<!-- nor this -->", []),
    ],
)
def test_the_check_tells_translated_from_untranslated_text(source, found, tmp_path, settings):
    """The walk itself, on small templates: it finds what a person would read untranslated."""
    (tmp_path / "sample.html").write_text(source)
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    assert untranslated_text("sample.html") == found


# --- The catalogue ------------------------------------------------------------------------------

COPY_IGNORES = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.mo", "staticfiles", ".tmp", "*.sqlite3", "dump.rdb"
)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    """A copy of the project whose catalogues `makemessages` has updated from its sources, as
    `make messages` does; the source tree is left alone."""
    copy = tmp_path_factory.mktemp("messages") / "project"
    shutil.copytree(PROJECT_DIR, copy, ignore=COPY_IGNORES)
    manage(copy, "makemessages", "--all", *makefile_ignores(), "--add-location=file")
    return copy


def makefile_ignores() -> list[str]:
    """The directories `make messages` leaves out (the Makefile's MESSAGES_IGNORE)."""
    makefile = (PROJECT_DIR / "Makefile").read_text()
    [line] = re.findall(r"^MESSAGES_IGNORE :=(.*)$", makefile, re.M)
    return line.split()


def manage(project: Path, *arguments: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=project,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def catalogue(project: Path, language: str) -> polib.POFile:
    return polib.pofile(str(project / "locale" / language / "LC_MESSAGES" / "django.po"))


def translations(entry: polib.POEntry) -> list[str]:
    if entry.msgid_plural:
        return [entry.msgstr_plural[form] for form in sorted(entry.msgstr_plural)]
    return [entry.msgstr]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_has_a_translation(extracted, language):
    """Every msgid of the sources is in the catalogue, translated and not fuzzy (a fuzzy entry is
    gettext's guess from a similar message, which gettext does not use)."""
    entries = [entry for entry in catalogue(extracted, language) if not entry.obsolete]
    assert len(entries) > 100  # the extraction found the pages' messages
    untranslated = [entry.msgid for entry in entries if not all(translations(entry))]
    fuzzy = [entry.msgid for entry in entries if entry.fuzzy]
    assert (untranslated, fuzzy) == ([], [])


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders(extracted, language):
    """`%(name)s` in a message is `%(name)s` in its translation, every form of it."""
    wrong = [
        (entry.msgid, text)
        for entry in catalogue(extracted, language)
        if not entry.obsolete
        for text in translations(entry)
        if text and sorted(PLACEHOLDERS.findall(text)) != sorted(PLACEHOLDERS.findall(entry.msgid))
    ]
    assert wrong == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_committed_catalogue_is_the_extracted_one(extracted, language):
    """The catalogue in the tree holds exactly the messages of the sources: run `make messages`
    after changing a string, so that no translation is lost or left behind."""
    committed = polib.pofile(str(PROJECT_DIR / "locale" / language / "LC_MESSAGES" / "django.po"))
    current = {(e.msgctxt, e.msgid) for e in catalogue(extracted, language) if not e.obsolete}
    assert {(e.msgctxt, e.msgid) for e in committed if not e.obsolete} == current


def test_the_catalogues_compile(extracted):
    """As the image build and `make` compile them (msgfmt checks each translation's format)."""
    manage(extracted, "compilemessages", *makefile_ignores())
    for language in LANGUAGES:
        assert (extracted / "locale" / language / "LC_MESSAGES" / "django.mo").stat().st_size
