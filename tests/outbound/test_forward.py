"""A forward carries the original's attachments and inline images into the bytes sent."""

from email import message_from_bytes, policy

from crm.models import Attachment
from crm.outbound import drafts, outbox, replies
from crm.outbound.sending import deliver_due
from tests.factories import make_email


def test_forward_sends_inline_images_and_attachments(db, services, rep, smtp_account, smtp_server):
    original = make_email(
        db, users=[rep.id], subject="Návrh", html='<p>Logo: <img src="cid:logo@x.example"></p>'
    )
    original.attachments += [
        Attachment(filename="logo.png", content_type="image/png", content_id="logo@x.example",
                   is_inline=True, sha256=services.blobs.put(b"\x89PNG fake"), size=9),
        Attachment(filename="cenník.pdf", content_type="application/pdf",
                   sha256=services.blobs.put(b"%PDF-1.4"), size=8),
    ]  # fmt: skip
    db.commit()
    draft = replies.forward(db, rep, original, "1. 12. 2026 10:00")
    draft.to = "ann@customer.example"
    email = drafts.save(db, services.blobs, rep, draft)
    outbox.submit(db, services.blobs, rep, email)
    db.commit()
    assert [o.state for o in deliver_due(services)] == ["sent"]
    parsed = message_from_bytes(smtp_server.messages[0]["data"], policy=policy.default)
    assert parsed["Subject"] == "Fwd: Návrh"
    assert parsed.get_content_type() == "multipart/mixed"
    html = parsed.get_body(("html",)).get_content()
    assert 'src="cid:logo@x.example"' in html and "Forwarded message" in html
    parts = {p.get_filename(): p for p in parsed.walk() if p.get_filename()}
    assert parts["logo.png"]["Content-ID"] == "<logo@x.example>"
    assert parts["cenník.pdf"].get_content() == b"%PDF-1.4"
