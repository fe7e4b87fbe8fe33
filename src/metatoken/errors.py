"""User-facing errors: one line naming the field, file or id; the CLI exits with code 2."""


class UserError(Exception):
    """A mistake in what the user asked for (bad spec, unknown id, missing file), not a bug."""
