"""Pages in the language the browser asks for (Accept-Language: English or Spanish); the API and
`GET /` in none but their own, whatever was asked before on the same thread."""

from __future__ import annotations

import json

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test import RequestFactory

from apps.core.wsgi import api_paths
from tests.servers import call_wsgi
from tests.twofactor.conftest import PASSWORD, make_person

pytestmark = pytest.mark.django_db

SPANISH = {"Accept-Language": "es-ES,es;q=0.9,en;q=0.5", "Accept": "text/html"}
ENGLISH = {"Accept-Language": "en-GB,en;q=0.9", "Accept": "text/html"}


def test_the_login_page_is_in_spanish_when_the_browser_asks_for_it(client):
    response = client.get("/account/login/", headers=SPANISH)
    html = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Language"] == "es"
    assert "Accept-Language" in response["Vary"]
    assert '<html lang="es">' in html
    assert "<title>Iniciar sesión · dbapi</title>" in html
    assert '<label for="id_username">Nombre de usuario:</label>' in html
    assert "Log in" not in html


@pytest.mark.parametrize(
    "accept_language",
    ["en-GB,en;q=0.9", "fr-FR,fr;q=0.9", None],
    ids=["english", "a-language-without-catalogue", "none-asked"],
)
def test_the_login_page_is_in_english_otherwise(client, accept_language):
    headers = {"Accept-Language": accept_language} if accept_language else {}
    response = client.get("/account/login/", headers=headers)
    html = response.content.decode()
    assert response["Content-Language"].startswith("en")
    assert '<html lang="en' in html
    assert "<title>Log in · dbapi</title>" in html
    assert "Iniciar sesión" not in html


def test_a_refused_password_is_told_in_spanish(client):
    make_person("alice")
    response = client.post(
        "/account/login/", {"username": "alice", "password": "wrong"}, headers=SPANISH
    )
    assert "Ese nombre de usuario y esa contraseña no coinciden." in response.content.decode()


def test_a_message_is_told_in_spanish(client):
    response = client.get("/account/login/code/", headers=SPANISH, follow=True)
    assert "Primero inicia sesión con tu contraseña." in response.content.decode()


def test_the_passkey_script_speaks_the_page_language(client):
    """What static/js/passkeys.js says comes from the page, translated."""
    html = client.get("/account/login/", headers=SPANISH).content.decode()
    assert 'data-waiting="Esperando tu llave de acceso…"' in html
    assert "Las llaves de acceso necesitan un navegador con JavaScript y WebAuthn." in html


def test_the_error_page_is_in_spanish(client):
    response = client.get("/nothing-lives-here/", headers=SPANISH)
    html = response.content.decode()
    assert response.status_code == 404
    assert "<h1>No encontrado</h1>" in html
    assert "No hay nada en esta dirección." in html


def test_the_admin_login_is_in_spanish(client):
    html = client.get("/admin/login/", headers=SPANISH).content.decode()
    assert "Usar una llave de acceso en su lugar" in html
    assert "Código de tu aplicación de autenticación, o un código de respaldo" in html


def api_call(**headers: str):
    """POST /api/v1/auth/token without a username: DRF's (translated) "This field is required."."""
    body = json.dumps({"password": PASSWORD})
    return RequestFactory().post(
        "/api/v1/auth/token", body, content_type="application/json", headers=headers
    )


def test_the_api_answers_in_english_whatever_the_caller_asks(client):
    """Through the whole middleware (the test client) as through the API's own handler."""
    response = client.post(
        "/api/v1/auth/token",
        {"password": PASSWORD},
        content_type="application/json",
        headers={"Accept-Language": "es"},
    )
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert "Content-Language" not in response
    spanish = {"Accept-Language": SPANISH["Accept-Language"]}
    status, headers, body = call_wsgi(api_paths(WSGIHandler()), api_call(**spanish).environ)
    assert status.startswith("400")
    assert "This field is required." in body.decode()
    assert "Content-Language" not in headers


def test_a_spanish_page_leaves_no_spanish_behind_for_the_next_api_call():
    """Django's LocaleMiddleware leaves its language on the thread; the API's handler has no
    locale middleware, so a call served next on that thread would answer DRF's messages in it."""
    application = api_paths(WSGIHandler())
    page = RequestFactory().get("/account/login/", headers=SPANISH).environ
    _, headers, _ = call_wsgi(application, page)
    assert headers["Content-Language"] == "es"
    status, _, body = call_wsgi(application, api_call().environ)
    assert status.startswith("400")
    assert "This field is required." in body.decode()


def test_the_hit_counter_answers_in_no_language(client):
    """`Hits: N` is the same in every language: no Content-Language, and no Vary on it."""
    response = client.get("/", headers=SPANISH)
    assert response.content.startswith(b"Hits: ")
    assert "Content-Language" not in response
    assert response["Vary"] == "Accept"


def test_the_password_reset_page_and_its_mail_are_in_spanish(client, mailoutbox):
    make_person("alice", email="alice@example.com")
    page = client.get("/account/password/reset/", headers=SPANISH).content.decode()
    assert "<h1>Restablece tu contraseña</h1>" in page
    response = client.post(
        "/account/password/reset/", {"email": "alice@example.com"}, headers=SPANISH, follow=True
    )
    assert "Revisa tu correo" in response.content.decode()
    [mail] = mailoutbox
    assert mail.subject == "Restablece tu contraseña en testserver"
    assert mail.body.startswith("Hola, alice:")
    assert "Una contraseña nueva no inicia tu sesión" in mail.body
