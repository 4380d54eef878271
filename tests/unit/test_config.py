from pathlib import Path

import pytest

from taskwatch.config import ConfigError, resolve

FILE = """
broker_url = "redis://file-top/0"
read_only = true
default_profile = "prod"

[profiles.prod]
broker_url = "redis://:secret@file-prod/0"
result_backend = "redis://file-prod/1"
jobstores = ["redis://file-prod/2"]

[profiles.staging]
broker_url = "amqp://staging//"
read_only = false
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(FILE)
    return path


def test_file_default_profile_overlays_top_level(config):
    s = resolve({}, env={}, config_file=config)
    assert s.profile == "prod"
    assert s.broker_url == "redis://:secret@file-prod/0"
    assert s.jobstores == ("redis://file-prod/2",)
    assert s.read_only is True  # top level, not overridden by the profile
    assert s.origins["broker_url"].startswith("file:")


def test_env_beats_file_and_taskwatch_beats_celery_var(config):
    env = {
        "CELERY_BROKER_URL": "redis://celery-env/0",
        "CELERY_RESULT_BACKEND": "redis://celery-env/1",
    }
    s = resolve({}, env=env, config_file=config)
    assert s.broker_url == "redis://celery-env/0"
    assert s.result_backend == "redis://celery-env/1"
    env["TASKWATCH_BROKER_URL"] = "redis://tw-env/0"
    s = resolve({}, env=env, config_file=config)
    assert s.broker_url == "redis://tw-env/0"
    assert s.origins["broker_url"] == "env:TASKWATCH_BROKER_URL"


def test_cli_beats_env(config):
    s = resolve(
        {"broker_url": "redis://cli/0", "read_only": False, "jobstores": ("a", "b")},
        env={"CELERY_BROKER_URL": "redis://env/0", "TASKWATCH_READ_ONLY": "1"},
        config_file=config,
    )
    assert (s.broker_url, s.read_only, s.jobstores) == ("redis://cli/0", False, ("a", "b"))
    assert s.origins["read_only"] == "cli"


def test_profile_choice_cli_then_env_then_file(config):
    assert (
        resolve({}, env={"TASKWATCH_PROFILE": "staging"}, config_file=config).broker_url
        == "amqp://staging//"
    )
    s = resolve({}, env={"TASKWATCH_PROFILE": "staging"}, config_file=config, profile="prod")
    assert s.profile == "prod"
    assert resolve({}, env={"TASKWATCH_CONFIG": str(config)}).profile == "prod"


def test_env_values_are_typed(tmp_path):
    s = resolve(
        {},
        env={
            "TASKWATCH_READ_ONLY": "yes",
            "TASKWATCH_JOBSTORE": "redis://a/2, postgresql://b/c",
            "TASKWATCH_INSPECT_TIMEOUT": "0.5",
        },
        config_file=_empty(tmp_path),
    )
    assert s.read_only is True
    assert s.jobstores == ("redis://a/2", "postgresql://b/c")
    assert s.inspect_timeout == 0.5


def _empty(folder: Path) -> Path:
    path = folder / "empty.toml"
    path.write_text("")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("broker_url = ", "invalid TOML"),
        ("brokr_url = 'x'", "unknown setting 'brokr_url'"),
        ("read_only = 'maybe'", "invalid read_only"),
        ("inspect_timeout = -1", "invalid inspect_timeout"),
        ("[profiles.p]\nwhat = 1", "unknown setting 'what'"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        resolve({}, env={}, config_file=path, profile="p" if "profiles" in text else None)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_profile_lists_known_ones(config):
    with pytest.raises(ConfigError, match=r"unknown profile 'nope'.*prod, staging"):
        resolve({}, env={}, config_file=config, profile="nope")


def test_explicit_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        resolve({}, env={}, config_file=tmp_path / "missing.toml")


def test_bad_env_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match=r"\$TASKWATCH_READ_ONLY"):
        resolve({}, env={"TASKWATCH_READ_ONLY": "perhaps"}, config_file=_empty(tmp_path))


def test_app_config_ranks_just_below_the_layer_that_named_it(config):
    # -A on the command line: the app's broker beats the config file's...
    s = resolve({"app": "proj"}, env={}, config_file=config)
    s = s.with_app_defaults("redis://from-app/0", "redis://from-app/1")
    assert s.broker_url == "redis://from-app/0"
    assert s.origins["broker_url"] == "app:proj"
    # ...but not the environment's or -b.
    s = resolve({"app": "proj"}, env={"CELERY_BROKER_URL": "redis://env/0"}, config_file=config)
    assert s.with_app_defaults("redis://from-app/0", None).broker_url == "redis://env/0"
    # An app named in the config file only fills what nothing else set.
    s = resolve({}, env={}, config_file=_write(config.parent, 'app = "proj"\n'))
    s = s.with_app_defaults("redis://from-app/0", None)
    assert s.broker_url == "redis://from-app/0"


def _write(folder: Path, text: str) -> Path:
    path = folder / "other.toml"
    path.write_text(text)
    return path


def test_describe_masks_secrets(config):
    rows = {
        name: (shown, origin)
        for name, shown, origin in resolve({}, env={}, config_file=config).describe()
    }
    assert rows["broker_url"][0] == "redis://:****@file-prod/0"


def test_origin_names_the_part_of_the_file_a_value_came_from(config):
    s = resolve({}, env={}, config_file=config)  # default_profile = "prod"
    assert s.origins["read_only"] == f"file:{config}"  # top level: prod does not set it
    assert s.origins["broker_url"] == f"file:{config} [profiles.prod]"
    staging = resolve({}, env={}, config_file=config, profile="staging")
    assert staging.origins["read_only"] == f"file:{config} [profiles.staging]"


@pytest.mark.parametrize("raw", ["inf", "nan", "-inf", "1e400", float("inf"), float("nan"), 0, "0", "301", True])
def test_inspect_timeout_is_a_finite_positive_bounded_number(tmp_path, raw):
    with pytest.raises(ConfigError, match="invalid inspect_timeout: expected seconds, more than 0 and at most 300"):
        resolve({"inspect_timeout": raw}, env={}, config_file=_empty(tmp_path))


@pytest.mark.parametrize("raw", ["-1", "0", "1.5", 0, 2.0, pytest.param("x" * 5000, id="5000-chars")])
def test_max_tasks_states_its_whole_range_once(tmp_path, raw):
    with pytest.raises(ConfigError) as info:
        resolve({"max_tasks": raw}, env={}, config_file=_empty(tmp_path))
    message = str(info.value)
    assert "expected a whole number from 1 to 10000000" in message
    assert len(message) < 150


def test_numbers_in_range_pass_through(tmp_path):
    s = resolve({"inspect_timeout": "300", "max_tasks": "1", "backfill": 0}, env={}, config_file=_empty(tmp_path))
    assert (s.inspect_timeout, s.max_tasks, s.backfill) == (300.0, 1, 0)
