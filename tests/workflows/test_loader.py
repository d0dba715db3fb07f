from pathlib import Path

import pytest

from sluice.providers.config import ProviderConfig
from sluice.providers.options import BreakerPolicy
from sluice.workflows.loader import ConfigError, build_catalog, load_catalog, parse_duration


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sluice.yaml"
    path.write_text(text)
    return path


def test_builtin_demo_workflow_exists_with_the_seed_schema() -> None:
    demo = load_catalog(None).workflows["demo"]
    assert demo.chain[0].provider == "simulated"
    assert list(demo.schema["properties"]) == ["reply", "summary", "sentiment", "confidence", "topics", "action_items"]


def test_env_interpolation_and_missing_variables_are_recorded(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
providers:
  openai: {type: openai, api_key: "${OPENAI_KEY}", base_url: "${BASE:-https://api.openai.com/v1}"}
  claude: {type: anthropic, api_key: "${NOT_SET}"}
workflows:
  w: {chain: [{provider: openai, model: gpt-4o-mini}], callback: {timeout: 5m, on_timeout: fail}}
""",
    )
    catalog = load_catalog(path, environ={"OPENAI_KEY": "sk-123"})
    assert catalog.providers["openai"].options == {"api_key": "sk-123", "base_url": "https://api.openai.com/v1"}
    assert catalog.providers["openai"].missing_env == ()
    assert catalog.providers["claude"].missing_env == ("NOT_SET",)
    assert catalog.workflows["w"].callback.timeout == 300
    assert "demo" in catalog.workflows


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workflows: {w: {chain: [{provider: nope, model: m}]}}", "workflows.w.chain[0].provider: unknown provider"),
        ("workflows: {w: {chain: [], system: x}}", "workflows.w.chain"),
        ("workflows: {w: {chain: [{provider: simulated, model: m}], sytem: x}}", "unknown keys ['sytem']"),
        ("providers: {p: {type: magic}}", "providers.p.type: must be one of"),
        ("workflowz: {}", "unknown top-level keys ['workflowz']"),
        ("workflows: {w: {chain: [{provider: simulated, model: m}], schema: {a: 'array<'}}}", "workflows.w.schema.a"),
        ("workflows: {w: {chain: [{provider: simulated, model: m}], callback: {on_timeout: maybe}}}", "on_timeout"),
        (
            "workflows: {w: {chain: [{provider: simulated, model: m}], continuation: sometimes}}",
            "workflows.w.continuation: must be 'auto' or 'off', not 'sometimes'",
        ),
        ("providers: {o: {type: openai, continuation: prefill}}", "providers.o.continuation: input should be"),
        (
            "workflows: {w: {chain: [{provider: simulated, model: m}], cancel_when_unwatched_for: soon}}",
            "workflows.w.cancel_when_unwatched_for: expected a duration",
        ),
        (
            "workflows: {w: {chain: [{provider: simulated, model: m}], cancel_when_unwatched_for: 500ms}}",
            "workflows.w.cancel_when_unwatched_for: at least 1s",
        ),
    ],
)
def test_bad_config_names_the_offending_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_catalog(write(tmp_path, text))
    assert message in str(error.value)


def test_cancel_when_unwatched_for_is_off_unless_set(tmp_path: Path) -> None:
    text = "workflows: {w: {chain: [{provider: simulated, model: m}], cancel_when_unwatched_for: 30s}}"
    catalog = load_catalog(write(tmp_path, text))
    assert catalog.workflows["w"].cancel_when_unwatched_for == 30.0
    assert catalog.workflows["demo"].cancel_when_unwatched_for is None  # a browser leaving never cancels by default


def test_durations() -> None:
    assert parse_duration("250ms", "x") == 0.25
    assert parse_duration("2h", "x") == 7200
    assert parse_duration(30, "x") == 30
    with pytest.raises(ConfigError):
        parse_duration("soon", "x")


def provider(record: dict, environ: dict | None = None, name: str = "p") -> ProviderConfig:
    return build_catalog({"providers": {name: record}, "workflows": {}}, environ or {}).providers[name]


@pytest.mark.parametrize(
    ("name", "record", "message"),
    [
        (
            "openai",
            {"type": "openai", "api_kye": "x"},
            "providers.openai.api_kye: unknown option; "
            "allowed: api_key, base_url, breaker, continuation, headers, merge_reads, prices, stream_usage",
        ),
        (
            "local",
            {"type": "openai-compatible", "base_url": 8000},
            "providers.local.base_url: input should be a valid string, not 8000",
        ),
        (
            "local",
            {"type": "openai-compatible", "base_url": "localhost:8000/v1"},
            "providers.local.base_url: expected an http:// or https:// URL, not 'localhost:8000/v1'",
        ),
        (
            "openai",
            {"type": "openai", "breaker": {"failurs": 3}},
            "providers.openai.breaker.failurs: unknown option; allowed: cooldown, failures, probe_timeout",
        ),
        (
            "flaky",
            {"type": "openai", "breaker": {"cooldown": "soon"}},
            "providers.flaky.breaker.cooldown: expected a duration such as 30s, 5m or 250ms, not 'soon'",
        ),
        ("flaky", {"type": "openai", "breaker": {"failures": 0}}, "providers.flaky.breaker.failures: input should be"),
        ("flaky", {"type": "openai", "breaker": 3}, "providers.flaky.breaker: expected a mapping, not 3"),
        ("local", {"type": "openai-compatible"}, "providers.local: needs base_url, or a preset: one of vllm,"),
        ("local", {"type": "openai-compatible", "preset": "vlm"}, "providers.local.preset: must be one of vllm,"),
        (
            "claude",
            {"type": "anthropic", "structured_output": "json"},
            "providers.claude.structured_output: input should be 'tool' or 'output_format', not 'json'",
        ),
        ("sim", {"type": "simulated", "pace_ms": True}, "providers.sim.pace_ms: expected a number, not True"),
        ("p", {"type": "vllm"}, "providers.p.type: must be one of simulated, openai, openai-compatible,"),
    ],
)
def test_provider_options_are_validated_by_path(name: str, record: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        provider(record, name=name)
    assert str(error.value).startswith(message), str(error.value)


def test_every_problem_is_named_and_a_secret_value_never_shown() -> None:
    with pytest.raises(ConfigError) as error:
        provider({"type": "openai", "api_kye": "x", "api_key": 12345678, "breaker": {"failurs": 3}})
    lines = str(error.value).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "providers.p.api_key",
        "providers.p.api_kye",
        "providers.p.breaker.failurs",
    ]
    assert "12345678" not in str(error.value)


def test_breaker_and_options_become_the_validated_config() -> None:
    config = provider({"type": "openai", "api_key": "k", "breaker": {"failures": "3", "cooldown": "500ms"}})
    assert config.breaker == BreakerPolicy(failures=3, cooldown=0.5)
    assert config.adapter_options == {"api_key": "k"}  # the engine's own options are not the adapter's
    assert provider({"type": "openai"}).breaker == BreakerPolicy()
    local = provider({"type": "openai-compatible", "preset": "vllm", "structured_output": "guided_json"})
    assert (local.dialect, local.adapter_options) == ("guided_json", {"preset": "vllm"})
    assert provider({"type": "anthropic"}).dialect == "tool"


def test_a_missing_variable_still_loads_but_a_misspelt_option_does_not() -> None:
    record = {
        "type": "openai-compatible",
        "base_url": "${LOCAL_URL}",
        "api_key": "${LOCAL_KEY}",
        "breaker": {"cooldown": "${COOLDOWN}"},
    }
    config = provider(record)
    assert config.missing_env == ("LOCAL_URL", "LOCAL_KEY", "COOLDOWN")
    assert config.breaker == BreakerPolicy()  # the unset value's default stands in; the provider cannot run anyway
    assert provider(record, {"LOCAL_URL": "http://127.0.0.1:8000/v1", "LOCAL_KEY": "k", "COOLDOWN": "2s"}).breaker == (
        BreakerPolicy(cooldown=2)
    )
    with pytest.raises(ConfigError, match=r"providers\.p\.api_kye: unknown option"):
        provider({"type": "openai", "api_kye": "${LOCAL_KEY}"})
    with pytest.raises(ConfigError, match=r"providers\.p\.breaker\.cooldown: expected a duration"):
        provider({"type": "openai", "api_key": "${LOCAL_KEY}", "breaker": {"cooldown": "soon"}})


def test_continuation_per_workflow_and_per_provider_with_yaml_s_bare_off(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
providers:
  claude: {type: anthropic, api_key: k}
  local: {type: openai-compatible, base_url: "http://127.0.0.1:8000/v1", continuation: prefill, vllm_prefill: true}
  gpt: {type: openai, api_key: k, continuation: off}
workflows:
  quiet: {chain: [{provider: claude, model: c}], continuation: off}
  usual: {chain: [{provider: claude, model: c}]}
""",
    )
    catalog = load_catalog(path)
    assert (catalog.workflows["quiet"].continuation, catalog.workflows["usual"].continuation) == ("off", "auto")
    methods = {name: config.continuation for name, config in catalog.providers.items()}
    assert methods == {"claude": "prefill", "local": "prefill", "gpt": "off", "simulated": "prefill"}
    assert catalog.providers["local"].adapter_options["vllm_prefill"] is True  # the adapter sends vLLM's fields
    assert "continuation" not in catalog.providers["local"].adapter_options  # the engine's own option
