from pathlib import Path

import pytest

from sluice.workflows.loader import ConfigError, load_catalog, parse_duration


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
    ],
)
def test_bad_config_names_the_offending_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_catalog(write(tmp_path, text))
    assert message in str(error.value)


def test_durations() -> None:
    assert parse_duration("250ms", "x") == 0.25
    assert parse_duration("2h", "x") == 7200
    assert parse_duration(30, "x") == 30
    with pytest.raises(ConfigError):
        parse_duration("soon", "x")
