"""How a job's result is laid out on its page (services/result_display.py)."""

from services.result_display import MAX_TABLE_ROWS, as_text, result_display


def test_no_result_shows_nothing():
    assert result_display(None) is None


def test_plain_values_are_rows_and_lists_of_records_are_tables():
    shown = result_display(
        {
            "texts": 2,
            "counts": {"positive": 1, "negative": 1},
            "results": [{"index": 1, "label": "positive"}, {"index": 2, "note": "x"}],
        }
    )
    assert shown is not None
    assert shown.fields == [("texts", "2"), ("counts", "positive 1 · negative 1")]
    (table,) = shown.tables
    assert table.name == "results"
    # A key missing from a row leaves its cell empty; the columns still line up.
    assert table.columns == ["index", "label", "note"]
    assert table.rows == [["1", "positive", ""], ["2", "", "x"]]
    assert table.hidden == 0


def test_a_long_table_shows_its_first_rows_and_says_how_many_are_left_out():
    shown = result_display({"rows": [{"n": n} for n in range(MAX_TABLE_ROWS + 7)]})
    assert shown is not None
    (table,) = shown.tables
    assert len(table.rows) == MAX_TABLE_ROWS
    assert table.hidden == 7


def test_values_are_written_on_one_line():
    assert as_text(None) == ""
    assert as_text(True) == "yes"
    assert as_text([1, "a", {"b": False}]) == "1, a, b no"
    assert as_text([]) == ""
    # An empty list or a list of plain values is a field, not a table.
    shown = result_display({"tags": [], "words": ["a", "b"]})
    assert shown is not None
    assert shown.fields == [("tags", ""), ("words", "a, b")]
