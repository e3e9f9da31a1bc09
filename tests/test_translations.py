"""Every string a person reads is translated: no template text outside a translate tag, and every
message `makemessages` extracts has its Spanish translation, placeholders intact.

The templates are read as Django parses them: their text nodes, with the markup taken out, must
hold no words, and a literal a page shows (`{% include … with button="…" %}`, a filter's argument
such as `default:"…"`) must be `_("…")`. The catalogue is checked on a copy of the project in a
temporary directory, where `makemessages` and `compilemessages` run as `make messages` and the
image build run them: a message added to a page and not to the catalogue fails here.
"""

from __future__ import annotations

import ast
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


# --- Strings in Python that pages and the admin show -------------------------------------------

# Modules whose strings a person reads on a page or in the admin, and `*_views.py`, `*_forms.py`
# (the API's serializers and schema describe it to programmers, in English, and are not among
# them).
PAGE_MODULES = {"forms.py", "views.py", "admin.py", "models.py", "apps.py", "notifications.py"}
# Keyword arguments that a page or the admin shows.
READ_KEYWORDS = {"label", "help_text", "verbose_name", "verbose_name_plural", "description"}
# Class attributes that the admin shows (Meta and AppConfig).
READ_ATTRIBUTES_PY = {"verbose_name", "verbose_name_plural"}
MESSAGE_CALLS = {"debug", "info", "success", "warning", "error", "add_message", "message_user"}
# Fields whose first argument is the model they point to, not a name a person reads.
RELATION_FIELDS = {"OneToOneField", "ManyToManyField"}


def literal(node: ast.AST | None) -> str | None:
    """The text of a plain string or f-string literal with words in it, else None (a call such
    as `_("…")` or a name is not a literal)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    else:
        return None
    return text if words(text) else None


def untranslated_python(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            candidates = []
            if name in MESSAGE_CALLS and len(node.args) >= 2:
                candidates.append(node.args[1])
            if name == "ValidationError" and node.args:
                candidates.append(node.args[0])
            if name and name.endswith("Field") and name not in RELATION_FIELDS and node.args:
                candidates.append(node.args[0])  # a model field's verbose name
            candidates += [k.value for k in node.keywords if k.arg in READ_KEYWORDS]
            found += [(node.lineno, text) for text in map(literal, candidates) if text]
        elif isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if set(targets) & READ_ATTRIBUTES_PY and (text := literal(node.value)):
                found.append((node.lineno, text))
        elif isinstance(node, ast.Dict):
            found += [
                (node.lineno, text)
                for key, value in zip(node.keys, node.values, strict=True)
                if isinstance(key, ast.Constant) and key.value == "placeholder"
                if (text := literal(value))
            ]
    return found


def page_modules() -> list[Path]:
    return sorted(
        path
        for path in (PROJECT_DIR / "apps").rglob("*.py")
        if (path.name in PAGE_MODULES or path.name.endswith(("_views.py", "_forms.py")))
        and "migrations" not in path.parts
    )


def test_the_walk_finds_the_modules_of_the_pages():
    names = {path.relative_to(PROJECT_DIR).as_posix() for path in page_modules()}
    assert {"apps/twofactor/forms.py", "apps/twofactor/views.py", "apps/actions/admin.py"} <= names


@pytest.mark.parametrize(
    "path", page_modules(), ids=lambda path: path.relative_to(PROJECT_DIR).as_posix()
)
def test_every_python_string_a_person_reads_is_translated(path):
    """Form labels, help and errors, messages, the admin's names and descriptions: gettext."""
    assert untranslated_python(ast.parse(path.read_text())) == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ('messages.info(request, "Saved.")', [(1, "Saved.")]),
        ('messages.info(request, _("Saved."))', []),
        ('messages.success(request, f"Removed {name}.")', [(1, "Removed .")]),
        ('self.message_user(request, "Done", messages.SUCCESS)', [(1, "Done")]),
        ('raise forms.ValidationError("Too short.", code="short")', [(1, "Too short.")]),
        ('raise forms.ValidationError(_("Too short."), code="short")', []),
        ('forms.CharField(label="Name", max_length=64)', [(1, "Name")]),
        ('forms.CharField(label=_("Name"), widget=TextInput(attrs={"autocomplete": "off"}))', []),
        ('TextInput(attrs={"placeholder": "e.g. Work laptop"})', [(1, "e.g. Work laptop")]),
        ('class Meta:\n    verbose_name = "API client"', [(2, "API client")]),
        ('models.BooleanField("active", default=True)', [(1, "active")]),
        ('models.OneToOneField("accounts.User", on_delete=CASCADE)', []),
        ('@admin.action(description=_("Revoke"))\ndef revoke(): pass', []),
    ],
)
def test_the_python_check_tells_translated_from_untranslated_strings(source, found):
    assert untranslated_python(ast.parse(source)) == found
