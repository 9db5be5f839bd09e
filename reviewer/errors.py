"""The exception tree. Every message says what went wrong and what to do next.

    ReviewerError
     ├── UsageError          bad command line or configuration (exit 2)
     ├── ReportError         the report cannot be read or analysed at all (exit 1)
     │    └── SourceError    the SOURCE path/zip is missing, unsafe or not a BackstopJS report
     └── (CircleCI and action errors live in their own modules and derive from ReviewerError)
"""

from __future__ import annotations


class ReviewerError(Exception):
    exit_code = 1


class UsageError(ReviewerError):
    exit_code = 2


class ReportError(ReviewerError):
    exit_code = 1


class SourceError(ReportError):
    pass


class ImageError(ReviewerError):
    """One image cannot be decoded: the pair gets verdict `error`, the run goes on."""
