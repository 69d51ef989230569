import json
import logging

from core.log_format import JsonFormatter, KeyValueFormatter


def make_record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("app.test", logging.INFO, __file__, 1, "paid %s", ("ok",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_formatter_writes_one_object_with_extra_fields():
    line = JsonFormatter().format(make_record(user_id=7))
    payload = json.loads(line)
    assert payload["message"] == "paid ok"
    assert payload["level"] == "INFO"
    assert payload["logger"] == "app.test"
    assert payload["user_id"] == 7
    assert "\n" not in line


def test_key_value_formatter_is_readable_and_keeps_extra_fields():
    line = KeyValueFormatter().format(make_record(user_id=7))
    assert "INFO" in line
    assert "app.test: paid ok" in line
    assert line.endswith("user_id=7")
