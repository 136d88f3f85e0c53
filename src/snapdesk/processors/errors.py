"""The two ways a job can fail, as every processor reports them."""

import re


class JobError(Exception):
    """A failure with a message meant for the person using SnapDesk."""

    kind = "retryable"


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
