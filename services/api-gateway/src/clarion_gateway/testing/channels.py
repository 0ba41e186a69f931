"""Provider settings that pass the gateway's checks, one per channel type (API.md
Channels): what a test's enabled channel carries when the test is not about them."""

from __future__ import annotations

from clarion_shared.contracts.base import JsonObject

# Shaped as a PEM key (the gateway checks no more; the delivery workers parse it).
PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG\n-----END PRIVATE KEY-----\n"
SERVICE_ACCOUNT: JsonObject = {
    "client_email": "clarion@project-1.iam.gserviceaccount.com",
    "private_key": PEM_KEY,
    "token_uri": "https://oauth2.googleapis.com/token",
}
FCM: JsonObject = {"projectId": "project-1", "serviceAccount": SERVICE_ACCOUNT}
APNS: JsonObject = {
    "teamId": "TEAM123456",
    "keyId": "KEY1234567",
    "privateKey": PEM_KEY,
    "bundleId": "com.example.app",
}
PROVIDER_SETTINGS: dict[str, JsonObject] = {
    "email": {
        "smtp": {
            "host": "smtp.example.com",
            "port": 587,
            "security": "starttls",
            "username": "clarion",
            "password": "correct-horse-battery",
        },
        "from": {"email": "news@example.com", "name": "Example"},
    },
    "push": {"fcm": FCM, "apns": APNS},
    "sms": {
        "provider": "twilio",
        "accountSid": "AC0123456789abcdef0123456789abcdef",
        "authToken": "twilio-auth-token-1234",
        "from": "+15551234567",
    },
    "whatsapp": {"phoneNumberId": "1234567890", "accessToken": "meta-access-token-1234"},
    "custom": {"url": "https://hooks.example.com/clarion"},
}


def provider_settings(channel_type: str) -> JsonObject:
    """A copy of ``channel_type``'s settings (empty for ``in_app``)."""
    return dict(PROVIDER_SETTINGS.get(channel_type, {}))
