"""study.errors: the hints a message uses (an OSError's reason, "did you mean")."""
import errno
import os

from study.errors import did_you_mean, os_reason


def test_an_os_errors_reason_is_its_text_without_number_or_file_and_its_message_where_it_has_none():
    assert os_reason(PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/data/x")) == "Permission denied"
    assert os_reason(OSError("a message of its own")) == "a message of its own"
    assert os_reason(ValueError("bad")) == "bad"


def test_did_you_mean_names_a_name_at_least_as_alike_as_the_cutoff_and_adds_why():
    assert did_you_mean("simclrr", ["simclr", "byol"]) == " (did you mean 'simclr'?)"
    assert did_you_mean("mocov", ["byol", "simclr"]) == ""  # under 0.6 alike
    assert did_you_mean("imagenet", ["imagenet1k"], cutoff=0.8, why=" it is in the grid") \
        == " (did you mean 'imagenet1k'? it is in the grid)"
