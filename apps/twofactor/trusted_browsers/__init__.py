"""Trusted browsers ("Trust this browser for 30 days" at the code step of a login): the records,
the signed cookie that points at one, the login's use of them and the page that revokes them."""
