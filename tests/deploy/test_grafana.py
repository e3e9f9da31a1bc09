"""deploy/grafana/dbapi.json: a Grafana dashboard whose every query is valid PromQL over the
metrics the application exports, by the names and labels fixed for them (README, "Metrics and the
dashboard"), with rate, errors and latency per action and a panel for each other concern."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import promql_parser
import pytest

from tests.servers import PROJECT_DIR

DASHBOARD = PROJECT_DIR / "deploy" / "grafana" / "dbapi.json"

# The application's metrics: kind and labels. The names are the contract with the code that
# exports them.
METRICS = {
    "dbapi_action_calls_total": ("counter", {"module", "action", "transport", "outcome"}),
    "dbapi_action_duration_seconds": ("histogram", {"module", "action", "transport"}),
    "dbapi_http_requests_total": ("counter", {"view", "method", "status"}),
    "dbapi_http_request_duration_seconds": ("histogram", {"view", "method"}),
    "dbapi_hits_total": ("counter", set()),
    "dbapi_hits_pending": ("gauge", set()),
    "dbapi_otp_verifications_total": ("counter", {"result"}),
    "dbapi_rate_limited_total": ("counter", {"module"}),
    "dbapi_dependency_errors_total": ("counter", {"dependency"}),
}
# Label values that are a closed set.
LABEL_VALUES = {
    "transport": {"http", "grpc"},
    "result": {"accepted", "rejected", "throttled", "replayed"},
    "dependency": {"database", "cache", "upstream"},
}
OUTCOME = re.compile(r"ok|[1-5][0-9][0-9]")


def series(name: str) -> tuple[str, set[str]]:
    """The metric a series belongs to, and the labels the series has."""
    if name in METRICS and METRICS[name][0] != "histogram":
        return name, METRICS[name][1]
    for suffix, extra in (("_bucket", {"le"}), ("_sum", set()), ("_count", set())):
        base = name.removesuffix(suffix)
        if name.endswith(suffix) and METRICS.get(base, ("",))[0] == "histogram":
            return base, METRICS[base][1] | extra
    raise AssertionError(f"{name} is not a series of any dbapi metric")


def as_promql(expr: str) -> str:
    """What Grafana sends: its variables replaced (All is `.*` for both multi-value ones)."""
    return (
        expr.replace("$__rate_interval", "5m").replace("$module", ".*").replace("$transport", ".*")
    )


@dataclass
class Query:
    """What one expression selects and groups by, found by walking its syntax tree."""

    selectors: list[promql_parser.VectorSelector] = field(default_factory=list)
    # (labels grouped by, labels of the series below the grouping)
    groupings: list[tuple[list[str], set[str]]] = field(default_factory=list)
    functions: set[str] = field(default_factory=set)


def analyse(expr: str) -> Query:
    query = Query()

    def labels_below(node) -> set[str]:
        inner = Query()
        visit(node, inner)
        found = set()
        for selector in inner.selectors:
            found |= series(selector.name)[1]
        return found

    def visit(node, into: Query):
        if isinstance(node, promql_parser.VectorSelector):
            into.selectors.append(node)
        elif isinstance(node, promql_parser.MatrixSelector):
            visit(node.vector_selector, into)
        elif isinstance(node, promql_parser.AggregateExpr):
            if node.modifier is not None:
                into.groupings.append((list(node.modifier.labels), labels_below(node.expr)))
            visit(node.expr, into)
        elif isinstance(node, promql_parser.BinaryExpr):
            visit(node.lhs, into)
            visit(node.rhs, into)
        elif isinstance(node, promql_parser.Call):
            into.functions.add(node.func.name)
            for arg in node.args:
                visit(arg, into)
        elif isinstance(
            node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr
        ):
            visit(node.expr, into)

    visit(promql_parser.parse(as_promql(expr)), query)
    return query


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def graph_panels() -> list[dict]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def targets() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"]) for panel in graph_panels() for target in panel["targets"]
    ]


def test_the_dashboard_is_a_grafana_dashboard_for_a_prometheus_source():
    board = dashboard()
    assert (board["uid"], board["title"]) == ("dbapi", "dbapi")
    assert isinstance(board["schemaVersion"], int)
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    [source] = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert source["query"] == "prometheus"
    for panel in graph_panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": f"${{{source['name']}}}"}
        refs = [target["refId"] for target in panel["targets"]]
        assert refs, panel["title"]
        assert len(refs) == len(set(refs)), panel["title"]


def test_no_two_panels_overlap():
    placed = [(panel["title"], panel["gridPos"]) for panel in dashboard()["panels"]]
    for i, (title, a) in enumerate(placed):
        assert a["x"] + a["w"] <= 24, title
        for other, b in placed[i + 1 :]:
            apart = (
                a["x"] + a["w"] <= b["x"]
                or b["x"] + b["w"] <= a["x"]
                or a["y"] + a["h"] <= b["y"]
                or b["y"] + b["h"] <= a["y"]
            )
            assert apart, (title, other)


def check_query(expr: str) -> None:
    """Fails unless every series, label and grouping of the query is one the metrics have."""
    query = analyse(expr)
    assert query.selectors, "a query without a metric"
    for selector in query.selectors:
        _, labels = series(selector.name)
        for matcher in selector.matchers.matchers:
            assert matcher.name in labels, (selector.name, matcher.name)
            exact = str(matcher.op) in {"MatchOp.Equal", "MatchOp.NotEqual"}
            if exact and matcher.name in LABEL_VALUES:
                assert matcher.value in LABEL_VALUES[matcher.name], matcher
            if exact and matcher.name == "outcome":
                assert OUTCOME.fullmatch(matcher.value), matcher
    for grouped_by, available in query.groupings:
        assert set(grouped_by) <= available, (grouped_by, available)


@pytest.mark.parametrize(("title", "expr"), targets(), ids=[t for t, _ in targets()])
def test_every_query_is_promql_over_the_applications_metrics(title, expr):
    check_query(expr)


@pytest.mark.parametrize(
    ("expr", "mistake"),
    [
        ("sum(rate(dbapi_action_calls[5m]))", "not a series"),
        ("rate(dbapi_hits_total_bucket[5m])", "not a series"),
        ('rate(dbapi_action_calls_total{status="500"}[5m])', "status"),
        ('rate(dbapi_action_calls_total{transport="rest"}[5m])', "rest"),
        ('rate(dbapi_action_calls_total{outcome!="error"}[5m])', "error"),
        ("sum by (view) (rate(dbapi_rate_limited_total[5m]))", "view"),
    ],
)
def test_a_query_naming_an_unknown_metric_label_or_value_is_caught(expr, mistake):
    """The checks above are strict enough to catch the mistakes they are for."""
    with pytest.raises(AssertionError, match=mistake):
        check_query(expr)


def test_a_query_that_is_not_promql_is_caught():
    with pytest.raises(ValueError):  # noqa: PT011 (the parser's own message)
        check_query("sum by (module (rate(dbapi_action_calls_total[5m]))")


def test_every_metric_of_the_application_is_on_the_dashboard():
    queried = {series(s.name)[0] for _, expr in targets() for s in analyse(expr).selectors}
    assert queried == set(METRICS)


def panels_querying(metric: str) -> list[tuple[dict, Query]]:
    found = []
    for panel in graph_panels():
        for target in panel["targets"]:
            query = analyse(target["expr"])
            if any(series(s.name)[0] == metric for s in query.selectors):
                found.append((panel, query))
    return found


def grouped_per_action(query: Query) -> bool:
    return any({"module", "action"} <= set(by) for by, _ in query.groupings)


def test_rate_errors_and_latency_per_action():
    calls = panels_querying("dbapi_action_calls_total")
    rates = [
        q
        for _, q in calls
        if "rate" in q.functions
        and grouped_per_action(q)
        and not any(m.name == "outcome" for s in q.selectors for m in s.matchers.matchers)
    ]
    errors = [
        q
        for _, q in calls
        if grouped_per_action(q)
        and any(
            m.name == "outcome" and str(m.op) == "MatchOp.NotEqual" and m.value == "ok"
            for s in q.selectors
            for m in s.matchers.matchers
        )
    ]
    latencies = [
        q
        for _, q in panels_querying("dbapi_action_duration_seconds")
        if "histogram_quantile" in q.functions
        and grouped_per_action(q)
        and any(s.name == "dbapi_action_duration_seconds_bucket" for s in q.selectors)
        and any("le" in by for by, _ in q.groupings)
    ]
    assert rates
    assert errors
    assert latencies


@pytest.mark.parametrize(
    "metric",
    [
        "dbapi_http_requests_total",
        "dbapi_http_request_duration_seconds",
        "dbapi_hits_total",
        "dbapi_hits_pending",
        "dbapi_otp_verifications_total",
        "dbapi_rate_limited_total",
        "dbapi_dependency_errors_total",
    ],
)
def test_each_concern_has_a_panel(metric):
    [(panel, _), *_] = panels_querying(metric)
    assert panel["title"]
    assert panel["description"]


def test_the_filters_list_values_of_the_action_metric():
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    module = variables["module"]
    match = re.fullmatch(r"label_values\((\w+), (\w+)\)", module["query"]["query"])
    assert match
    metric, label = match.groups()
    assert label in series(metric)[1]
    transports = {o["value"] for o in variables["transport"]["options"]} - {"$__all"}
    assert transports == LABEL_VALUES["transport"]
