from datetime import datetime

import pytest

from crm.models import User
from crm.records import preferences


def test_times_convert_between_utc_and_the_users_zone():
    utc = datetime(2030, 7, 1, 12, 0)
    assert preferences.to_local(utc, "America/New_York") == datetime(2030, 7, 1, 8, 0)
    assert preferences.from_local(datetime(2030, 7, 1, 8, 0), "America/New_York") == utc
    assert preferences.to_local(utc, "No/Such_Zone") == utc
    assert preferences.to_local(None, "UTC") is None


def test_update_preferences_validates_everything_at_once():
    user = User(username="u", time_zone="UTC", date_format="%Y-%m-%d", signature="")
    with pytest.raises(preferences.PreferencesError) as caught:
        preferences.update_preferences(
            user,
            {
                "time_zone": "Nowhere",
                "date_format": "%Q",
                "signature": "x" * 10_001,
                "default_answer": "all",
            },
        )
    assert set(caught.value.errors) == {"time_zone", "date_format", "signature", "default_answer"}
    assert user.time_zone == "UTC"
    preferences.update_preferences(
        user,
        {
            "time_zone": "Asia/Tokyo",
            "date_format": "%d.%m.%Y",
            "signature": "-- \nMe",
            "use_external_client": "on",
            "default_answer": "reply_all",
        },
    )
    assert (user.time_zone, user.date_format, user.use_external_client) == (
        "Asia/Tokyo",
        "%d.%m.%Y",
        True,
    )
    assert user.reply_all_default is True
    preferences.update_preferences(user, {"time_zone": "UTC", "date_format": "%Y-%m-%d"})
    assert user.reply_all_default is False  # Reply unless asked otherwise
