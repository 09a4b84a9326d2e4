"""The container files: no engine runs here, so what CI can prove is that the image installs with
exactly the command .ci/run runs, and that the image and compose say what the README promises."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _install_command(text: str) -> str:
    match = re.search(r"python3 -m venv \.venv && \.venv/bin/pip install -e '\.\[test\]'", text)
    assert match, "install command not found"
    return match.group(0)


def test_dockerfile_installs_with_the_ci_command() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    run_lines = [line for line in dockerfile.splitlines() if line.startswith("RUN ")]
    assert any(_install_command(ci) in line for line in run_lines)


def test_image_is_multi_stage_non_root_with_a_data_volume_and_runs_paperboy() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) >= 2
    assert "COPY --from=build" in dockerfile
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and user[-1] not in ("root", "0")
    assert 'VOLUME ["/data"]' in dockerfile and "PAPERBOY_DATA_DIR=/data" in dockerfile
    assert 'ENTRYPOINT ["paperboy"]' in dockerfile and 'CMD ["run"]' in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_compose_runs_two_replicas_on_one_postgresql() -> None:
    compose = (ROOT / "compose.yaml").read_text()
    assert re.search(r"^\s+replicas: 2$", compose, re.M)
    assert re.search(r"PAPERBOY_DATABASE_URL: postgresql\+psycopg://\S+@postgres:5432/", compose)
    assert "image: postgres:" in compose and "condition: service_healthy" in compose


def test_compose_and_image_check_health_on_the_metrics_port() -> None:
    from bot.config import MetricsSettings

    port = MetricsSettings().port
    compose = (ROOT / "compose.yaml").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"http://127.0.0.1:{port}/healthz" in compose
    assert f"http://127.0.0.1:{port}/healthz" in dockerfile and f"EXPOSE {port}" in dockerfile
