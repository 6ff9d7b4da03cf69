"""Web app settings, from the environment (the session key also as a file under SECRETS_DIR)."""

from pydantic import Field, SecretStr

from shared.runtime.settings import TrialSettings


class WebSettings(TrialSettings):
    web_host: str = "127.0.0.1"
    web_port: int = Field(8200, ge=1, le=65535)
    # Where the browser reaches this app (its sign-in callback is under it), and where the app reaches the gateway.
    public_url: str = "http://127.0.0.1:8200"
    gateway_url: str = "http://127.0.0.1:8000"
    # The identity provider people sign in at, this app's client id there, and the gateway's audience.
    oidc_issuer: str = "http://127.0.0.1:8100"
    oidc_client_id: str = "trial-web"
    oidc_audience: str = "urn:nct06646146:gateway"
    oidc_group_prefix: str = "trial"
    # Encrypts the session cookie (Fernet: 32 url-safe base64 bytes); the browser holds only that ciphertext.
    web_session_key: SecretStr | None = None
    session_minutes: int = Field(60, gt=0, le=12 * 60)

    @property
    def secure_cookies(self) -> bool:
        """Secure cookies wherever the app is served over HTTPS (everywhere but a developer's loopback)."""
        return self.public_url.startswith("https://")
