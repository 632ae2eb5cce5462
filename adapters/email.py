"""Email address syntax, checked by the email-validator library (no DNS look-ups)."""

from email_validator import EmailNotValidError, validate_email

from domain.errors import ValidationFailed
from domain.users import MAX_EMAIL_LENGTH


class EmailValidatorPolicy:
    def normalize(self, raw: str) -> str:
        email = raw.strip()
        if len(email) > MAX_EMAIL_LENGTH:
            raise ValidationFailed.single(
                "email", f"Email must be at most {MAX_EMAIL_LENGTH} characters"
            )
        if "\x00" in email:
            raise ValidationFailed.single("email", "Must not contain the NUL character (U+0000)")
        try:
            valid = validate_email(email, check_deliverability=False)
        except EmailNotValidError as error:
            raise ValidationFailed.single("email", str(error)) from None
        # Accounts are case-insensitive: A@x.io and a@x.io are one account, stored lowercased.
        return valid.normalized.lower()
