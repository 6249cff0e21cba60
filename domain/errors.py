"""Domain errors: named classes with a stable machine-readable code.

Every error is raised before any state changes. The four bases say what kind of refusal it
is; the interfaces layer maps each base to one HTTP status in a single table.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refusal by the domain. ``code`` is stable and machine-readable."""

    code = "domain_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(DomainError):
    """The input is malformed or breaks a rule about its own value (names ``field``)."""

    code = "invalid_input"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.message = detail


class NotFound(DomainError):
    code = "not_found"


class NotAllowed(DomainError):
    """The actor's role or window does not allow this."""

    code = "not_allowed"


class RuleViolation(DomainError):
    """A business rule of the notice refuses the command."""

    code = "rule_violation"


class VersionMismatch(DomainError):
    """The caller's expected version is not the project's current version."""

    code = "version_mismatch"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"expected version {expected}, the project is at version {actual}")
        self.expected = expected
        self.actual = actual


# --- not found ----------------------------------------------------------------------------
class ProjectNotFound(NotFound):
    code = "project_not_found"


class ProgressCheckNotFound(NotFound):
    code = "progress_check_not_found"


class OfficerNotFound(NotFound):
    code = "officer_not_found"


class MaterialNotFound(NotFound):
    code = "material_not_found"


class LetterNotFound(NotFound):
    code = "letter_not_found"


class IssueNotFound(NotFound):
    code = "issue_not_found"


# --- business rules -----------------------------------------------------------------------
class DuplicateProjectCode(RuleViolation):
    code = "duplicate_project_code"


class ProjectClosed(RuleViolation):
    code = "project_closed"


class NotMajorProject(RuleViolation):
    code = "not_major_project"


class EarlyInterventionAlreadyStarted(RuleViolation):
    code = "early_intervention_already_started"


class EarlyInterventionNotStarted(RuleViolation):
    code = "early_intervention_not_started"


class CheckAlreadyRecorded(RuleViolation):
    code = "check_already_recorded"


class LeadAlreadyAssigned(RuleViolation):
    code = "lead_already_assigned"


class OfficerAlreadyAssigned(RuleViolation):
    code = "officer_already_assigned"


class HelperAlreadyDispatched(RuleViolation):
    code = "helper_already_dispatched"


class HelperNotDispatched(RuleViolation):
    code = "helper_not_dispatched"


class MaterialAlreadySupplied(RuleViolation):
    code = "material_already_supplied"


class DuplicateLetterNo(RuleViolation):
    code = "duplicate_letter_no"


class LetterClosed(RuleViolation):
    code = "letter_closed"


class LetterHasOpenIssues(RuleViolation):
    code = "letter_has_open_issues"


class IssueNotAwaitingRectification(RuleViolation):
    code = "issue_not_awaiting_rectification"


class IssueNotSubmitted(RuleViolation):
    code = "issue_not_submitted"


class ProjectHasOpenLetters(RuleViolation):
    code = "project_has_open_letters"
