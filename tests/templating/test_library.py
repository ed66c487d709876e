"""Templates users keep: who may use and edit them, one-off ones out of the picker, teams,
admin sharing, attachments, and a broken template refused with its position."""

import pytest

from crm.models import EmailTemplate, User
from crm.templating import handlebars, library
from crm.templating.library import TemplateFormError, TemplateInput, Upload
from tests.support import records


@pytest.fixture
def people(db, make_user):
    ids = {
        "admin": make_user("admin", admin=True),
        "rep": make_user("rep", teams=["Sales"]),
        "mate": make_user("mate", teams=["Sales"]),
        "stranger": make_user("stranger", teams=["Support"]),
    }
    return {name: db.get(User, uid) for name, uid in ids.items()}


def make(db, services, user, name="Welcome", **kw):
    data = TemplateInput(name=name, subject="Hi {Person.firstName}", body="<p>Hello</p>", **kw)
    return library.create(db, services.blobs, user, data)


def names(templates):
    return [t.name for t in templates]


def test_a_template_is_used_by_its_owner_and_its_teams_and_edited_by_its_owner(
    db, services, people
):
    sales = people["rep"].teams[0]
    template = make(db, services, people["rep"], team_ids=[sales.id])
    for who in ("rep", "mate", "admin"):
        assert library.get_usable(db, people[who], template.id) is template
    assert library.get_usable(db, people["stranger"], template.id) is None
    assert library.get_editable(db, people["rep"], template.id) is template
    assert library.get_editable(db, people["admin"], template.id) is template
    assert library.get_editable(db, people["mate"], template.id) is None


def test_only_an_admin_shares_with_everybody(db, services, people):
    by_rep = make(db, services, people["rep"], "Rep's", is_shared=True)
    by_admin = make(db, services, people["admin"], "Company", is_shared=True)
    assert not by_rep.is_shared and by_admin.is_shared
    assert names(library.listing(db, people["stranger"])) == ["Company"]


def test_a_user_shares_only_with_their_own_teams(db, services, people):
    support = people["stranger"].teams[0]
    with pytest.raises(TemplateFormError) as refused:
        make(db, services, people["rep"], team_ids=[support.id])
    assert "teams" in refused.value.errors


def test_one_off_templates_are_listed_but_not_offered_in_compose(db, services, people):
    make(db, services, people["rep"], "Newsletter March", one_off=True)
    make(db, services, people["rep"], "Follow-up")
    make(db, services, people["rep"], "Old", is_active=False)
    rep = people["rep"]
    assert names(library.listing(db, rep)) == ["Follow-up", "Newsletter March"]
    assert names(library.listing(db, rep, state="inactive")) == ["Old"]
    assert names(library.listing(db, rep, state="all")) == ["Follow-up", "Newsletter March", "Old"]
    assert names(library.picker(db, rep)) == ["Follow-up"]


def test_listing_searches_names_ignoring_case_and_accents_and_filters_by_category(
    db, services, people
):
    rep = people["rep"]
    make(db, services, rep, "Relance Échéance", category="Billing")
    make(db, services, rep, "Welcome", category="Sales")
    assert names(library.listing(db, rep, query="echeance")) == ["Relance Échéance"]
    assert names(library.listing(db, rep, category="Sales")) == ["Welcome"]
    assert library.categories(db, rep) == ["Billing", "Sales"]


def test_a_template_with_a_handlebars_error_is_refused_with_its_position(db, services, people):
    data = TemplateInput(name="Bad", subject="Hi", body="Line one\n  {{#if name}}open")
    with pytest.raises(TemplateFormError) as refused:
        library.create(db, services.blobs, people["rep"], data)
    assert refused.value.errors["body"].startswith("line ")
    assert db.query(EmailTemplate).count() == 0


def test_a_bracket_path_is_refused_at_its_column(db, services, people):
    data = TemplateInput(name="Evil", subject="x {{[__class__]}}", body="")
    with pytest.raises(TemplateFormError) as refused:
        library.create(db, services.blobs, people["rep"], data)
    assert refused.value.errors["subject"].startswith("line 1, column 5: brackets")


def test_an_update_that_is_refused_changes_nothing(db, services, people):
    template = make(db, services, people["rep"])
    with pytest.raises(TemplateFormError):
        library.update(db, services.blobs, people["rep"], template, TemplateInput(name=""))
    assert template.name == "Welcome"


def test_attachments_are_stored_as_blobs_and_kept_or_dropped(db, services, people):
    rep = people["rep"]
    template = make(db, services, rep, uploads=[Upload("terms.pdf", "application/pdf", b"%PDF")])
    [terms] = template.attachments
    assert services.blobs.get(terms.sha256) == b"%PDF" and terms.size == 4
    data = library.input_of(template)
    data.uploads = [Upload("price.csv", "text/csv", b"a,b")]
    library.update(db, services.blobs, rep, template, data)
    assert [a.filename for a in template.attachments] == ["terms.pdf", "price.csv"]
    data.uploads, data.keep_attachment_ids = [], [template.attachments[1].id]
    library.update(db, services.blobs, rep, template, data)
    assert [a.filename for a in template.attachments] == ["price.csv"]


def test_delete(db, services, people):
    template = make(db, services, people["rep"])
    library.delete(db, template)
    db.flush()
    assert db.query(EmailTemplate).count() == 0


def test_preview_records_are_those_the_user_may_read(db, services, people):
    mine = records.account(db, "Mine", assigned_user_id=people["rep"].id)
    records.account(db, "Theirs", assigned_user_id=people["stranger"].id)
    assert names(library.preview_choices(db, people["rep"], "Account")) == ["Mine"]
    assert library.preview_choices(db, people["rep"], "Task") == []
    assert library.preview_parent(db, people["rep"], "Account", mine.id) is mine
    assert library.preview_parent(db, people["stranger"], "Account", mine.id) is None


def test_an_error_without_a_position_reads_as_its_message():
    # Raised while rendering, a TemplateError has no line or column: no "line None".
    assert library.position_text(handlebars.TemplateError("too deep")) == "too deep"
    at = handlebars.TemplateError("unclosed {{#if}}", line=2, column=5)
    assert library.position_text(at) == "line 2, column 5: unclosed {{#if}}"
