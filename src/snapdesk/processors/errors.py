"""The two ways a job can fail, as every processor reports them."""

import re


class JobError(Exception):
    """A failure with a message meant for the person using SnapDesk.

    ``advice`` says what to do about it when the usual word for its kind would mislead: a permanent
    failure reads "fix or replace the file" unless it carries advice of its own (a model that
    cannot follow the schema is not the file's fault). It travels with the failure to the owner."""

    kind = "retryable"

    def __init__(self, *args: object, advice: str | None = None):
        super().__init__(*args)
        self.advice = advice


class PermanentError(JobError):
    """No retry can cure it: not an image, truncated, a decompression bomb, gone, unsupported."""

    kind = "permanent"


class RetryableError(JobError):
    """Worth another attempt later: a busy resource, a timeout, a dropped connection."""

    kind = "retryable"


def damaged(exc: BaseException) -> PermanentError:
    """A decoder's complaint about damaged data as one sentence: "the image is damaged or
    truncated: image file is truncated, 2 bytes not processed" (no brackets within brackets)."""
    detail = re.sub(r"\s*\(([^()]*)\)", r", \1", str(exc)).strip(" .,")
    return PermanentError("the image is damaged or truncated" + (f": {detail}" if detail else ""))
