"""A small but realistic CRM for the crawler (tests/browser/test_crawler.py).

Everything is made the way real use makes it: users by crm.records.users, Accounts, Contacts and Leads
by the CSV import, the other records by crm.records.records, folders and filters by their domain
functions, and all mail through the real import from the test Dovecot (so linking, threading,
bounce and auto-reply detection, attachments, email-to-case and notifications are what a
fetch produces). Mail written in the CRM goes through the compose form's own steps (a draft,
the outbox hand-over) and the real delivery to the test SMTP server, which accepts, refuses or
drops it. Names and subjects are Slovak, Czech, German, Polish, French and Russian.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path

from sqlalchemy import select

from crm import settings
from crm.db import utcnow
from crm.mail.threadtoken import make_message_id
from crm.mailbox import folders
from crm.mailbox.filters import FilterForm, save_filter
from crm.models import (
    Account,
    Case,
    Contact,
    Email,
    Lead,
    MailAccount,
    Notification,
    Task,
    Team,
    User,
)
from crm.outbound import drafts, outbox, replies
from crm.outbound.drafts import Upload
from crm.outbound.sending import deliver_due
from crm.records import csv_import, from_mail, linking
from crm.records.records import KINDS, create_record
from crm.records.users import create_user
from tests.support.mailboxes import fetch, make_account

PASSWORD = "password123"
CORPUS = Path(__file__).resolve().parent.parent / "corpus"
# Corpus files that make the mail pages work hard: machine mail, odd charsets, broken
# structure, attachments with encoded names, inline images, forwarded messages.
CORPUS_FILES = (
    "bounce_postfix.eml",
    "bounce_mailer_daemon_mixed.eml",
    "auto_reply.eml",
    "inline_cid_image.eml",
    "attachment_rfc2047_name.eml",
    "attachment_rfc2231_continuation.eml",
    "forwarded_rfc822.eml",
    "references_chain.eml",
    "koi8r.eml",
    "windows1251.eml",
    "iso2022jp.eml",
    "garbage.eml",
    "nul_bytes.eml",
    "empty.eml",
    "headers_only_no_body.eml",
    "missing_message_id.eml",
    "utf7_lone_surrogate.eml",
)

ACCOUNTS_CSV = """name,email,website,phone
"Železnice Slovenskej republiky, a.s.",info@zeleznice.sk,https://www.zsr.sk,+421 2 2029 1111
Müller & Söhne GmbH,info@mueller-soehne.de,https://mueller-soehne.de,+49 89 123456
АО «Волга-Пром»,office@volga-prom.ru,,+7 495 123-45-67
Électricité du Rhône SA,contact@rhone-elec.fr,,
"""
CONTACTS_CSV = """First Name;Last Name;E-mail;Company;Title
Jana;Nováková;jana.novakova@zeleznice.sk;Železnice Slovenskej republiky, a.s.;Nákupca
Jürgen;Groß;j.gross@mueller-soehne.de;Müller & Söhne GmbH;Einkaufsleiter
Дмитрий;Иванов;d.ivanov@volga-prom.ru;АО «Волга-Пром»;Главный инженер
Zofia;Wójcik;zofia@wojcik.pl;;
"""
LEADS_CSV = """first_name,last_name,email,account_name,status
Łukasz,Wiśniewski,lukasz@przyklad.pl,Przykład Sp. z o.o.,New
Kateřina,Černá,katerina.cerna@seznam.cz,,In Process
Ольга,Смирнова,olga@uralmet.ru,ЗАО «УралМетКомплект»,New
"""
HOSTILE_HTML = """<html><head><style>@import url(http://evil.example/a.css);</style>
<script>console.error('hostile script ran')</script></head>
<body onload="console.error('onload ran')">
<p>Dobrý deň, pozrite si <a href="http://evil.example/phish">našu ponuku</a>.</p>
<img src="http://evil.example/track.gif" alt="tracker">
<img src=x onerror="console.error('onerror ran')">
<form action="http://evil.example/login" method="post">
<input name="password" type="password"><button>Prihlásiť</button></form>
<iframe src="http://evil.example/frame"></iframe>
<a href="javascript:console.error('js link ran')">klik</a>
<div hx-get="/inbox/actions" hx-trigger="load">htmx</div>
</body></html>"""
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201ffa1b3a7"
    "0000000049454e44ae426082"
)


@dataclass
class CrawlData:
    """What the crawler starts from: names, and the ids of a few pages worth starting at."""

    user: str = "rep"
    admin: str = "boss"
    folder_id: int = 0
    group_folder_id: int = 0
    filter_id: int = 0
    mail_account_id: int = 0
    group_account_id: int = 0
    linked_mail_ids: dict[str, int] = field(default_factory=dict)  # parent type -> email id
    record_paths: list[str] = field(default_factory=list)
    mail_count: int = 0
    # Mail the user sent from the CRM, by what became of it: Sent (one recipient refused),
    # Failed, Unknown, Queued (still in the undo delay), Scheduled.
    sent_mail_ids: dict[str, int] = field(default_factory=dict)
    draft_id: int = 0
    # The compose form: a new mail, a reply, a reply to all, a forward, the user's draft.
    compose_paths: list[str] = field(default_factory=list)
    # Campaigns: the list page, a target list, a running and a draft mass mail, the public
    # opt-out and opt-in pages (crm.blueprints.campaigns).
    campaign_paths: list[str] = field(default_factory=list)
    # Templates: the list, a template's edit page, previews with and without a record.
    template_paths: list[str] = field(default_factory=list)
    # OAuth2 (issue 15): a Gmail account connected with Google and one that needs
    # reconnecting (their pages and edit forms), and the new-account form with Connect.
    oauth_paths: list[str] = field(default_factory=list)


class _Mailer:
    """Builds RFC 5322 messages dated in the last hours (so they notify), in order."""

    def __init__(self) -> None:
        self.when = datetime.now(UTC) - timedelta(hours=6)

    def message(
        self,
        from_: str,
        to: str,
        subject: str,
        text: str,
        *,
        html: str | None = None,
        cc: str | None = None,
        reply_to: str | None = None,
        in_reply_to: str | None = None,
        references: list[str] = (),
        headers: dict | None = None,
        attachments: list[tuple[str, str, bytes]] = (),
        inline: list[tuple[str, str, bytes]] = (),
    ) -> tuple[str, bytes]:
        self.when += timedelta(minutes=7)
        msg = EmailMessage(policy=SMTP)
        message_id = make_msgid(domain="mail.example")
        msg["Message-ID"] = message_id
        msg["Date"] = format_datetime(self.when)
        msg["From"] = from_
        msg["To"] = to
        if cc:
            msg["Cc"] = cc
        if reply_to:
            msg["Reply-To"] = reply_to
        msg["Subject"] = subject
        if in_reply_to:
            msg["In-Reply-To"] = in_reply_to
        if references:
            msg["References"] = " ".join(references)
        for key, value in (headers or {}).items():
            msg[key] = value
        msg.set_content(text)
        if html is not None:
            msg.add_alternative(html, subtype="html")
        if inline:
            html_part = msg.get_payload()[1]
            for cid, filename, data in inline:
                html_part.add_related(
                    data, "image", "png", cid=f"<{cid}>", filename=filename, disposition="inline"
                )
        for filename, mime, data in attachments:
            maintype, subtype = mime.split("/")
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
        return message_id, msg.as_bytes()


def seed(services, imap_server, smtp_server) -> CrawlData:
    """Users, records, folders, a filter, two mailboxes and their mail, mail sent from the CRM;
    returns the start ids."""
    data = CrawlData()
    with services.session() as session:
        rep = _users(session)
        _import_records(session, rep)
        _other_records(session, rep)
        folder = folders.create_folder(session, rep.id, "Newslettery a akcie")
        data.folder_id = folder.id
        team = session.scalars(select(Team).where(Team.name == "Podpora")).one()
        group_folder = folders.create_group_folder(session, "Reklamácie", [team.id])
        session.commit()
        data.group_folder_id = group_folder.id
        rep_id, team_id, folder_id = rep.id, team.id, folder.id

    personal, group = imap_server.new_user(), imap_server.new_user()
    data.mail_account_id = make_account(
        services,
        rep_id,
        imap_server,
        personal,
        email="rep@example.com",
        folders=("INBOX", "Sent"),
        name="Renáta – pracovná pošta",
    )
    data.group_account_id = make_account(
        services,
        None,
        imap_server,
        group,
        email="podpora@example.com",
        is_group=True,
        team_ids=[team_id],
        name="Podpora zákazníkov",
        add_all_team_users=True,
        create_case=True,
        case_distribution="round-robin",
        case_team_id=team_id,
    )
    with services.session() as session:
        rep = session.get(User, rep_id)
        form = FilterForm(
            name="Newslettery do priečinka",
            subject_pattern="*Newsletter*",
            action="move",
            folder_id=folder_id,
            mark_read=True,
            is_active=True,
        )
        data.filter_id = save_filter(session, rep, form).id
        session.commit()

    _deliver_personal(services, imap_server, personal)
    _deliver_group(imap_server, group)
    _deliver_bounced(imap_server, personal)  # bounces (the block at the end)
    for account_id in (data.mail_account_id, data.group_account_id):
        summary = fetch(services, account_id)
        assert summary.error is None and summary.failed == 0, summary
    _link_bounces(services)  # bounces
    # A reply in the group mailbox to a case opened by the first fetch: the case-number rule.
    with services.session() as session:
        case = session.scalars(
            select(Case).where(Case.inbound_account_id == data.group_account_id)
        ).first()
        assert case is not None, "the group account opened no case"
        number = case.number
    mailer = _Mailer()
    imap_server.append(
        group,
        mailer.message(
            "Jana Nováková <jana.novakova@zeleznice.sk>",
            "podpora@example.com",
            f"Re: Reklamácia dodávky [#{number}]",
            "Posielam ešte fotografiu poškodeného tovaru.",
            attachments=[("poškodenie.png", "image/png", PNG)],
        )[1],
    )
    assert fetch(services, data.group_account_id).failed == 0

    with services.session() as session:
        _link_by_hand(session, rep_id, data)
        session.commit()
    _send_mail(services, smtp_server, rep_id, data)
    _campaigns(services, smtp_server, rep_id, data)
    _templates(services, rep_id, data)
    _oauth_accounts(services, imap_server, rep_id, data)
    return data


def _users(session):
    rep = create_user(
        session, "rep", PASSWORD, ["rep@example.com"], False, ["Podpora"], "Renáta Šťastná"
    )
    rep.mail_as_conversations = True  # the user crawls the lists as conversations, boss as mails
    create_user(session, "boss", PASSWORD, ["boss@example.com"], True, ["Podpora"], "Jürgen Weiß")
    create_user(session, "olga", PASSWORD, ["olga.p@example.com"], False, ["Podpora"], "Ольга")
    create_user(session, "piotr", PASSWORD, ["piotr@example.com"], False, ["Obchod"], "Piotr Żak")
    return rep


def _import_records(session, actor) -> None:
    for kind, text in (
        ("accounts", ACCOUNTS_CSV),
        ("contacts", CONTACTS_CSV),
        ("leads", LEADS_CSV),
    ):
        report = csv_import.import_table(session, kind, csv_import.read_table(text.encode()), actor)
        assert not report.rejected, (kind, report.rejected)
    session.flush()


def _named(session, model, **where):
    return session.scalars(select(model).filter_by(**where)).one()


def _other_records(session, actor) -> None:
    zsr = _named(session, Account, website="https://www.zsr.sk")
    jana = _named(session, Contact, last_name="Nováková")
    muller = _named(session, Account, website="https://mueller-soehne.de")
    create_record(
        session,
        KINDS["opportunities"],
        {
            "name": "Modernizácia zabezpečovacieho zariadenia – 2. etapa",
            "account_id": zsr.id,
            "contact_ids": [jana.id],
            "stage": "Proposal",
            "amount": Decimal("184500.00"),
            "close_date": date.today() + timedelta(days=45),
        },
        actor,
    )
    create_record(
        session,
        KINDS["opportunities"],
        {"name": "Rahmenvertrag Größe L", "account_id": muller.id, "stage": "Prospecting"},
        actor,
    )
    create_record(
        session,
        KINDS["cases"],
        {"name": "Chybná faktúra č. 2024/0457", "account_id": zsr.id, "contact_id": jana.id},
        actor,
    )
    create_record(
        session,
        KINDS["tasks"],
        {
            "name": "Zavolať pani Novákovej",
            "due_at": datetime.now() + timedelta(days=2),
            "parent": ("Account", zsr.id),
        },
        actor,
    )
    create_record(
        session,
        KINDS["tasks"],
        {"name": "Angebot nachfassen", "status": "Started", "parent": ("Account", muller.id)},
        actor,
    )
    session.flush()


def _deliver_personal(services, imap_server, box) -> None:
    m = _Mailer()
    key = services.secret_key()
    with services.session() as session:
        opp = session.scalars(select(KINDS["opportunities"].model).order_by("id")).first()
        case = session.scalars(select(Case).order_by(Case.id)).first()
        opp_token = make_message_id(key, "Opportunity", opp.id, "crm.example")
        case_token = make_message_id(key, "Case", case.id, "crm.example")
    jana = "Jana Nováková <jana.novakova@zeleznice.sk>"
    rep = "Renáta Šťastná <rep@example.com>"
    inbox, sent = [], []

    # A thread of four: customer, our answer (Sent), the customer again, and a colleague in Cc.
    first_id, first = m.message(
        jana, rep, "Objednávka č. 2024/118 – potvrdenie", "Dobrý deň,\nposielam objednávku."
    )
    reply_id, reply = m.message(
        rep,
        jana,
        "Re: Objednávka č. 2024/118 – potvrdenie",
        "Ďakujem, potvrdzujem prijatie.",
        in_reply_to=first_id,
        references=[first_id],
    )
    _, again = m.message(
        jana,
        rep,
        "Re: Re: Objednávka č. 2024/118 – potvrdenie",
        "Ešte jedna otázka k termínu dodania.",
        cc="Ольга <olga.p@example.com>",
        in_reply_to=reply_id,
        references=[first_id, reply_id],
    )
    inbox += [first, again]
    sent.append(reply)
    inbox.append(
        m.message(
            "Jürgen Groß <j.gross@mueller-soehne.de>",
            rep,
            "Größenänderung der Lieferung – Übersicht",
            "Sehr geehrte Frau Šťastná,\nanbei die Übersicht über die Änderungen.",
            attachments=[
                ("Übersicht Änderungen.pdf", "application/pdf", b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n"),
                ("Preisliste 2024.csv", "text/csv", "Artikel;Preis\nSchraube;0,10 €\n".encode()),
            ],
        )[1]
    )
    inbox.append(
        m.message(
            "Дмитрий Иванов <d.ivanov@volga-prom.ru>",
            rep,
            "Счёт на оплату №45 от 12.03.2024",
            "Добрый день!\nВо вложении счёт на оплату.",
            html="<p>Добрый день!</p><p>Во вложении <b>счёт</b> на оплату.</p>",
            attachments=[("Счёт №45.txt", "text/plain", "Итого: 12 500 ₽".encode())],
        )[1]
    )
    inbox.append(
        m.message(
            "Łukasz Wiśniewski <lukasz@przyklad.pl>",
            rep,
            "Zapytanie ofertowe – żółte łożyska",
            "Dzień dobry,\nproszę o ofertę na 500 sztuk.",
        )[1]
    )
    inbox.append(
        m.message(
            "Petr Dvořák <petr@dvorak.cz>",
            rep,
            "Děkuji za schůzku",
            "Dobrý den,\nděkuji za včerejší schůzku. Petr",
        )[1]
    )
    inbox.append(
        m.message(
            "Kateřina Černá <katerina.cerna@seznam.cz>",
            rep,
            "Poptávka – řezání laserem",
            "Dobrý den, máte volnou kapacitu v dubnu?",
            html=(
                '<p>Dobrý den, máte volnou kapacitu?</p><p><img src="cid:logo@cerna.cz"'
                ' alt="logo"></p><p>S pozdravem<br>Kateřina</p>'
            ),
            inline=[("logo@cerna.cz", "logo.png", PNG)],
        )[1]
    )
    inbox.append(
        m.message(
            jana,
            rep,
            "Re: Modernizácia – cenová ponuka",
            "Posielam pripomienky k ponuke.",
            in_reply_to=opp_token,
            references=[opp_token],
        )[1]
    )
    inbox.append(
        m.message(
            "Zofia Wójcik <zofia@wojcik.pl>",
            rep,
            "Re: Chybná faktúra č. 2024/0457",
            "Czy faktura została już poprawiona?",
            in_reply_to=case_token,
            references=[case_token],
        )[1]
    )
    inbox.append(
        m.message(
            "Marketing <news@obchod-novinky.sk>",
            rep,
            "Newsletter: jarné zľavy až 40 %",
            "Jarné zľavy sú tu.",
            html='<p>Jarné zľavy</p><img src="https://tracker.example/open.gif">',
            headers={"List-Unsubscribe": "<mailto:unsubscribe@obchod-novinky.sk>"},
        )[1]
    )
    inbox.append(
        m.message(
            '"Support\'"><script>alert(1)</script>" <attacker@evil.example>',
            rep,
            "Faktúra <script>alert('x')</script> & „úhrada“",
            "Pozrite si prílohu.",
            html=HOSTILE_HTML,
            attachments=[("faktura.html", "text/html", b"<script>alert(1)</script>")],
        )[1]
    )
    inbox.append(
        m.message(
            "Mail Delivery System <MAILER-DAEMON@mx.example.com>",
            rep,
            "Undelivered Mail Returned to Sender",
            "This is the mail system at host mx.example.com.\n\n<nobody@zeleznice.sk>: "
            "host said: 550 5.1.1 User unknown",
            headers={"Auto-Submitted": "auto-replied"},
        )[1]
    )
    inbox.append(
        m.message(
            "Müller & Söhne <info@mueller-soehne.de>",
            rep,
            "Abwesenheitsnotiz: Größenänderung der Lieferung",
            "Ich bin bis 25.03. nicht im Büro.",
            headers={"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"},
        )[1]
    )
    inbox += [(CORPUS / name).read_bytes() for name in CORPUS_FILES]
    imap_server.append_many(box, inbox)
    imap_server.append_many(box, sent, folder="Sent")


def _deliver_group(imap_server, box) -> None:
    m = _Mailer()
    imap_server.append_many(
        box,
        [
            m.message(
                "Jana Nováková <jana.novakova@zeleznice.sk>",
                "podpora@example.com",
                "Reklamácia dodávky",
                "Dodávka z 12. 3. prišla poškodená.",
            )[1],
            m.message(
                "Дмитрий Иванов <d.ivanov@volga-prom.ru>",
                "Podpora <podpora@example.com>",
                "Не работает вход в портал",
                "При входе появляется ошибка 403.",
            )[1],
            m.message(
                "Anonym <anonym@gmail.example>",
                "podpora@example.com",
                "Otázka k záruke",
                "Aká je záručná doba?",
            )[1],
        ],
    )


def _link_by_hand(session, rep_id, data: CrawlData) -> None:
    """A mail linked to a Lead by hand, a Contact created from a mail, a task from a mail."""
    rep = session.get(User, rep_id)
    emails = session.scalars(select(Email).order_by(Email.id)).all()
    by_subject = {e.subject: e for e in emails}
    lead = _named(session, Lead, last_name="Wiśniewski")
    dvorak = by_subject["Děkuji za schůzku"]
    if dvorak.parent_type is None:
        draft = from_mail.prefill(session, dvorak, None)
        from_mail.create_contact(session, dvorak, rep, draft)
    lukasz = by_subject["Zapytanie ofertowe – żółte łożyska"]
    from_mail.create_task(
        session, lukasz, rep, "Pripraviť ponuku – łożyska", rep.id, datetime.now() + timedelta(1)
    )
    session.flush()
    for email in session.scalars(select(Email).order_by(Email.id)):
        if email.parent_type and email.parent_type not in data.linked_mail_ids:
            data.linked_mail_ids[email.parent_type] = email.id
    if "Lead" not in data.linked_mail_ids:
        linking.set_parent(session, lukasz, "Lead", lead.id, "manual")
        data.linked_mail_ids["Lead"] = lukasz.id
    data.mail_count = len(emails)
    _check(session, data)
    for kind in KINDS.values():
        first = session.scalars(select(kind.model).order_by(kind.model.id)).first()
        if first is not None:
            data.record_paths.append(f"/records/{kind.slug}/{first.id}")


def _check(session, data: CrawlData) -> None:
    """The import made what the crawl is meant to see; if linking or detection change, say so
    here rather than let the crawl quietly cover less."""
    assert set(data.linked_mail_ids) == {"Account", "Contact", "Lead", "Opportunity", "Case"}, (
        data.linked_mail_ids
    )
    emails = session.scalars(select(Email)).all()
    assert any(e.is_bounce for e in emails) and any(e.is_auto_reply for e in emails)
    assert any(e.parent_type is None for e in emails)
    assert any(e.has_attachments for e in emails)
    assert session.scalars(select(Notification)).first() is not None
    assert session.scalars(select(Task).where(Task.email_id.is_not(None))).first() is not None


_SMTP_OPTIONS = ("answer_rcpt", "answer_data", "drop")


def _send_mail(services, smtp_server, rep_id, data: CrawlData) -> None:
    """The user's personal account sends through the test SMTP server (and keeps copies in its
    Sent folder); she answers, forwards and writes mail as the compose form does, and each
    delivery meets a different server: one accepts all but one recipient, one rejects the
    message, one drops the connection after the final dot (the outcome is unknown). One mail
    waits out the undo delay, one is scheduled, one stays a draft with an attachment."""
    with services.session() as session:
        account = session.get(MailAccount, data.mail_account_id)
        account.smtp_host, account.smtp_port = smtp_server.host, smtp_server.port
        account.smtp_security, account.smtp_auth, account.store_sent = "none", False, True
        undo = settings.get(session, "undo_send_seconds")
        settings.put(session, "undo_send_seconds", 0)
        session.commit()
    with services.session() as session:
        rep = session.get(User, rep_id)
        by_subject = {e.subject: e for e in session.scalars(select(Email).order_by(Email.id))}
        order = by_subject["Objednávka č. 2024/118 – potvrdenie"]
        again = by_subject["Re: Re: Objednávka č. 2024/118 – potvrdenie"]  # Cc: a colleague
        specs = by_subject["Größenänderung der Lieferung – Übersicht"]
        zsr = _named(session, Account, website="https://www.zsr.sk")
        lead = _named(session, Lead, last_name="Wiśniewski")
        when = "12. 3. 2024 9:41"

        answer = replies.reply(session, rep, again, True, when)
        answer.cc = ", ".join(filter(None, [answer.cc, "nobody@zeleznice.sk"]))
        answer.body = (
            "<p>Dobrý deň, pani Nováková,</p><p>termín dodania potvrdzujeme na <b>15. 4.</b>"
            "</p>" + answer.body
        )
        forward = replies.forward(session, rep, specs, when)
        forward.to = "Jürgen Groß <j.gross@mueller-soehne.de>"
        forward.body = "<p>Hallo Jürgen, anbei die Übersicht zurück.</p>" + forward.body
        offer = replies.new_mail(
            session, rep, "Łukasz Wiśniewski <lukasz@przyklad.pl>", ("Lead", lead.id),
            subject="Oferta – żółte łożyska",
        )  # fmt: skip
        offer.body = "<p>Dzień dobry,</p><p>w załączeniu oferta na <i>500 sztuk</i>.</p>"
        outcomes = (
            ("Sent", answer, {"answer_rcpt": {"nobody@zeleznice.sk": "550 5.1.1 No such user"}}),
            ("Failed", forward, {"answer_data": "554 5.7.1 Message rejected as spam"}),
            ("Unknown", offer, {"drop": "after_dot"}),
        )
        for state, draft, server in outcomes:
            email = drafts.save(session, services.blobs, rep, draft)
            session.commit()
            handed = outbox.submit(session, services.blobs, rep, email)
            session.commit()
            smtp_server.script(**{**dict.fromkeys(_SMTP_OPTIONS), **server})
            [outcome] = deliver_due(services, ids=[handed.entry_id])
            assert outcome.state == state.lower(), (state, outcome)
            data.sent_mail_ids[state] = handed.email_id
        smtp_server.script(**dict.fromkeys(_SMTP_OPTIONS))

        settings.put(session, "undo_send_seconds", 60)
        session.commit()
        later = replies.new_mail(
            session, rep, "Petr Dvořák <petr@dvorak.cz>", subject="Děkuji za schůzku – zápis"
        )
        later.body = "<p>Dobrý den,</p><p>posílám zápis ze schůzky.</p>"
        tomorrow = replies.new_mail(
            session, rep, "jana.novakova@zeleznice.sk", ("Account", zsr.id),
            subject="Pripomienka: dodávka 15. 4.",
        )  # fmt: skip
        for state, draft, send_at in (
            ("Queued", later, None),
            ("Scheduled", tomorrow, utcnow() + timedelta(days=1)),
        ):
            email = drafts.save(session, services.blobs, rep, draft)
            session.commit()
            handed = outbox.submit(session, services.blobs, rep, email, send_at=send_at)
            session.commit()
            data.sent_mail_ids[state] = handed.email_id
        draft = replies.new_mail(
            session, rep, "Jana Nováková <jana.novakova@zeleznice.sk>", ("Account", zsr.id),
            subject="Cenník 2024 – návrh",
        )  # fmt: skip
        draft.body = "<p>Návrh cenníka, <b>neposielať</b> pred schválením.</p>"
        draft.uploads = [Upload("cenník 2024.pdf", "application/pdf", b"%PDF-1.4\n%cennik\n")]
        data.draft_id = drafts.save(session, services.blobs, rep, draft).id
        settings.put(session, "undo_send_seconds", undo)
        session.commit()
    data.compose_paths = [
        "/compose/",
        f"/compose/?reply={order.id}",
        f"/compose/?reply={again.id}&all=1",
        f"/compose/?forward={specs.id}",
        f"/compose/{data.draft_id}",
    ]


# --- bounces ----------------------------------------------------------------------------------
# A mail the user sent, bounced for one recipient and delayed for the other: the bounce report,
# the delay warning and the original that shows both (crm/inbound/bounces.py).

BOUNCED_ID = "<nabidka-2024-031@example.com>"


def _deliver_bounced(imap_server, box) -> None:
    """The sent offer in the Sent folder, its delay warning and its bounce in the Inbox."""
    when = datetime.now(UTC) - timedelta(hours=2)
    msg = EmailMessage(policy=SMTP)
    msg["Message-ID"] = BOUNCED_ID
    msg["Date"] = format_datetime(when)
    msg["From"] = "Renáta Šťastná <rep@example.com>"
    msg["To"] = "Ing. Miroslav Kováč <m.kovac@stavby-kovac.sk>, info@stavby-kovac.sk"
    msg["Subject"] = "Cenová ponuka č. 2024/031 – lešenie"
    msg.set_content("Dobrý deň, pán Kováč,\nposielam cenovú ponuku na lešenie.")
    imap_server.append(box, msg.as_bytes(), folder="Sent")
    imap_server.append_many(
        box,
        [
            _delivery_report(
                "info@stavby-kovac.sk", "delayed", "4.4.1", "451 4.4.1 Connection timed out",
                "Delayed Mail (still being retried)", when + timedelta(minutes=30), 1,
            ),
            _delivery_report(
                "m.kovac@stavby-kovac.sk", "failed", "5.1.1",
                "550 5.1.1 <m.kovac@stavby-kovac.sk>: Recipient address rejected: User unknown",
                "Undelivered Mail Returned to Sender", when + timedelta(minutes=1), 2,
            ),
        ],
    )  # fmt: skip


def _delivery_report(recipient, action, status, diagnostic, subject, when, n) -> bytes:
    """A Postfix-style RFC 3464 report about the offer, with its headers attached."""
    lines = f"""Return-Path: <>
Message-ID: <report-{n}.2024031@mx.example.com>
Date: {format_datetime(when)}
From: Mail Delivery System <MAILER-DAEMON@mx.example.com>
To: rep@example.com
Subject: {subject}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="DSN{n}"

--DSN{n}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.com.

<{recipient}>: host mx.stavby-kovac.sk said: {diagnostic}

--DSN{n}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diagnostic}

--DSN{n}
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Message-ID: {BOUNCED_ID}
From: rep@example.com
To: m.kovac@stavby-kovac.sk, info@stavby-kovac.sk
Subject: =?utf-8?q?Cenov=C3=A1_ponuka_=C4=8D=2E_2024/031?=

--DSN{n}--
"""
    return lines.replace("\n", "\r\n").encode()


def _link_bounces(services) -> None:
    """What the import's hook does with its new mail (crm.inbound.bounces.link_bounces), for
    all mail fetched so far (it is safe to run again once importing.py calls it)."""
    from crm.inbound import bounces
    from crm.models.bounces import DeliveryReport

    with services.session() as session:
        emails = list(session.scalars(select(Email).order_by(Email.id)))
        bounces.link_bounces(session, services.blobs, emails)
        session.commit()
        linked = session.scalars(
            select(DeliveryReport).where(DeliveryReport.original_email_id.is_not(None))
        ).all()
        assert {r.kind for r in linked} >= {"bounce", "delay"}, linked


# --- end bounces ------------------------------------------------------------------------------


# --- campaigns ---------------------------------------------------------------------------


def _campaigns(services, smtp_server, rep_id, data: CrawlData) -> None:
    """A newsletter account (SMTP only) allowed for mass mail, a template, a target list of
    the contacts, a mass mail started with its first batch queued (its bar polls), a draft."""
    from crm.campaigns import batches, mass_mail, opt_out, senders, target_lists
    from crm.models import Contact, EmailTemplate, MassMailRecipient

    with services.session() as session:
        account = MailAccount(
            is_group=True, name="Novinky ACME", email_address="novinky@example.com",
            smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_security="none",
            smtp_auth=False, imap_host="",
        )  # fmt: skip
        session.add(account)
        session.flush()
        settings.put(session, "site_url", "http://127.0.0.1")
        senders.allow(session, [account.id])
        rep = session.get(User, rep_id)
        template = EmailTemplate(
            name="Novinky – december", subject="Novinky pre {Contact.firstName}",
            body="<p>Dobrý deň {Contact.firstName},</p><p>{optOutLink}</p>", is_html=True,
            owner_id=rep_id, one_off=True,
        )  # fmt: skip
        session.add(template)
        session.flush()
        found = target_lists.save_list(session, rep, {"name": "Zákazníci – newsletter"})
        contacts = session.scalars(select(Contact.id)).all()
        target_lists.add_members(session, found, "Contact", contacts, rep)
        values = {"name": "Decembrové novinky", "template_id": template.id, "list_ids": [found.id],
                  "mail_account_id": account.id, "per_hour": 60}  # fmt: skip
        running = mass_mail.save(session, rep, values)
        mass_mail.start(session, running, rep)
        batches.queue_batch(session, services.blobs, running)
        draft = mass_mail.save(session, rep, {**values, "name": "Januárové novinky"})
        recipient = session.scalars(
            select(MassMailRecipient).where(MassMailRecipient.mass_mail_id == running.id)
        ).first()
        unsubscribe = opt_out.unsubscribe_url(session, recipient.address_id, recipient.id)
        confirm = opt_out.confirm_url(session, recipient.address_id, recipient.id)
        session.commit()
        data.campaign_paths = [
            "/campaigns/", f"/campaigns/lists/{found.id}", f"/campaigns/{running.id}",
            f"/campaigns/{draft.id}", unsubscribe.removeprefix("http://127.0.0.1"),
            confirm.removeprefix("http://127.0.0.1"),
        ]  # fmt: skip


def _oauth_accounts(services, imap_server, rep_id, data: CrawlData) -> None:
    """Google sign-in set up (its sign-in page is never opened: Connect is a POST), a connected
    Gmail account and one the provider refused, which needs reconnecting."""
    from datetime import timedelta

    from crm.accounts import manage, oauth
    from crm.db import utcnow

    with services.session() as session:
        box = services.secret_box
        overrides = {"client_id": "crawl-client", "authorize_url": "http://127.0.0.1:9/authorize",
                     "token_url": "http://127.0.0.1:9/token", "imap_host": imap_server.host,
                     "imap_port": imap_server.port, "imap_security": "none"}  # fmt: skip
        oauth.save_provider_config(session, box, "google", overrides, client_secret="crawl")
        ids = []
        for email in ("renata.gmail@example.com", "renata.stara@example.com"):
            grant = oauth.Grant(email, "at-crawl", "rt-crawl", utcnow() + timedelta(hours=1), "")
            account = manage.create_oauth_account(
                session, box, user_id=rep_id, provider="google", grant=grant
            )
            ids.append(account.id)
        oauth.mark_needs_reauthorisation(
            session, account, "Google refused the stored authorisation (invalid_grant)"
        )
    data.oauth_paths = [
        "/accounts/new",
        *(f"/accounts/{i}" for i in ids),
        *(f"/accounts/{i}/edit" for i in ids),
    ]


def _templates(services, rep_id, data: CrawlData) -> None:
    """Two templates of rep's: an HTML one shared with the team (placeholders, Handlebars, an
    attachment) and a plain-text one; previewed against an account and one of its contacts."""
    from crm.models import Contact, EmailAddressLink
    from crm.templating import library
    from crm.templating.library import TemplateInput

    with services.session() as session:
        rep = session.get(User, rep_id)
        offer = TemplateInput(
            name="Ponuka – jarná akcia", category="Predaj", team_ids=[t.id for t in rep.teams],
            subject="Ponuka pre {Account.name}",
            body="<p>Dobrý deň {Person.firstName},</p><p>{{#if name}}pre {{name}}{{/if}} "
            "posielame ponuku.</p><p>{User.name}, {today}</p>",
            uploads=[library.Upload("cennik.csv", "text/csv", b"polozka;cena\nA;10\n")],
        )  # fmt: skip
        html = library.create(session, services.blobs, rep, offer)
        note = TemplateInput(name="Krátka odpoveď", subject="Re: {Case.name}", is_html=False,
                             body="Dobrý deň,\nďakujeme, ozveme sa.\n{User.name}")  # fmt: skip
        text = library.create(session, services.blobs, rep, note)
        contact = session.scalars(select(Contact).where(Contact.account_id.is_not(None))).first()
        address = session.scalars(
            select(EmailAddressLink).where(
                EmailAddressLink.entity_type == "Contact", EmailAddressLink.entity_id == contact.id
            )
        ).first()
        session.commit()
        to = address.address.address if address else ""
        preview = f"/templates/{html.id}/preview"
        data.template_paths = [
            "/templates/", "/templates/new", f"/templates/{html.id}", f"/templates/{text.id}",
            preview, f"{preview}?parent_type=Account&parent_id={contact.account_id}&to={to}",
        ]  # fmt: skip
