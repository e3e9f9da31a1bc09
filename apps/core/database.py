"""How long a request waits for PostgreSQL: a database that stops answering is given up on.

A frozen or partitioned server keeps its TCP connections open and ACKed: libpq would wait for
it forever (keepalives and `tcp_user_timeout` never fire) and gunicorn would kill the worker.
So psycopg2 runs libpq in non-blocking mode with `wait()` as its wait callback (`install()`):
every wait for the server (connecting, a statement's answer, a COMMIT) goes through it, and it
gives up once the server has been silent too long. psycopg2 then closes the connection (never
handed to another request), and `DatabaseTimeout` becomes, through Django's OperationalError and
apps.core.problems, a 503 with `Retry-After` (gRPC: UNAVAILABLE).

How long is too long belongs to the request: the request scope sets `timeout(DB_TIMEOUT)` (and
a gRPC call's deadline), blocks inside narrow it with `deadline()` or widen it for long
statements with `statement_allowance()`. Once a request gave up on a server, its later waits
for it (a rollback, a reconnection) give up at once. Outside a request (commands, the shell)
statements take as long as they take; connecting is bounded by the connection's
`connect_timeout` (DB_CONNECT_TIMEOUT), which libpq leaves to the callback in this mode.

Given up on before the COMMIT was sent, nothing is committed: the server rolls back when it
finds the connection closed. After, or on a writing statement outside a transaction, the server
may still apply it: `DatabaseTimeout.outcome_unknown`, and the 503 does not claim that nothing
changed.

A limit of psycopg2's non-blocking mode: its COPY methods (`copy_from`, `copy_to`,
`copy_expert`) raise ProgrammingError.
"""

from __future__ import annotations

import math
import re
import select
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass, field

import psycopg2
from psycopg2 import extensions

# Seconds the probe of a silent server gets to connect and answer `SELECT 1` (at most half the
# request's timeout): it starts this long before the timeout is up.
PROBE_SECONDS = 2.0
# Seconds a wait may outlast the caller's deadline: a live server cancels the statement at that
# deadline itself (the actions' statement_timeout) and keeps the connection, so it goes first.
DEADLINE_GRACE_SECONDS = 1.0

_POLL_OK = extensions.POLL_OK
_POLL_READ = extensions.POLL_READ
_STATUS_READY = extensions.STATUS_READY  # no transaction yet: a BEGIN is what it waits for
_STATUS_BEGIN = extensions.STATUS_BEGIN  # in a transaction
_STATUS_PREPARED = extensions.STATUS_PREPARED  # in a two-phase commit
# Any other status is a connection being set up: psycopg2's SETUP, and CONNECTING and DATESTYLE,
# which its non-blocking mode goes through and does not export.
_READABLE = select.POLLIN | select.POLLPRI
_WRITABLE = select.POLLOUT
_clock = time.monotonic


class DatabaseTimeout(psycopg2.OperationalError):
    """The database did not answer in time; the connection was closed.

    `outcome_unknown`: what was waited for (a COMMIT, or a statement outside a transaction) may
    still take effect when the server answers again. Otherwise nothing was committed.
    """

    def __init__(self, message: str, *, outcome_unknown: bool = False):
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


@dataclass(frozen=True, slots=True)
class Patience:
    """How long waits for the database may last, in the current request."""

    timeout: float | None  # seconds one wait may stay silent; None: as long as it takes
    deadline: float | None = None  # monotonic time no wait lasts past
    allowance: float = 0.0  # seconds a statement may stay silent while the server answers probes
    # Servers (host, port) this request gave up on, and whether what it then waited for may still
    # take effect: shared by the blocks nested in the request.
    given_up: dict[tuple[str, str], bool] = field(default_factory=dict)


_patience: ContextVar[Patience | None] = ContextVar("database_patience", default=None)


def install() -> None:
    """Make psycopg2 wait through `wait()`: once per process, when PostgreSQL is configured."""
    if extensions.get_wait_callback() is not wait:
        extensions.set_wait_callback(wait)


class _Within:
    """The block in which `patience` holds (a class rather than a generator: it wraps every
    request, so it is kept cheap)."""

    __slots__ = ("patience", "token")

    def __init__(self, patience: Patience):
        self.patience = patience

    def __enter__(self) -> None:
        self.token = _patience.set(self.patience)

    def __exit__(self, *exc_info: object) -> None:
        _patience.reset(self.token)


def timeout(seconds: float, *, within: float | None = None) -> _Within:
    """Serve a request inside the block: a wait for the database silent for `seconds` gives up,
    and, when the caller waits `within` seconds at most (a gRPC call's time remaining), none
    lasts more than DEADLINE_GRACE_SECONDS past that."""
    if within is not None:
        within += DEADLINE_GRACE_SECONDS
    return _Within(Patience(timeout=seconds, deadline=_deadline_in(within)))


def deadline(seconds: float) -> _Within:
    """No wait for the database inside the block lasts past `seconds` from now (nor past the
    request's own deadline)."""
    outer = _patience.get() or Patience(timeout=None)
    at = _deadline_in(seconds)
    if outer.deadline is not None:
        at = min(at, outer.deadline)
    return _Within(
        Patience(
            timeout=outer.timeout, deadline=at, allowance=outer.allowance, given_up=outer.given_up
        )
    )


def statement_allowance(seconds: float) -> _Within:
    """Let statements inside the block run silent for up to `seconds` (plus the request's timeout
    for the server to report their end, e.g. a `statement_timeout` of the same `seconds`), as
    long as the server answers a probe each time the timeout passes.

    For work that is legitimately long (an action with a longer timeout): without it, a
    statement silent for DB_TIMEOUT is given up on. The request's deadline still holds, and
    gunicorn's worker timeout must stay above the longest allowance + DB_TIMEOUT.
    """
    outer = _patience.get() or Patience(timeout=None)
    # Made field by field: dataclasses.replace costs more than the rest, on every action call.
    return _Within(
        Patience(
            timeout=outer.timeout,
            deadline=outer.deadline,
            allowance=seconds,
            given_up=outer.given_up,
        )
    )


def wait(conn: extensions.connection) -> None:
    """psycopg2's wait callback: wait for the server as libpq would, within the request's
    patience; raise DatabaseTimeout (psycopg2 then closes the connection) when it runs out."""
    state = conn.poll()
    if state == _POLL_OK:
        return
    patience = _patience.get()
    status = conn.status
    connecting = status != _STATUS_BEGIN and status != _STATUS_READY and status != _STATUS_PREPARED
    if patience is None and not connecting:  # outside a request: as long as it takes
        fd = conn.fileno()
        while state != _POLL_OK:
            _ready(fd, state, None)
            state = conn.poll()
        return
    if patience is None:
        patience = Patience(timeout=None)
    if patience.given_up and _server(conn) in patience.given_up:
        # The request's outcome is that of the wait it gave up on (a reconnection, a rollback
        # after a COMMIT that got no answer, must not hide that the COMMIT may have been applied).
        outcome_unknown = patience.given_up[_server(conn)]
        raise DatabaseTimeout(
            "The database did not answer earlier in this request.", outcome_unknown=outcome_unknown
        )
    silence = patience.timeout
    if connecting:
        connect_timeout = _connect_timeout(conn)
        if connect_timeout is not None and (silence is None or connect_timeout < silence):
            silence = connect_timeout
    # A statement may outlast the timeout within its allowance, probes permitting. The probe
    # starts early enough for its answer to be in when the silence reaches the timeout, so a
    # server that stopped answering is given up on within the timeout, probe included.
    allowance = 0.0 if connecting else patience.allowance
    lead = silence
    if allowance and silence is not None:
        lead = max(silence - PROBE_SECONDS, silence / 2)
    fd = conn.fileno()
    started = _clock()
    until = _until(started, lead, patience.deadline)
    while True:
        while not _ready(fd, state, until):
            now = _clock()
            if now < until:
                continue
            # Silent too long. Within an allowance, keep waiting while the server is alive.
            if (
                allowance
                and silence is not None
                and now < started + allowance + silence
                and (patience.deadline is None or now < patience.deadline)
                and _server_answers(conn, within=silence - lead)
            ):
                now = _clock()
                until = min(_until(now, lead, patience.deadline), started + allowance + silence)
                continue
            raise _given_up(
                conn,
                patience,
                connecting,
                "The database did not answer within the request's time limit.",
            )
        state = conn.poll()
        if state == _POLL_OK:
            return
        # An answer is coming in: silence counts again from now (a statement's allowance does not).
        until = _until(_clock(), lead, patience.deadline)


def _ready(fd: int, state: int, until: float | None) -> bool:
    """Wait until the socket is ready for what libpq needs (`state`), or `until` (monotonic)."""
    poller = select.poll()
    poller.register(fd, _READABLE if state == _POLL_READ else _WRITABLE)
    if until is None:
        return bool(poller.poll())
    remaining = until - _clock()
    return remaining > 0 and bool(poller.poll(remaining * 1000))


def _until(now: float, silence: float | None, deadline: float | None) -> float | None:
    until = None if silence is None else now + silence
    if deadline is not None and (until is None or deadline < until):
        until = deadline
    return until


def _deadline_in(seconds: float | None) -> float | None:
    if seconds is None or math.isinf(seconds):
        return None
    return _clock() + max(seconds, 0.0)


def _server(conn: extensions.connection) -> tuple[str, str]:
    info = conn.info
    return (info.host, str(info.port))


def _connect_timeout(conn: extensions.connection) -> float | None:
    """The connection's own `connect_timeout`, which libpq leaves to this callback."""
    value = conn.get_dsn_parameters().get("connect_timeout")
    try:
        seconds = float(value) if value else 0.0
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def _given_up(
    conn: extensions.connection, patience: Patience, connecting: bool, message: str
) -> DatabaseTimeout:
    outcome_unknown = _outcome_unknown(conn, connecting)
    server = _server(conn)
    patience.given_up[server] = patience.given_up.get(server, False) or outcome_unknown
    return DatabaseTimeout(message, outcome_unknown=outcome_unknown)


def _outcome_unknown(conn: extensions.connection, connecting: bool) -> bool:
    """Whether what was waited for may still take effect: a COMMIT, or a statement outside a
    transaction that changes data. Connecting, a BEGIN, and statements in a transaction change
    nothing until the COMMIT, which the server never gets."""
    if connecting:
        return False
    if conn.autocommit:  # the statement commits itself
        return not _changes_nothing(_statement_in_flight(conn))
    if conn.status == _STATUS_READY:
        return False
    # In a transaction: Django leaves its outermost atomic block before it sends the COMMIT.
    from django.db import connections

    for wrapper in connections.all(initialized_only=True):
        if wrapper.connection is conn:
            return not wrapper.in_atomic_block
    return True


# Statements that change nothing the database keeps (a read, a session setting, a cursor).
_CHANGES_NOTHING = re.compile(
    r"\s*(SELECT|SHOW|SET|RESET|BEGIN|START|ROLLBACK|DECLARE|FETCH|MOVE|CLOSE)\b", re.IGNORECASE
)
_SELECT_INTO = re.compile(r"\bINTO\b", re.IGNORECASE)  # SELECT … INTO creates a table


def _changes_nothing(sql: str | None) -> bool:
    return (
        sql is not None and _CHANGES_NOTHING.match(sql) is not None and not _SELECT_INTO.search(sql)
    )


def _statement_in_flight(conn: extensions.connection) -> str | None:
    """The text of the statement being waited for, read from the frame that handed it to
    psycopg2: its `sql` (Django's cursor wrapper), or the query of a psycopg2 cursor of `conn`
    among its variables. Nothing is recorded per statement, so this costs nothing until a wait is
    given up on. None when it cannot be read (then the outcome is unknown)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    if frame is None:
        return None
    names = frame.f_locals
    sql = names.get("sql")
    if isinstance(sql, str):
        return sql
    for value in names.values():
        if isinstance(value, extensions.cursor) and value.connection is conn and value.query:
            return value.query.decode(errors="replace")
    return None


def _server_answers(conn: extensions.connection, *, within: float = PROBE_SECONDS) -> bool:
    """Whether the server behind `conn` answers `SELECT 1` on a new connection within `within`
    seconds: a silent connection to a live server is a long statement, not an outage."""
    params = {key: value for key, value in conn.get_dsn_parameters().items() if value}
    if conn.info.password:
        params["password"] = conn.info.password
    token = _patience.set(Patience(timeout=within, deadline=_deadline_in(within)))
    try:
        probe = psycopg2.connect(**params)
        try:
            probe.autocommit = True
            with probe.cursor() as cursor:
                cursor.execute("SELECT 1")
        finally:
            probe.close()
    except psycopg2.Error:
        return False
    finally:
        _patience.reset(token)
    return True
