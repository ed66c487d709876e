"""`flask crm render-template`: a stored template or a file, with a record and a recipient,
plain or --json; a template error exits with status 2."""

from __future__ import annotations

import json

import pytest

from crm.models import EmailTemplate, User
from crm.templating import library
from crm.templating.library import TemplateInput
from tests.support import records


def _cli(app, *args):
    return app.test_cli_runner().invoke(args=["crm", "render-template", *args])


@pytest.fixture
def setup(services, make_user):
    rep_id = make_user("rep", ["rep@example.com"], name="Rita Rep")
    make_user("other")
    with services.session() as session:
        rep = session.get(User, rep_id)
        acme = records.account(session, "Acme & Co", assigned_user_id=rep_id)
        records.contact(session, "Ann", "Buyer", ["ann@acme.example"], assigned_user_id=rep_id)
        data = TemplateInput(name="Offer", subject="Offer for {Account.name}",
                             body="<p>Dear {Person.firstName}, {User.name}</p>")  # fmt: skip
        template = library.create(session, services.blobs, rep, data)
        session.commit()
        return {"template": template.id, "acme": acme.id}


def test_a_stored_template_for_a_record_and_recipient(app, setup):
    result = _cli(app, "--id", str(setup["template"]), "--parent", f"Account:{setup['acme']}",
                  "--to", "ann@acme.example")  # fmt: skip
    assert result.exit_code == 0, result.output + result.stderr
    assert result.stdout == "Subject: Offer for Acme & Co\n\n<p>Dear Ann, Rita Rep</p>\n"
    assert result.stderr == ""


def test_json_with_warnings(app, setup):
    result = _cli(app, "--id", str(setup["template"]), "--user", "rep", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["subject"] == "Offer for {Account.name}" and out["is_html"] is True
    assert "{Account.name} gave nothing and was left as written." in out["warnings"]
    assert "{Person.firstName} gave nothing and was left as written." in out["warnings"]


def test_warnings_go_to_stderr(app, setup):
    result = _cli(app, "--id", str(setup["template"]))
    assert result.exit_code == 0
    assert "warning: {Account.name} gave nothing" in result.stderr


def test_a_file_with_a_subject(app, setup, tmp_path):
    path = tmp_path / "note.txt"
    path.write_text("Hi {Person.firstName} from {Account.name}\n{{#if name}}{{name}}{{/if}}")
    result = _cli(app, "--file", str(path), "--subject", "For {Account.name}", "--user", "rep",
                  "--parent", f"Account:{setup['acme']}", "--to", "ann@acme.example", "--json")  # fmt: skip
    out = json.loads(result.stdout)
    assert out == {"subject": "For Acme & Co", "body": "Hi Ann from Acme & Co\nAcme & Co",
                   "is_html": False, "warnings": []}  # fmt: skip


def test_a_template_error_exits_with_status_2(app, setup, tmp_path):
    path = tmp_path / "bad.html"
    path.write_text("<p>ok</p>\n{{#each items}}never closed")
    result = _cli(app, "--file", str(path), "--user", "rep")
    assert result.exit_code == 2
    assert result.stderr.startswith("template error: line 2, column 1:")
    as_json = _cli(app, "--file", str(path), "--user", "rep", "--json")
    assert as_json.exit_code == 2
    assert json.loads(as_json.stdout)["error"]["line"] == 2


def test_a_stored_template_with_an_error_exits_with_status_2(app, services, setup):
    with services.session() as session:
        row = session.get(EmailTemplate, setup["template"])
        row.body = "{{[__class__]}}"  # past the form's check, say
        session.commit()
    result = _cli(app, "--id", str(setup["template"]), "--json")
    assert result.exit_code == 2 and "brackets" in json.loads(result.stdout)["error"]["message"]


def test_bad_arguments_are_clear_errors(app, setup):
    assert _cli(app).exit_code == 2  # neither --id nor --file: a usage error
    assert "no template 999" in _cli(app, "--id", "999").stderr
    assert (
        "--parent must be TYPE:ID"
        in _cli(app, "--id", str(setup["template"]), "--parent", "x").stderr
    )
    assert (
        "no Account 999"
        in _cli(app, "--id", str(setup["template"]), "--parent", "Account:999").stderr
    )
    refused = _cli(app, "--id", str(setup["template"]), "--user", "other")
    assert refused.exit_code == 1 and "other may not use template" in refused.stderr
