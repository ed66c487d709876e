import pytest
from sqlalchemy import func, select

from crm.models import Account, Contact, Lead, User
from crm.records import addressbook, csv_import


@pytest.fixture
def rep(db, make_user):
    return db.get(User, make_user("rep"))


def _run(db, kind, text, actor, mapping=None, encoding="utf-8"):
    table = csv_import.read_table(text.encode(encoding) if isinstance(text, str) else text)
    report = csv_import.import_table(db, kind, table, actor, mapping)
    db.commit()
    return report


def _addresses(db, entity_type, record_id):
    return [ln.address.lower for ln in addressbook.addresses_of(db, entity_type, record_id)]


def test_contacts_are_created_with_accounts_and_addresses(db, rep):
    report = _run(
        db,
        "contacts",
        (
            "first_name,last_name,email,account,phone\n"
            "Ada,Lovelace,ada@example.com;ada@work.example,Analytical Ltd,+44 1\n"
            "Charles,Babbage,charles@example.com,Analytical Ltd,\n"
        ),
        rep,
    )
    assert (report.created, report.updated, report.rejected) == (2, 0, [])
    contacts = db.scalars(select(Contact).order_by(Contact.id)).all()
    assert [c.display_name for c in contacts] == ["Ada Lovelace", "Charles Babbage"]
    assert contacts[0].account is contacts[1].account
    assert db.scalars(select(Account.name)).all() == ["Analytical Ltd"]
    assert _addresses(db, "Contact", contacts[0].id) == ["ada@example.com", "ada@work.example"]
    assert contacts[0].assigned_user_id == contacts[0].created_by_id == rep.id


def test_reimport_updates_instead_of_duplicating(db, rep):
    text = "first_name,last_name,email\nAda,Lovelace,ada@example.com\n"
    _run(db, "contacts", text, rep)
    report = _run(
        db, "contacts", "first_name,last_name,email,phone\nAda,King,ADA@example.com,555\n", rep
    )
    assert (report.created, report.updated) == (0, 1)
    contact = db.scalars(select(Contact)).one()
    assert (contact.last_name, contact.phone) == ("King", "555")


def test_reimport_adds_new_addresses_and_keeps_primary(db, rep):
    _run(db, "leads", "first_name,last_name,email\nJo,Park,jo@a.example\n", rep)
    _run(db, "leads", "first_name,last_name,email\nJo,Park,jo@b.example;jo@a.example\n", rep)
    lead = db.scalars(select(Lead)).one()
    assert _addresses(db, "Lead", lead.id) == ["jo@a.example", "jo@b.example"]


def test_bad_rows_are_reported_and_the_rest_imported(db, rep):
    report = _run(
        db,
        "leads",
        (
            "first_name,last_name,email,account_name,status\n"
            "Good,One,good@example.com,Acme,new\n"
            ",,nobody@example.com,,\n"
            "Bad,Mail,not-an-address,,\n"
            "Bad,Status,s@example.com,,Maybe\n"
            "\n"
            "Also,Good,,Globex,\n"
        ),
        rep,
    )
    assert (report.created, report.updated) == (2, 0)
    assert [(r.row, r.reason) for r in report.rejected] == [
        (3, "first_name or last_name is required"),
        (4, "not an e-mail address: not-an-address"),
        (5, "status 'Maybe' is not one of: New, Assigned, In Process, Converted, Recycled, Dead"),
    ]
    assert db.scalars(select(Lead.status).where(Lead.last_name == "One")).one() == "New"


def test_headers_match_case_insensitively_with_bom_and_semicolons(db, rep):
    data = "\ufeffName;E-Mail;WEBSITE;Phone\nAcme;info@acme.example;acme.example;1\n".encode()
    report = _run(db, "accounts", data, rep)
    assert report.created == 1
    account = db.scalars(select(Account)).one()
    assert (account.name, account.website) == ("Acme", "acme.example")
    assert _addresses(db, "Account", account.id) == ["info@acme.example"]


def test_accounts_without_address_match_by_exact_name(db, rep):
    _run(db, "accounts", "name,phone\nAcme,1\n", rep)
    report = _run(db, "accounts", "name,phone\nAcme,2\n", rep)
    assert (report.created, report.updated) == (0, 1)
    assert db.scalars(select(Account.phone)).one() == "2"


def test_latin1_file_is_read(db, rep):
    data = "first_name,last_name\nJosé,Müller\n".encode("cp1252")
    report = _run(db, "contacts", data, rep)
    assert report.created == 1
    assert db.scalars(select(Contact.last_name)).one() == "Müller"


def test_mapping_other_headers_to_fields(db, rep):
    text = "Vorname,Nachname,Mail\nAnna,Schmidt,anna@example.de\n"
    table = csv_import.read_table(text.encode())
    assert csv_import.auto_mapping("contacts", table.headers) == {}
    mapping = {"Vorname": "first_name", "Nachname": "last_name", "Mail": "email"}
    report = csv_import.import_table(db, "contacts", table, rep, mapping)
    assert report.created == 1
    contact = db.scalars(select(Contact)).one()
    assert contact.display_name == "Anna Schmidt"
    assert _addresses(db, "Contact", contact.id) == ["anna@example.de"]


def test_another_users_records_are_not_updated(db, rep, make_user):
    other_id = make_user("other")
    db.commit()  # end the fixture's read transaction so the new user is visible
    other = db.get(User, other_id)
    _run(db, "contacts", "last_name,email\nTheirs,x@example.com\n", other)
    report = _run(db, "contacts", "last_name,email\nMine,x@example.com\n", rep)
    assert report.created == 1
    assert sorted(db.scalars(select(Contact.last_name))) == ["Mine", "Theirs"]


def test_empty_file_is_refused():
    with pytest.raises(csv_import.UnreadableFile):
        csv_import.read_table(b"")


def test_quoted_cells_with_delimiters_and_newlines(db, rep):
    text = 'name,email,description\n"Acme, Inc.","a@acme.example","line one\nline two"\n'
    report = _run(db, "accounts", text, rep)
    assert report.created == 1
    account = db.scalars(select(Account)).one()
    assert (account.name, account.description) == ("Acme, Inc.", "line one\nline two")


def test_report_as_dict():
    report = csv_import.Report(created=1, rejected=[csv_import.Rejected(2, "x")])
    assert report.as_dict() == {"created": 1, "updated": 0, "rejected": [{"row": 2, "reason": "x"}]}


def test_mapping_from_choices_refuses_a_field_twice():
    headers = ["A", "B", "C"]
    assert csv_import.mapping_from_choices("leads", headers, ["first_name", "", "email"]) == {
        "A": "first_name",
        "C": "email",
    }
    with pytest.raises(csv_import.UnreadableFile, match="more than one column"):
        csv_import.mapping_from_choices("leads", headers, ["email", "email", ""])
    with pytest.raises(csv_import.UnreadableFile, match="at least one"):
        csv_import.mapping_from_choices("leads", headers, ["", "", "nonsense"])


def test_account_names_match_ignoring_case_in_any_script(db, rep):
    """SQLite's lower() folds ASCII only: these names each became five accounts there."""
    rows = [
        ("Eva", "Nováková", "Électricité du Rhône SA"),
        ("Jean", "Dupont", "ÉLECTRICITÉ DU RHÔNE SA"),
        ("Ivan", "Petrov", "АО «Волга-Пром»"),
        ("Olga", "Smirnova", "ао «ВОЛГА-ПРОМ»"),
        ("Pavel", "Sokolov", "ЗАО «УралМетКомплект»"),
        ("Anna", "Volkova", "зао «уралметкомплект»"),
        # Upper-case ß is SS: lower() cannot match these on either database, case folding does.
        ("Jonas", "Weiß", "Großhandel Weiß GmbH"),
        ("Lea", "Maier", "GROSSHANDEL WEISS GMBH"),
    ]
    text = "first_name,last_name,account\n" + "".join(f"{f},{la},{a}\n" for f, la, a in rows)
    _run(db, "contacts", text, rep)
    names = db.scalars(select(Account.name).order_by(Account.id)).all()
    assert names == [
        "Électricité du Rhône SA",
        "АО «Волга-Пром»",
        "ЗАО «УралМетКомплект»",
        "Großhandel Weiß GmbH",
    ]
    accounts = {c.last_name: c.account_id for c in db.scalars(select(Contact))}
    assert accounts["Dupont"] == accounts["Nováková"] and accounts["Weiß"] == accounts["Maier"]
    report = _run(db, "accounts", "name\nélectricité du rhône sa\nЗАО «УРАЛМЕТКОМПЛЕКТ»\n", rep)
    assert (report.created, report.updated) == (0, 2)
    assert db.scalar(select(func.count()).select_from(Account)) == 4


def test_converting_a_lead_finds_its_company_ignoring_case(db, rep):
    from crm.records import records

    _run(db, "accounts", "name\nÖsterreichische Feinmechanik GmbH\n", rep)
    _run(
        db,
        "leads",
        "first_name,last_name,account_name\nLena,Huber,ÖSTERREICHISCHE FEINMECHANIK GMBH\n",
        rep,
    )
    lead = db.scalars(select(Lead)).one()
    contact = records.convert_lead(db, lead, rep)
    db.commit()
    assert contact.account.name == "Österreichische Feinmechanik GmbH"
    assert db.scalar(select(func.count()).select_from(Account)) == 1
