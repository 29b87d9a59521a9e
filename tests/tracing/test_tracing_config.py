"""Tracing settings: the standard OTEL_* variables, validated at the edge and passed to the SDK."""

from __future__ import annotations

import sys

import pytest
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    TraceIdRatioBased,
)

from mcpserve.config import Settings, load_settings
from mcpserve.errors import ConfigError
from mcpserve.tracing_setup import build_sampler, build_tracer_provider, configure_tracing
from mcpserve.urls import MASK
from tests.support.logcheck import secret
from tests.support.otlp import otlp_receiver


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings({"auth": "none"})


def test_tracing_is_off_by_default_and_otel_sdk_disabled_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not load_settings({"auth": "none"}).tracing_enabled
    assert configure_tracing(load_settings({"auth": "none"})) is None
    assert _settings(monkeypatch, MCPSERVE_TRACING="true").tracing_enabled
    assert not _settings(monkeypatch, OTEL_SDK_DISABLED="true").tracing_enabled


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("always_on", ALWAYS_ON),
        ("always_off", ALWAYS_OFF),
        ("parentbased_always_on", ParentBased(ALWAYS_ON)),
        ("parentbased_always_off", ParentBased(ALWAYS_OFF)),
    ],
)
def test_static_samplers(monkeypatch: pytest.MonkeyPatch, name: str, expected: object) -> None:
    sampler = build_sampler(_settings(monkeypatch, OTEL_TRACES_SAMPLER=name))
    assert sampler.get_description() == expected.get_description()  # type: ignore[attr-defined]


def test_ratio_samplers_take_the_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(
        monkeypatch, OTEL_TRACES_SAMPLER="parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG="0.1"
    )
    expected = ParentBased(TraceIdRatioBased(0.1)).get_description()  # type: ignore[no-untyped-call]
    assert build_sampler(settings).get_description() == expected
    plain = _settings(monkeypatch, OTEL_TRACES_SAMPLER="traceidratio", OTEL_TRACES_SAMPLER_ARG="0.25")
    sampler = build_sampler(plain)
    assert isinstance(sampler, TraceIdRatioBased) and sampler.rate == 0.25


def test_export_headers_are_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    key = secret("vendor-key-" + "9" * 20)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"x-api-key={key}")
    assert load_settings({"auth": "none"}).redacted()["otel_exporter_otlp_headers"] == MASK
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", key)  # no "name=": refused without echoing it
    with pytest.raises(ConfigError) as raised:
        load_settings({"auth": "none"})
    assert raised.value.variable == "OTEL_EXPORTER_OTLP_HEADERS"
    assert key not in str(raised.value)


def test_the_provider_exports_to_the_configured_endpoint_with_resource_and_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = secret("vendor-key-" + "7" * 20)
    with otlp_receiver() as receiver:
        settings = _settings(
            monkeypatch,
            MCPSERVE_TRACING="true",
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.url + "/v1/traces",
            OTEL_EXPORTER_OTLP_HEADERS=f"x-api-key={key},x-team=ops%20team",
            OTEL_SERVICE_NAME="billing-mcp",
            OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=prod,team=a%2Cb",
        )
        provider = build_tracer_provider(settings)
        with provider.get_tracer("tests").start_as_current_span("one"):
            pass
        assert provider.force_flush(10_000)
        span = receiver.wait_for(lambda s: s.name == "one")
        provider.shutdown()
    assert span.resource["service.name"] == "billing-mcp"
    assert span.resource["deployment.environment.name"] == "prod"
    assert span.resource["team"] == "a,b"
    assert span.resource["service.version"]
    assert receiver.headers[0]["x-api-key"] == key
    assert receiver.headers[0]["x-team"] == "ops team"


def test_the_general_endpoint_gets_the_traces_path(monkeypatch: pytest.MonkeyPatch) -> None:
    with otlp_receiver() as receiver:
        settings = _settings(monkeypatch, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url + "/")
        provider = build_tracer_provider(settings)
        with provider.get_tracer("tests").start_as_current_span("two"):
            pass
        assert provider.force_flush(10_000)
        assert receiver.wait_for(lambda s: s.name == "two").resource["service.name"] == "mcpserve"
        provider.shutdown()


def test_other_exporters(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    silent = build_tracer_provider(_settings(monkeypatch, OTEL_TRACES_EXPORTER="none"))
    with silent.get_tracer("tests").start_as_current_span("kept-here") as span:
        assert span.is_recording()  # spans are still made (ids in logs), only not sent
    silent.shutdown()
    console = build_tracer_provider(_settings(monkeypatch, OTEL_TRACES_EXPORTER="console"))
    with console.get_tracer("tests").start_as_current_span("printed"):
        pass
    console.shutdown()
    assert '"name": "printed"' in capsys.readouterr().out


def test_otlp_export_needs_no_exporter_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """mcpserve encodes and posts spans itself: the SDK's OTLP exporter need not be installed."""
    for module in ("opentelemetry.exporter.otlp.proto.http", "opentelemetry.exporter.otlp.proto.common"):
        monkeypatch.setitem(sys.modules, module, None)
    with otlp_receiver() as receiver:
        provider = build_tracer_provider(
            _settings(monkeypatch, MCPSERVE_TRACING="true", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url)
        )
        with provider.get_tracer("tests").start_as_current_span("without the extra"):
            pass
        assert provider.force_flush(10_000)
        assert receiver.wait_for(lambda s: s.name == "without the extra")
        provider.shutdown()


def test_the_console_exporter_is_refused_on_stdio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("MCPSERVE_TRACING", "true")
    with pytest.raises(ConfigError) as raised:
        load_settings({"auth": "none", "transport": "stdio"})
    assert raised.value.variable == "OTEL_TRACES_EXPORTER"
    assert load_settings({"auth": "none", "transport": "http"}).otel_traces_exporter == "console"
