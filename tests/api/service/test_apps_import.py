"""Importing Dify DSL documents (console API and CLI), API keys, datasets from a directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.service.conftest import CONSOLE, chat_yaml
from opstrail.api.app import create_app
from opstrail.cli.main import build_app
from opstrail.settings import Settings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dsl"
SAMPLES = sorted(p.name for p in FIXTURES.glob("*.yml"))


@pytest.fixture(name="client")
def _client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", console_token="test-console-token",
                        model_fallback="offline", embedded_dispatcher=False, log_json=False)
    with TestClient(create_app(settings)) as client:
        yield client


def _import(client: TestClient, yaml_content: str) -> tuple[int, dict[str, object]]:
    answer = client.post("/console/api/apps/imports", headers=CONSOLE,
                         json={"mode": "yaml-content", "yaml_content": yaml_content})
    return answer.status_code, answer.json()


def test_every_sample_imports_with_its_mode(client: TestClient) -> None:
    """All six DSL samples import; old DSL versions and unknown tools are warnings."""
    assert len(SAMPLES) == 6
    for name in SAMPLES:
        status, body = _import(client, (FIXTURES / name).read_text(encoding="utf-8"))
        assert status == 200, (name, body)
        assert body["status"] in ("completed", "completed-with-warnings"), name
        expected_mode = name.split("_")[0].replace("advanced", "advanced-chat").replace("agent", "agent-chat")
        assert body["app_mode"] == expected_mode, name
    listed = client.get("/console/api/apps", headers=CONSOLE).json()
    assert listed["total"] == 6


def test_import_warns_for_unknown_dataset_and_resolves_local_one(client: TestClient) -> None:
    """A DSL dataset id with no local dataset is a warning; one created with that id resolves."""
    known = "0a1b2c3d-0000-4000-8000-0000000000bb"
    unknown = "0a1b2c3d-0000-4000-8000-0000000000cc"
    created = client.post("/console/api/datasets", headers=CONSOLE, json={
        "name": "Known", "id": known, "documents": [{"name": "a.txt", "text": "alpha beta"}]})
    assert created.status_code == 201
    extra = ("  dataset_configs:\n    datasets:\n      datasets:\n"
             f"      - dataset: {{enabled: true, id: {known}}}\n"
             f"      - dataset: {{enabled: true, id: {unknown}}}\n")
    status, body = _import(client, chat_yaml(extra=extra))
    assert status == 200
    assert body["status"] == "completed-with-warnings"
    assert [w for w in body["warnings"] if "dataset" in w] == [
        f"dataset {unknown} does not exist here; retrieval from it returns nothing "
        "(create it with `opstrail datasets create NAME --from DIR --id ID`)"]


@pytest.mark.parametrize(
    ("yaml_content", "named"),
    [
        ("app: {name: X, mode: chat}\nmodel_config:\n  model: {provider: openai, name: gpt-4o}\n"
         "  external_data_tools: [{enabled: true, variable: weather, type: api}]\n", "external_data_tools"),
        ("app: {name: X, mode: spreadsheet}\n", "spreadsheet"),
        ("not: [valid", "not valid YAML"),
        ("app: {name: X, mode: chat}\n", "model_config"),
    ],
)
def test_import_refuses_what_cannot_run_naming_it(client: TestClient, yaml_content: str, named: str) -> None:
    """Refusals are 400 invalid_dsl with a message naming the part."""
    status, body = _import(client, yaml_content)
    assert status == 400
    assert body["code"] == "invalid_dsl"
    assert named in str(body["message"])


def test_app_get_delete_and_key_need_console_token(client: TestClient) -> None:
    """Console endpoints need the console token; a deleted app's key stops working."""
    assert client.post("/console/api/apps/imports", json={"yaml_content": chat_yaml()}).status_code == 401
    _status, body = _import(client, chat_yaml())
    app_id = body["app_id"]
    token = client.post(f"/console/api/apps/{app_id}/api-keys", headers=CONSOLE).json()["token"]
    assert token.startswith("app-")
    assert client.get(f"/console/api/apps/{app_id}", headers=CONSOLE).json()["mode"] == "chat"
    assert client.delete(f"/console/api/apps/{app_id}", headers=CONSOLE).status_code == 204
    assert client.get(f"/console/api/apps/{app_id}", headers=CONSOLE).status_code == 404
    answer = client.post("/v1/chat-messages", headers={"Authorization": f"Bearer {token}"},
                         json={"inputs": {}, "query": "hi", "user": "u"})
    assert answer.status_code == 401


def _pdf(text: str) -> bytes:
    """A minimal one-page PDF showing ``text`` in Helvetica."""
    stream = f"BT /F1 18 Tf 72 700 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_cli_creates_dataset_from_directory_and_imports_app(tmp_path: Path) -> None:
    """`datasets create --from DIR --id` indexes txt/md/pdf; `apps import` resolves that id;
    the app then retrieves the PDF's text."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.md").write_text("# Notes\n\nGlaciers move slowly downhill.", encoding="utf-8")
    (docs / "plain.txt").write_text("Deserts get little rain.", encoding="utf-8")
    (docs / "volcano.pdf").write_bytes(_pdf("Volcanoes erupt molten lava."))
    (docs / "image.png").write_bytes(b"\x89PNG")
    dataset_id = "0a1b2c3d-0000-4000-8000-0000000000dd"
    env = {"OPSTRAIL_DATA_DIR": str(tmp_path / "data"), "OPSTRAIL_MODEL_FALLBACK": "offline",
           "OPSTRAIL_CONSOLE_TOKEN": "test-console-token"}
    runner = CliRunner()
    created = runner.invoke(build_app(), ["datasets", "create", "Nature", "--from", str(docs),
                                          "--id", dataset_id], env=env)
    assert created.exit_code == 0, created.output
    assert f"dataset {dataset_id} (Nature): 3 documents, 3 chunks" in created.output
    assert "skipped: image.png: unsupported type" in created.output
    again = runner.invoke(build_app(), ["datasets", "create", "Nature", "--from", str(docs),
                                        "--id", dataset_id], env=env)
    assert again.exit_code == 1 and "already exists" in again.output

    extra = ("  retriever_resource: {enabled: true}\n  dataset_configs:\n    datasets:\n      datasets:\n"
             f"      - dataset: {{enabled: true, id: {dataset_id}}}\n")
    app_file = tmp_path / "app.yml"
    app_file.write_text(chat_yaml(extra=extra), encoding="utf-8")
    imported = runner.invoke(build_app(), ["apps", "import", str(app_file), "--api-key"], env=env)
    assert imported.exit_code == 0, imported.output
    assert imported.output.startswith("completed: app ")
    token = imported.output.split("api key: ")[1].strip()
    listed = runner.invoke(build_app(), ["apps", "list"], env=env)
    assert "\tchat\tHelper" in listed.output

    settings = Settings(data_dir=tmp_path / "data", console_token="test-console-token",
                        model_fallback="offline", embedded_dispatcher=False, log_json=False)
    with TestClient(create_app(settings)) as client:
        answer = client.post("/v1/chat-messages", headers={"Authorization": f"Bearer {token}"}, json={
            "inputs": {"team": "x"}, "query": "what do volcanoes erupt?", "user": "u",
            "response_mode": "blocking"})
    assert answer.status_code == 200, answer.text
    resources = answer.json()["metadata"]["retriever_resources"]
    assert resources[0]["document_name"] == "volcano.pdf"
    assert "Volcanoes erupt molten lava." in resources[0]["content"]
