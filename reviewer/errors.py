"""The exception tree. Every message says what went wrong and what to do next.

    ReviewerError
     ├── UsageError          bad command line or configuration (exit 2)
     ├── ReportError         the report cannot be read or analysed at all (exit 1)
     │    └── SourceError    the SOURCE path/zip is missing, unsafe or not a BackstopJS report
     └── (CircleCI and action errors live in their own modules and derive from ReviewerError)
    Interrupted              Ctrl-C (exit 130); a BaseException, like KeyboardInterrupt
"""

from __future__ import annotations


class ReviewerError(Exception):
    exit_code = 1


class UsageError(ReviewerError):
    exit_code = 2


class Interrupted(BaseException):
    """Ctrl-C: what `reviewer`'s SIGINT handler raises (instead of KeyboardInterrupt, which the
    CLI library would swallow), so the user gets one line and exit code 130.

    Not an Exception: the `except Exception` that keeps one broken pair from sinking a run
    must not turn Ctrl-C into an error pair and carry on."""

    exit_code = 130

    def __init__(self, message: str = "interrupted: nothing half-written counts as complete; "
                                      "run the same command again to finish") -> None:
        super().__init__(message)


class ReportError(ReviewerError):
    exit_code = 1


class SourceError(ReportError):
    pass


class ImageError(ReviewerError):
    """One image cannot be decoded: the pair gets verdict `error`, the run goes on."""
