"""Errors of the engine's service API, named after the Lambda API's exceptions."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of engine API errors; ``code`` is the AWS exception name, ``status`` the HTTP status."""

    code = "ServiceException"
    status = 500


class ResourceNotFoundException(ServiceError):
    code = "ResourceNotFoundException"
    status = 404


class InvalidParameterValueException(ServiceError):
    code = "InvalidParameterValueException"
    status = 400


class DurableExecutionAlreadyStartedException(ServiceError):
    code = "DurableExecutionAlreadyStartedException"
    status = 409


class ResourceConflictException(ServiceError):
    code = "ResourceConflictException"
    status = 409


class RequestTooLargeException(ServiceError):
    code = "RequestTooLargeException"
    status = 413


class CallbackTimeoutException(ServiceError):
    code = "CallbackTimeoutException"
    status = 400


class NotADurablyDatabase(ServiceError):
    code = "NotADurablyDatabase"
    status = 400


class DatabaseFileGone(ServiceError):
    """The database file was deleted or replaced under a running process."""

    code = "DatabaseFileGone"
    status = 500


class DatabaseUnavailable(ServiceError):
    """The database server cannot be reached (down, unreachable, refusing this user)."""

    code = "DatabaseUnavailable"
    status = 503


class HandlerImportError(ServiceError):
    code = "HandlerImportError"
    status = 400
