"""Parsing without the paper corpus: format detection, limits, text formats, JSONL, errors,
PDF clean-up on small PDFs built here, and the timeout child process."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pytest

from shared.documents import ParsedDocument
from shared.parsing import (
    BadRecordError,
    EmptyFileError,
    EncryptedPdfError,
    FileTooLargeError,
    MalformedPdfError,
    NoTextError,
    ParseError,
    ParserCrashedError,
    ParseTimeoutError,
    PdfError,
    TooManyPagesError,
    UnsupportedFormatError,
    detect_format,
    iter_jsonl,
    parse_file,
    parse_file_with_timeout,
)
from shared.parsing import parse as parse_module
from shared.parsing.cleanup import clean_pdf_pages

LIMITS = {"max_pages": 2000, "max_bytes": 50 * 2**20}


def make_pdf(pages: list[list[str | tuple[str, int]]], *, title: str | None = None) -> bytes:
    """A small valid PDF; each page is a list of lines, a line is text or (text, font size)."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    pages_id = len(objects) + 1 + 2 * len(pages)
    page_ids = []
    for lines in pages:
        ops, y = [], 760
        for line in lines:
            text, size = (line, 11) if isinstance(line, str) else line
            escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"BT /F1 {size} Tf 72 {y} Td ({escaped}) Tj ET")
            y -= int(size * 1.4)
        stream = "\n".join(ops).encode("latin-1")
        content = add(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        page_ids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
                b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                % (pages_id, font, content)
            )
        )
    kids = " ".join(f"{i} 0 R" for i in page_ids).encode()
    assert add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(pages))) == pages_id
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    info = add(b"<< /Title (%s) >>" % title.encode("latin-1")) if title is not None else None
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"<< /Size %d /Root %d 0 R" % (len(objects) + 1, catalog)
    if info is not None:
        trailer += b" /Info %d 0 R" % info
    out += b"trailer\n%s >>\nstartxref\n%d\n%%%%EOF\n" % (trailer, xref)
    return bytes(out)


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def paper_pages(n: int) -> list[list[str | tuple[str, int]]]:
    """`n` pages with a running header, a page number and text that differs per page."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    pages: list[list[str | tuple[str, int]]] = []
    for i in range(n):
        word = words[i % len(words)]
        pages.append(
            [
                "Journal of Reproducible Things, Volume 7",
                f"The {word} section reports an inter-",
                f"esting result about {word} measurements and self-",
                f"reported {word} outcomes in the cohort study.",
                f"Further {word} observations follow from the interesting data.",
                f"More lines keep the {word} page long enough to have edges.",
                f"Yet another {word} sentence fills the page body for the test.",
                f"The last {word} body line sits above the page number.",
                str(i + 1),
            ]
        )
    pages[0].insert(0, ("Measuring Reproducible Things at Scale", 22))
    return pages


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (EncryptedPdfError(passwords_tried=False), "encrypted: password required"),
        (EncryptedPdfError(passwords_tried=True), "encrypted: wrong password"),
        (NoTextError(), "no extractable text (scanned?)"),
        (MalformedPdfError("no xref"), "malformed PDF: no xref"),
        (EmptyFileError(), "empty file"),
        (UnsupportedFormatError("a PNG image"), "unsupported format: a PNG image"),
        (
            FileTooLargeError(size_bytes=int(12.3 * 2**20), max_bytes=10 * 2**20),
            "file is 12.3 MiB, over the limit RAG_MAX_FILE_MB=10",
        ),
        (
            TooManyPagesError(pages=2500, max_pages=2000),
            "PDF has 2500 pages, over the limit RAG_MAX_PAGES=2000",
        ),
        (ParseTimeoutError(timeout_s=120), "parse timed out after 120 s (RAG_PARSE_TIMEOUT_S)"),
        (BadRecordError(line=17, detail="invalid JSON"), "line 17: invalid JSON"),
    ],
)
def test_error_reason_is_the_message_and_survives_pickling(error: ParseError, reason: str) -> None:
    assert error.reason == reason
    assert str(error) == reason
    assert isinstance(error, ParseError)
    assert error.retryable is False
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy.reason == reason
    assert vars(copy) == vars(error)


def test_pdf_errors_share_a_base() -> None:
    for cls in (EncryptedPdfError, NoTextError, MalformedPdfError, TooManyPagesError):
        assert issubclass(cls, PdfError)
    assert not issubclass(FileTooLargeError, PdfError)


def test_size_just_over_the_limit_shows_enough_decimals() -> None:
    error = FileTooLargeError(size_bytes=10 * 2**20 + 1000, max_bytes=10 * 2**20)
    assert error.reason == "file is 10.00 MiB, over the limit RAG_MAX_FILE_MB=10"


# --- format detection -------------------------------------------------------------------------


def test_detects_formats_by_content(tmp_path: Path) -> None:
    pdf = make_pdf([["Hello"]])
    assert detect_format(write(tmp_path, "paper.pdf", pdf)) == "pdf"
    assert detect_format(write(tmp_path, "paper.bin", pdf)) == "pdf"  # content, not the name
    assert detect_format(write(tmp_path, "page", "<!DOCTYPE html><html><p>x</p></html>")) == "html"
    assert detect_format(write(tmp_path, "page.txt", "<html><body>hi</body></html>")) == "html"
    assert detect_format(write(tmp_path, "notes.md", "Just words.\n")) == "markdown"
    markdown = "# Title\n\nSome text with a [link](http://x.org).\n\n- item\n"
    assert detect_format(write(tmp_path, "notes.txt", markdown)) == "markdown"
    assert detect_format(write(tmp_path, "notes.txt", "Plain words.\nMore words.\n")) == "text"
    records = '{"_id": "1", "text": "a"}\n{"_id": "2", "text": "b"}\n'
    assert detect_format(write(tmp_path, "corpus.jsonl", records)) == "jsonl"
    assert detect_format(write(tmp_path, "corpus.txt", records)) == "jsonl"
    broken = '{"_id": "1", "text": \n'
    assert detect_format(write(tmp_path, "broken.jsonl", broken)) == "jsonl"
    assert detect_format(write(tmp_path, "broken.txt", broken)) == "text"
    readme = '<p align="center"><img src="logo.png"></p>\n<div>x</div>\n\n# Project\n'
    assert detect_format(write(tmp_path, "README.md", readme)) == "markdown"
    assert detect_format(write(tmp_path, "fragment", "<div><p>Hello</p></div>")) == "html"
    assert detect_format(write(tmp_path, "talk.txt", "We used <p> and <div> tags.\n")) == "text"


def test_pdf_header_after_leading_junk_is_still_pdf(tmp_path: Path) -> None:
    path = write(tmp_path, "x.pdf", b"\x00\x01junk\n" + make_pdf([["Hello world"]]))
    assert detect_format(path) == "pdf"


def test_junk_named_pdf_says_it_is_not_a_pdf(tmp_path: Path) -> None:
    path = write(tmp_path, "paper.pdf", bytes(range(256)) * 20)
    with pytest.raises(UnsupportedFormatError) as caught:
        detect_format(path)
    assert caught.value.reason.startswith("unsupported format: named .pdf but holds binary data")
    assert "not a PDF" in caught.value.reason
    with pytest.raises(UnsupportedFormatError, match="not a PDF"):
        parse_file(path, **LIMITS)


def test_other_files_named_pdf_say_what_they_hold(tmp_path: Path) -> None:
    zipped = write(tmp_path, "a.pdf", b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(UnsupportedFormatError, match="named .pdf but holds a ZIP archive"):
        detect_format(zipped)
    page = write(tmp_path, "b.pdf", "<!doctype html><html><title>404</title></html>")
    with pytest.raises(UnsupportedFormatError, match="named .pdf but holds HTML"):
        detect_format(page)
    headless = write(tmp_path, "c.pdf", b"1 0 obj\n<< /Type /Catalog >>\nendobj\n")
    with pytest.raises(UnsupportedFormatError, match="no %PDF- header"):
        detect_format(headless)


def test_binary_and_images_are_unsupported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError, match="a PNG image"):
        detect_format(write(tmp_path, "x.txt", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64))
    with pytest.raises(UnsupportedFormatError, match="binary data"):
        detect_format(write(tmp_path, "x.dat", os.urandom(4096)))


def test_empty_and_blank_files(tmp_path: Path) -> None:
    with pytest.raises(EmptyFileError):
        detect_format(write(tmp_path, "empty.txt", b""))
    with pytest.raises(EmptyFileError, match="^empty file$"):
        parse_file(write(tmp_path, "empty.pdf", b""), **LIMITS)
    with pytest.raises(EmptyFileError):
        parse_file(write(tmp_path, "blank.txt", "  \n\n \t\n"), **LIMITS)


# --- limits -----------------------------------------------------------------------------------


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.pdf"
    with path.open("wb") as file:
        file.truncate(int(12.3 * 2**20))  # sparse: the size check must not read the file
    with pytest.raises(FileTooLargeError) as caught:
        parse_file(path, max_pages=10, max_bytes=10 * 2**20)
    assert caught.value.reason == "file is 12.3 MiB, over the limit RAG_MAX_FILE_MB=10"


def test_pdf_over_the_page_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "long.pdf", make_pdf([[f"Page {i} text."] for i in range(5)]))
    with pytest.raises(TooManyPagesError) as caught:
        parse_file(path, max_pages=4, max_bytes=2**20)
    assert caught.value.reason == "PDF has 5 pages, over the limit RAG_MAX_PAGES=4"
    assert len(parse_file(path, max_pages=5, max_bytes=2**20).pages) == 5


# --- text, markdown, html ---------------------------------------------------------------------


def test_plain_text_title_and_whitespace(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.txt", "A Short Title\r\n\r\n\r\n\r\nBody   text\there.  \r\n")
    doc = parse_file(path, **LIMITS)
    assert doc.format == "text"
    assert doc.title == "A Short Title"
    assert doc.pages == [doc.pages[0]] and doc.pages[0].number == 1
    assert doc.pages[0].text == "A Short Title\n\nBody text here."


def test_single_line_text_falls_back_to_the_file_stem(tmp_path: Path) -> None:
    doc = parse_file(write(tmp_path, "one-liner.txt", "just one line of text"), **LIMITS)
    assert doc.title == "one-liner"


@pytest.mark.parametrize(
    "encoding", ["cp1252", "latin-1", "utf-16", "utf-8-sig"], ids=lambda e: str(e)
)
def test_non_utf8_text_is_decoded(tmp_path: Path, encoding: str) -> None:
    body = (
        "Résumé of the naïve café owner in Zürich.\n"
        "Die Größe der Übergänge ist schön, déjà vu for the façade.\n"
    )
    path = write(tmp_path, "legacy.txt", body.encode(encoding))
    text = parse_file(path, **LIMITS).pages[0].text
    assert "Résumé of the naïve café owner in Zürich." in text
    assert "Größe der Übergänge" in text


def test_undecodable_bytes_never_crash(tmp_path: Path) -> None:
    # 0x81 and 0x8d are unmapped in cp1252: the reader must fall back, not raise.
    path = write(tmp_path, "odd.txt", b"Caf\xe9 \x81 and \x8d plain words follow here.\n" * 3)
    text = parse_file(path, **LIMITS).pages[0].text
    assert "plain words follow here" in text


def test_markdown(tmp_path: Path) -> None:
    source = (
        "---\nauthor: someone\n---\n"
        "# Retrieval Notes\n\n"
        "See [the paper](https://example.org/p.pdf) and ![a chart](c.png).\n"
        "<!-- a comment -->\n"
        '<p align="center"><img src="logo.png"></p> Uses List<String> in code.\n'
        "## Details\n\nMore text.\n"
    )
    doc = parse_file(write(tmp_path, "notes.md", source), **LIMITS)
    assert doc.format == "markdown"
    assert doc.title == "Retrieval Notes"
    text = doc.pages[0].text
    assert "See the paper and a chart." in text
    assert "https://" not in text and "comment" not in text and "author:" not in text
    assert "Details" in text and "##" not in text
    assert "<p" not in text and "logo.png" not in text
    assert "Uses List<String> in code." in text


def test_html(tmp_path: Path) -> None:
    source = """<!DOCTYPE html><html><head><meta charset="utf-8">
    <title>Dense   Retrieval &amp; You</title>
    <style>body { color: red }</style><script>var x = "hidden";</script></head>
    <body><nav>Home</nav><h1>Main heading</h1>
    <p>First <b>bold</b> paragraph,
       wrapped in the source.</p><p>Second&nbsp;one &lt;here&gt;.</p>
    <table><tr><td>a</td><td>b</td></tr></table><img src="x.png" alt="A figure"></body></html>"""
    doc = parse_file(write(tmp_path, "page.html", source), **LIMITS)
    assert doc.format == "html"
    assert doc.title == "Dense Retrieval & You"
    text = doc.pages[0].text
    assert "First bold paragraph, wrapped in the source." in text
    assert "Second one <here>." in text
    assert "a b" in text and "A figure" in text
    assert "hidden" not in text and "color" not in text
    assert text.index("Main heading") < text.index("First bold")


def test_html_in_a_legacy_charset(tmp_path: Path) -> None:
    source = '<html><head><meta charset="windows-1252"><title>Caf\xe9</title></head>'
    source += "<body><h1>Cr\xe8me br\xfbl\xe9e recipes</h1><p>Na\xefve text.</p></body></html>"
    doc = parse_file(write(tmp_path, "page.htm", source.encode("cp1252")), **LIMITS)
    assert doc.title == "Café"
    assert "Crème brûlée recipes" in doc.pages[0].text
    assert "Naïve text." in doc.pages[0].text


def test_jsonl_is_not_a_single_document(tmp_path: Path) -> None:
    path = write(tmp_path, "corpus.jsonl", '{"_id": "1", "text": "a"}\n')
    with pytest.raises(UnsupportedFormatError, match="iter_jsonl"):
        parse_file(path, **LIMITS)


# --- JSONL ------------------------------------------------------------------------------------


def test_iter_jsonl_reads_records(tmp_path: Path) -> None:
    lines = [
        (
            '{"_id": "doc1", "title": "First", "text": "Alpha text.", "metadata": {"year": 2020,'
            ' "venue": "ACL", "tags": ["a", "b"], "none": null}}'
        ),
        "",
        '{"_id": 42, "text": "Beta text."}',
    ]
    docs = list(iter_jsonl(write(tmp_path, "corpus.jsonl", "\n".join(lines) + "\n")))
    assert [d.external_id for d in docs] == ["doc1", "42"]
    assert docs[0] == ParsedDocument(
        title="First",
        format="jsonl-record",
        pages=docs[0].pages,
        external_id="doc1",
        metadata={"year": "2020", "venue": "ACL", "tags": '["a", "b"]', "none": ""},
    )
    assert [(p.number, p.text) for p in docs[0].pages] == [(1, "Alpha text.")]
    assert docs[1].title == "" and docs[1].metadata == {}


@pytest.mark.parametrize(
    ("bad_line", "detail"),
    [
        ('{"_id": "x", "text": "unterminated}', "invalid JSON"),
        ('["not", "an", "object"]', "expected a JSON object, got an array"),
        ('{"title": "no id", "text": "t"}', 'missing "_id"'),
        ('{"_id": "x", "text": 5}', '"text" must be a string, got a number'),
        ('{"_id": "x", "text": "t", "metadata": [1]}', '"metadata" must be an object'),
    ],
)
def test_iter_jsonl_names_the_bad_line(tmp_path: Path, bad_line: str, detail: str) -> None:
    good = '{"_id": "ok", "text": "fine"}'
    path = write(tmp_path, "corpus.jsonl", f"{good}\n{good}\n\n{bad_line}\n{good}\n")
    records = iter_jsonl(path)
    assert next(records).external_id == "ok"
    assert next(records).external_id == "ok"
    with pytest.raises(BadRecordError) as caught:
        next(records)
    assert caught.value.line == 4
    assert caught.value.reason.startswith(f"line 4: {detail}")
    assert isinstance(caught.value, ParseError)


def test_iter_jsonl_rejects_non_utf8_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "corpus.jsonl", b'{"_id": "1", "text": "caf\xe9"}\n')
    with pytest.raises(BadRecordError, match="^line 1: not UTF-8"):
        list(iter_jsonl(path))


# --- PDF text clean-up ------------------------------------------------------------------------


def test_pdf_pages_are_numbered_cleaned_and_titled(tmp_path: Path) -> None:
    path = write(tmp_path, "study.pdf", make_pdf(paper_pages(4), title="Microsoft Word - x.doc"))
    doc = parse_file(path, **LIMITS)
    assert doc.format == "pdf"
    assert doc.title == "Measuring Reproducible Things at Scale"  # metadata is a placeholder
    assert [p.number for p in doc.pages] == [1, 2, 3, 4]
    for page in doc.pages:
        assert "Journal of Reproducible Things" not in page.text  # running header
        assert not page.text.rstrip().endswith(str(page.number))  # page number
        assert "an interesting result" in page.text  # "inter-" + "esting" joined
        assert "self-reported" in page.text  # a real compound keeps its hyphen
        assert "  " not in page.text
    assert "bravo" in doc.pages[1].text


def test_meaningful_pdf_metadata_title_wins(tmp_path: Path) -> None:
    pdf = make_pdf(paper_pages(2), title="A Study of Things")
    assert parse_file(write(tmp_path, "s.pdf", pdf), **LIMITS).title == "A Study of Things"


def test_pdf_without_heading_or_title_uses_the_stem(tmp_path: Path) -> None:
    pdf = make_pdf([["plain body text only"], ["more body text"]], title="draft.docx")
    assert parse_file(write(tmp_path, "my-paper.pdf", pdf), **LIMITS).title == "my-paper"


def test_pdf_without_text_is_no_text(tmp_path: Path) -> None:
    path = write(tmp_path, "scan.pdf", make_pdf([[], []]))
    with pytest.raises(NoTextError, match=r"^no extractable text \(scanned\?\)$"):
        parse_file(path, **LIMITS)


def test_truncated_pdf_is_malformed_or_recovered(tmp_path: Path) -> None:
    pdf = make_pdf([["Recovered words here"]])
    path = write(tmp_path, "cut.pdf", pdf[:60])
    with pytest.raises(MalformedPdfError, match="^malformed PDF: "):
        parse_file(path, **LIMITS)


def test_clean_pdf_pages_hyphenation_evidence() -> None:
    pages = clean_pdf_pages(
        [
            "The cor\ufffepus is large and the corpus grows.\r\n",
            "A state-of-the-art well\ufffeknown model; a long\ufffeterm\r\nplan; BERT\ufffeBase.",
            "Pages 482-\r\n5 cite data\ufffebases, and the data-bases are here.",
        ]
    )
    assert pages[0] == "The corpus is large and the corpus grows."
    assert "well-known model" in pages[1]
    assert "long-term\nplan" in pages[1]
    assert "BERT-Base" in pages[1]
    assert "482-\n5" in pages[2]  # numbers: not a word break
    assert "cite data-bases" in pages[2]  # the document spells it with a hyphen


def test_clean_pdf_pages_removes_alternating_headers_and_page_numbers() -> None:
    words = ["red", "green", "blue", "cyan", "pink", "gray"]
    raw = []
    for i, word in enumerate(words):
        header = "Smith and Jones" if i % 2 else "A Study of Running Heads"
        body = "\n".join(f"Line {k} of the {word} chapter." for k in range(12))
        raw.append(f"{header}\n{i + 101}\nUnique {word} opening.\n{body}\nClosing {word}.")
    pages = clean_pdf_pages(raw)
    for i, text in enumerate(pages):
        assert "Smith and Jones" not in text and "Running Heads" not in text
        assert f"{i + 101}" not in text
        assert text.startswith(f"Unique {words[i]} opening.")
        assert text.endswith(f"Closing {words[i]}.")


def test_lines_that_differ_only_in_numbers_are_content_not_headers() -> None:
    raw = []
    for i, word in enumerate(["north", "south", "east", "west", "centre"]):
        rows = "\n".join(f"Layer {k} accuracy {k * i}.{k}" for k in range(12))
        raw.append(f"The {word} results.\n{rows}\nEnd of {word}.")
    pages = clean_pdf_pages(raw)
    for text in pages:
        assert len(text.splitlines()) == 14


def test_clean_pdf_pages_keeps_a_single_page_as_is() -> None:
    assert clean_pdf_pages(["Header line\n12\nbody"]) == ["Header line\n12\nbody"]


# --- parsing in a child process with a deadline -----------------------------------------------


def test_timeout_path_returns_the_same_document(tmp_path: Path) -> None:
    path = write(tmp_path, "study.pdf", make_pdf(paper_pages(3)))
    direct = parse_file(path, **LIMITS)
    assert parse_file_with_timeout(path, timeout_s=30, **LIMITS) == direct


def test_timeout_kills_a_slow_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow_parse(path: Path, **kwargs: object) -> ParsedDocument:
        time.sleep(30)
        raise AssertionError("not reached")

    monkeypatch.setattr(parse_module, "parse_file", slow_parse)
    path = write(tmp_path, "slow.txt", "text")
    start = time.monotonic()
    with pytest.raises(ParseTimeoutError) as caught:
        parse_file_with_timeout(path, timeout_s=0.5, **LIMITS)
    assert time.monotonic() - start < 5
    assert caught.value.reason == "parse timed out after 0.5 s (RAG_PARSE_TIMEOUT_S)"


def test_child_errors_come_back_as_the_same_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def encrypted(path: Path, **kwargs: object) -> ParsedDocument:
        raise EncryptedPdfError(passwords_tried=bool(kwargs["passwords"]))

    monkeypatch.setattr(parse_module, "parse_file", encrypted)
    path = write(tmp_path, "x.txt", "text")
    with pytest.raises(EncryptedPdfError, match="^encrypted: wrong password$") as caught:
        parse_file_with_timeout(path, timeout_s=10, passwords=["nope"], **LIMITS)
    assert caught.value.passwords_tried is True
    monkeypatch.undo()  # and a real one, end to end
    with pytest.raises(EmptyFileError, match="^empty file$"):
        parse_file_with_timeout(write(tmp_path, "e.txt", b""), timeout_s=10, **LIMITS)


def test_unexpected_child_exception_becomes_a_parse_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def buggy(path: Path, **kwargs: object) -> ParsedDocument:
        raise KeyError("oops")

    monkeypatch.setattr(parse_module, "parse_file", buggy)
    with pytest.raises(ParseError, match="parser failed: KeyError"):
        parse_file_with_timeout(write(tmp_path, "x.txt", "t"), timeout_s=10, **LIMITS)


def test_child_that_dies_is_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def dies(path: Path, **kwargs: object) -> ParsedDocument:
        os._exit(3)

    monkeypatch.setattr(parse_module, "parse_file", dies)
    with pytest.raises(ParserCrashedError, match=r"^parser crashed \(exit code 3\)$"):
        parse_file_with_timeout(write(tmp_path, "x.txt", "t"), timeout_s=10, **LIMITS)
