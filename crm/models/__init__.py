"""All models, imported so that Base.metadata knows every table."""

from crm.models.accounts import FolderCursor, MailAccount, SyncRun, mail_account_teams  # noqa: F401
from crm.models.addresses import EmailAddress, EmailAddressLink  # noqa: F401
from crm.models.blobs import Blob  # noqa: F401
from crm.models.bounces import DeliveryReport, DeliveryReportRecipient  # noqa: F401
from crm.models.campaigns import (  # noqa: F401
    AddressConfirmation,
    MassMail,
    MassMailList,
    MassMailRecipient,
    TargetList,
    TargetListMember,
)
from crm.models.folders import Folder, folder_teams  # noqa: F401
from crm.models.mail import (  # noqa: F401
    Attachment,
    DeletedMessage,
    Email,
    EmailLocation,
    EmailRecipient,
    EmailUserState,
    TrustedImageSender,
)
from crm.models.notifications import Notification  # noqa: F401
from crm.models.outbox import OutboxEntry, OutboxRecipient  # noqa: F401
from crm.models.records import (  # noqa: F401
    RECORD_TYPES,
    Account,
    Case,
    Contact,
    Lead,
    Opportunity,
    Task,
    opportunity_contacts,
)
from crm.models.rules import EmailFilter  # noqa: F401
from crm.models.settings import Setting  # noqa: F401
from crm.models.templates import EmailTemplate, TemplateAttachment, email_template_teams  # noqa: F401
from crm.models.users import Team, User, team_members  # noqa: F401
