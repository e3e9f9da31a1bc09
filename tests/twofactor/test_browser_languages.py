"""The pages in the browser's language: a real Chromium set to Spanish (Playwright's `locale`,
which sends `Accept-Language: es-ES`) logs in, gives its code and reaches the two-factor page, all
in Spanish; set to English, all in English. The project runs under gunicorn with the catalogues
`make test` compiled (locale/*/LC_MESSAGES/django.mo)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import WatchedPage, chromium
from tests.servers import PROJECT_DIR, gunicorn, project_env

from .conftest import PASSWORD, make_device, make_person, phone_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SPANISH = {
    "html_lang": "es",
    "login": "Iniciar sesión",
    "username": "Nombre de usuario",
    "password": "Contraseña",
    "code_step": "Introduce tu código",
    "code": "Código de tu aplicación de autenticación, o un código de respaldo",
    "continue": "Continuar",
    "overview": "Autenticación de dos factores",
    "in_use": "En uso",
    "backup_codes": "Conseguir códigos de respaldo nuevos",
    "log_out": "Cerrar sesión",
    "forgot": "¿Has olvidado tu contraseña?",
    "trust": "Confiar en este navegador durante 30 días",
    "trusted_browsers": "Navegadores de confianza",
}
ENGLISH = {
    "html_lang": "en",
    "login": "Log in",
    "username": "Username",
    "password": "Password",
    "code_step": "Enter your code",
    "code": "Code from your authenticator app, or a backup code",
    "continue": "Continue",
    "overview": "Two-factor authentication",
    "in_use": "In use",
    "backup_codes": "Get new backup codes",
    "log_out": "Log out",
    "forgot": "Forgot your password?",
    "trust": "Trust this browser for 30 days",
    "trusted_browsers": "Trusted browsers",
}


@pytest.fixture(scope="module", autouse=True)
def _compiled_catalogues():
    """Fail with the remedy when the catalogues were not compiled, rather than on a heading."""
    compiled = PROJECT_DIR / "locale" / "es" / "LC_MESSAGES" / "django.mo"
    source = compiled.with_suffix(".po")
    if not compiled.is_file() or compiled.stat().st_mtime < source.stat().st_mtime:
        pytest.fail(
            "The Spanish catalogue is not compiled, or older than its .po: run "
            "`make compilemessages` (make test does)."
        )


@pytest.mark.parametrize(
    ("locale", "words"), [("es-ES", SPANISH), ("en-US", ENGLISH)], ids=["spanish", "english"]
)
def test_the_login_the_code_step_and_the_two_factor_page_are_in_the_browser_language(locale, words):
    person = make_person("alice")
    # Database work happens outside the Playwright block: its event loop would make Django
    # refuse synchronous queries.
    phone = phone_for(make_device(person))
    with gunicorn(env=project_env(TWO_FACTOR_REQUIRED="none")) as base_url, chromium() as browser:
        tab = WatchedPage(browser, locale=locale)
        page = tab.page
        page.goto(f"{base_url}/account/login/")
        expect(page.locator("html")).to_have_attribute("lang", words["html_lang"])
        expect(page).to_have_title(f"{words['login']} · dbapi")
        expect(page.get_by_role("heading", name=words["login"])).to_be_visible()
        expect(page.get_by_role("link", name=words["forgot"])).to_be_visible()
        page.get_by_label(words["username"]).fill("alice")
        page.get_by_label(words["password"]).fill(PASSWORD)
        page.get_by_role("button", name=words["login"], exact=True).click()

        expect(page.get_by_role("heading", name=words["code_step"])).to_be_visible()
        expect(page.get_by_label(words["trust"])).to_be_visible()
        page.get_by_label(words["code"]).fill(phone.now())
        page.get_by_role("button", name=words["continue"]).click()

        expect(page.get_by_role("heading", name=words["overview"], exact=True)).to_be_visible()
        expect(page.get_by_role("cell", name=words["in_use"])).to_be_visible()
        expect(page.get_by_role("link", name=words["backup_codes"])).to_be_visible()
        expect(page.get_by_role("heading", name=words["trusted_browsers"])).to_be_visible()
        expect(page.get_by_role("button", name=words["log_out"])).to_be_visible()
        tab.assert_clean()
