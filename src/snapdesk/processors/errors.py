"""The two ways a job can fail, as every processor reports them."""


class JobError(Exception):
    """A failure with a message meant for the person using SnapDesk."""

    kind = "retryable"


class PermanentError(JobError):
    """No retry can cure it: not an image, truncated, a decompression bomb, gone, unsupported."""

    kind = "permanent"


class RetryableError(JobError):
    """Worth another attempt later: a busy resource, a timeout, a dropped connection."""

    kind = "retryable"
