import json

from sqlalchemy import select

from crm.models import Contact, User


def _csv(tmp_path, text, name="people.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_import_prints_counts(app, make_user, tmp_path, services):
    make_user("admin", admin=True)
    path = _csv(tmp_path, "first_name,last_name,email\nAda,Lovelace,ada@example.com\n,,bad\n")
    result = app.test_cli_runner().invoke(args=["crm", "import-csv", "contacts", path])
    assert result.exit_code == 0, result.output
    assert "created: 1\nupdated: 0\nrejected: 1" in result.output
    assert "row 3:" in result.output
    with services.session() as s:
        admin_id = s.scalars(select(User.id)).one()
        assert s.scalars(select(Contact.created_by_id)).one() == admin_id


def test_import_json_and_reimport_updates(app, make_user, tmp_path):
    make_user("admin", admin=True)
    path = _csv(tmp_path, "name,email\nAcme,info@acme.example\n")
    runner = app.test_cli_runner()
    first = runner.invoke(args=["crm", "import-csv", "accounts", path, "--json"])
    assert json.loads(first.output) == {"created": 1, "updated": 0, "rejected": 0, "rejections": []}
    second = runner.invoke(args=["crm", "import-csv", "accounts", path, "--json"])
    assert json.loads(second.output)["updated"] == 1


def test_import_as_named_user(app, make_user, tmp_path, services):
    rep = make_user("rep")
    path = _csv(tmp_path, "first_name,last_name,email\nJo,Park,jo@example.com\n")
    result = app.test_cli_runner().invoke(
        args=["crm", "import-csv", "leads", path, "--user", "rep", "--json"]
    )
    assert json.loads(result.output)["created"] == 1
    unknown = app.test_cli_runner().invoke(
        args=["crm", "import-csv", "leads", path, "--user", "nobody"]
    )
    assert unknown.exit_code != 0 and "no active user 'nobody'" in unknown.output
    with services.session() as s:
        from crm.models import Lead

        assert s.scalars(select(Lead.assigned_user_id)).one() == rep


def test_unknown_kind_and_empty_file_fail(app, make_user, tmp_path):
    make_user("admin", admin=True)
    runner = app.test_cli_runner()
    assert (
        runner.invoke(args=["crm", "import-csv", "widgets", _csv(tmp_path, "a\n")]).exit_code == 2
    )
    empty = runner.invoke(args=["crm", "import-csv", "accounts", _csv(tmp_path, "", "e.csv")])
    assert empty.exit_code == 1 and "empty" in empty.output
