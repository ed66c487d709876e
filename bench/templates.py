"""Render rate of mail templates: the Handlebars layer, and the full path compose and mass mail use.

    .venv/bin/python bench/templates.py [-n 10000] [--rounds 3] [--records 500] [--no-full]
                                        [--json FILE]

Handlebars layer (crm.templating.handlebars.render): one realistic template, a subject and an
HTML body with if / else / each / with / dateFormat / numberFormat / join, rendered for n
personalised contexts (a Central-European recipient, their account, 1-5 order lines each), the
compiled template coming from the cache after the first mail. Reported: mails/s (median of the
rounds, subject + body per mail), and the cost of one cold compile: the first render of a
template not seen before (validation, pybars3's code builder, Python's compile) less a warm
render, median of 5 fresh templates; beside it, what bare pybars3 takes to compile the same
text with its own parser (the guard never lets it parse template text).

Full path (crm.templating.rendering.render_template, as compose, preview, the command line and
mass mail call it): --records opportunities, each with an account and a contact with an
address, in SQLite in a temporary folder; n mails rendered with an opportunity as the parent and
its contact as the recipient, cycling through the records: placeholders ({Contact.firstName},
{Account.name}, {User.name}, {today}) + Handlebars over the parent's view + HTML sanitising,
each mail reading its records from the database. --no-full skips it.
Nothing is asserted: this reports figures.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pybars

from crm.templating import handlebars

SUBJECT = 'Ponuka {{offer.number}} pre {{account.name}} – platná do {{dateFormat offer.validUntil "D. M. YYYY"}}'
BODY = """<p>{{#if contact.salutation}}{{contact.salutation}} {{contact.lastName}}{{else}}Dobrý deň{{/if}},</p>
<p>ďakujeme za Váš záujem. Posielame ponuku z {{dateFormat offer.createdAt "DD.MM.YYYY"}}:</p>
<table style="border-collapse: collapse; width: 100%; font-family: Arial, sans-serif">
  <tr><th align="left">#</th><th align="left">Položka</th><th align="right">Cena</th></tr>
  {{#each offer.lines}}
  <tr{{#if @last}} class="last"{{/if}}><td>{{@index}}</td><td>{{name}}{{#if note}} <small>({{note}})</small>{{/if}}</td>
      <td align="right">{{numberFormat price 2 " " ","}} €</td></tr>
  {{else}}
  <tr><td colspan="3">Žiadne položky.</td></tr>
  {{/each}}
</table>
<p>Spolu: <b>{{numberFormat offer.total 2 " " ","}} €</b>{{#ifEqual offer.vat "yes"}} vrátane DPH{{/ifEqual}}</p>
{{#with account}}<p>Dodacia adresa: {{name}}, {{street}}, {{city}}</p>{{/with}}
{{#unless contact.optedOut}}<p>Štítky: {{join offer.tags ", "}}</p>{{/unless}}
{{! the signature comes from the user's settings }}
<p>S pozdravom<br>{{user.name}}</p>
"""

FIRST = ["Žofia", "Jürgen", "Łukasz", "Jiří", "Ágnes", "Mária", "Ondřej", "Małgorzata", "Ľubomír"]
LAST = ["Nováková", "Größer", "Wójcik", "Dvořák", "Szabó", "Kováčová", "Černý", "Zieliński"]
CITIES = ["Žilina", "Brno", "Kraków", "München", "Győr", "Košice", "Ostrava", "Łódź"]
PRODUCTS = ["Licencia CRM", "Školenie", "Podpora 12 mesiacov", "Migrácia dát", "Integrácia API"]


def context_for(rng: random.Random, i: int) -> dict:
    """One recipient's data, as plain data from a whitelist would give it."""
    lines = [
        {
            "name": rng.choice(PRODUCTS),
            "note": rng.choice(["", "zľava 10 %", "<akcia>"]),
            "price": Decimal(rng.randint(1_000, 500_000)) / 100,
        }
        for _ in range(rng.randint(1, 5))
    ]
    created = date(2026, 1, 1) + timedelta(days=rng.randint(0, 300))
    return {
        "contact": {
            "salutation": rng.choice(["Pani", "Pán", ""]),
            "firstName": rng.choice(FIRST),
            "lastName": rng.choice(LAST),
            "optedOut": rng.random() < 0.1,
        },
        "account": {
            "name": f"{rng.choice(LAST)} & syn s.r.o.",
            "street": f"Hlavná {i % 200 + 1}",
            "city": rng.choice(CITIES),
        },
        "offer": {
            "number": f"P-2026-{i:05d}",
            "createdAt": created,
            "validUntil": created + timedelta(days=30),
            "lines": lines,
            "total": sum(line["price"] for line in lines),
            "vat": rng.choice(["yes", "no"]),
            "tags": rng.sample(["B2B", "priorita", "Q3", "partner"], 2),
        },
        "user": {"name": "Jiří Dvořák"},
    }


def handlebars_rate(contexts: list[dict], rounds: int) -> dict:
    handlebars.render(SUBJECT, contexts[0], html=False)
    handlebars.render(BODY, contexts[0], html=True)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for context in contexts:
            handlebars.render(SUBJECT, context, html=False)
            handlebars.render(BODY, context, html=True)
        times.append(time.perf_counter() - started)
    return {"rate": len(contexts) / statistics.median(times), "rounds": times}


def cold_compile_ms(context: dict) -> dict:
    """The first render of an unseen template less a warm one; and bare pybars3's own compile."""
    colds = []
    for _ in range(5):
        source = f"{{{{! {uuid.uuid4()} }}}}{BODY}"
        started = time.perf_counter()
        handlebars.render(source, context, html=True)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        handlebars.render(source, context, html=True)
        colds.append(cold - (time.perf_counter() - started))
    started = time.perf_counter()
    pybars.Compiler().compile(BODY)
    bare = time.perf_counter() - started
    return {
        "cold_compile_ms": statistics.median(colds) * 1000,
        "bare_pybars3_compile_ms": bare * 1000,
    }


def full_path_rate(n: int, records: int, rng: random.Random) -> dict:
    """render_template for n mails over records opportunities, in SQLite in a temp folder."""
    from crm.config import Config
    from crm.migrations import upgrade
    from crm.models import User
    from crm.records.users import create_user
    from crm.services import Services
    from crm.templating.rendering import TemplateText, render_template
    from tests.support import records as make

    work = Path(tempfile.mkdtemp(prefix="crm-bench-templates-"))
    config = Config(instance_dir=work / "instance", data_dir=work / "data", secret_key="bench")
    config.instance_dir.mkdir(parents=True)
    upgrade(config.database_url)
    services = Services(config)
    try:
        with services.session() as session:
            user = create_user(
                session, "bench", "bench-password", ["bench@example.com"], False, [], ""
            )
            user.name = "Jiří Dvořák"
            parents = []
            for i in range(records):
                account = make.account(session, f"{rng.choice(LAST)} & syn s.r.o. {i}",
                                       assigned_user_id=user.id)  # fmt: skip
                address = f"kontakt{i}@firma{i}.example"
                make.contact(session, rng.choice(FIRST), rng.choice(LAST), [address],
                             account=account, assigned_user_id=user.id)  # fmt: skip
                deal = make.opportunity(
                    session, f"Ponuka {i}", account=account, assigned_user_id=user.id,
                    amount=Decimal(rng.randint(1_000, 5_000_000)) / 100,
                    close_date=date(2026, 1, 1) + timedelta(days=rng.randint(0, 300)),
                )  # fmt: skip
                parents.append((deal, address))
            session.commit()
            text = TemplateText(
                "Ponuka {{name}} pre {Account.name}",
                "<p>Dobrý deň {Contact.firstName},</p><p>ponuka <b>{{name}}</b>"
                '{{#if amount}} na {{numberFormat amount 2 " " ","}} €{{/if}}, platná do '
                '{{dateFormat closeDate "DD.MM.YYYY"}}.</p>{{#with account}}<p>{{name}}</p>{{/with}}'
                "<p>{today}</p><p>S pozdravom<br>{User.name}</p>",
                True,
                "bench:1",
            )
            user = session.get(User, user.id)
            render_template(
                session, text, user=user, parent=parents[0][0], to_address=parents[0][1]
            )
            started = time.perf_counter()
            for i in range(n):
                parent, address = parents[i % len(parents)]
                render_template(session, text, user=user, parent=parent, to_address=address)
            seconds = time.perf_counter() - started
        return {"rate": n / seconds, "seconds": seconds, "records": records}
    finally:
        services.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="mails to render")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--records", type=int, default=500, help="records for the full path")
    parser.add_argument("--no-full", action="store_true", help="only the Handlebars layer")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    contexts = [context_for(rng, i) for i in range(args.n)]
    layer = handlebars_rate(contexts, args.rounds)
    compile_cost = cold_compile_ms(contexts[0])
    runs = " ".join(f"{t:.2f}" for t in layer["rounds"])
    print(f"{args.n} personalised mails (subject + HTML body), {args.rounds} rounds (median)")
    print(f"  handlebars.render          {layer['rate']:8.0f} mails/s   runs (s): {runs}")
    print(f"  one cold compile           {compile_cost['cold_compile_ms']:8.1f} ms")
    print(f"  bare pybars3 compile       {compile_cost['bare_pybars3_compile_ms']:8.1f} ms"
          "   (its own parser on the same text, for comparison)")  # fmt: skip
    figures = {"mails": args.n, "handlebars": layer, **compile_cost}
    if not args.no_full:
        full = full_path_rate(args.n, args.records, rng)
        print(f"  render_template (full)     {full['rate']:8.0f} mails/s   "
              f"({full['records']} records in SQLite, {full['seconds']:.1f} s)")  # fmt: skip
        figures["full_path"] = full
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
