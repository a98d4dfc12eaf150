from __future__ import annotations

import pytest

from layerbuilder import errors
from layerbuilder.errors import exit_code_for, http_status_for

EXPECTED = {
    errors.BadRequest: (2, 400),
    errors.UnknownTarget: (2, 400),
    errors.InvalidRequirement: (2, 400),
    errors.InvalidLayerName: (2, 400),
    errors.LockMismatch: (2, 400),
    errors.ProjectNotFound: (3, 404),
    errors.VersionNotFound: (3, 404),
    errors.NotFound: (3, 404),
    errors.ConflictError: (4, 409),
    errors.ResolutionImpossible: (4, 409),
    errors.LayerTooLarge: (5, 413),
    errors.WorkspaceTooSmall: (5, 413),
    errors.NoCompatibleWheel: (6, 422),
    errors.SdistOnly: (6, 422),
    errors.UnsafeWheel: (7, 422),
    errors.VerificationFailed: (8, 422),
    errors.IndexUnavailable: (9, 502),
    errors.IntegrityError: (10, 502),
    errors.AwsError: (11, 502),
    errors.LayerBuilderError: (1, 500),
}


@pytest.mark.parametrize(("cls", "codes"), list(EXPECTED.items()), ids=lambda x: str(x))
def test_each_error_class_maps_to_its_codes(cls: type[Exception], codes: tuple[int, int]) -> None:
    exc = cls("boom")
    assert (exit_code_for(exc), http_status_for(exc)) == codes
    assert (exit_code_for(cls), http_status_for(cls)) == codes


def test_every_public_error_is_in_the_table() -> None:
    public = {
        getattr(errors, n)
        for n in errors.__all__
        if isinstance(getattr(errors, n), type) and issubclass(getattr(errors, n), Exception)
    }
    assert public == set(EXPECTED)


def test_unexpected_errors_are_70_and_500() -> None:
    assert exit_code_for(KeyError("x")) == 70
    assert http_status_for(ValueError("x")) == 500


def test_aws_error_keeps_its_code() -> None:
    exc = errors.AwsError("AccessDeniedException: no", code="AccessDeniedException")
    assert exc.code == "AccessDeniedException"
    assert str(exc) == "AccessDeniedException: no"
